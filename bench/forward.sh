#!/usr/bin/env bash
# Cached forwarded names: etcd-dns forwarding to NSD against unbound forwarding to the same NSD.
#
#   bench/forward.sh                      10,000 names, 5 interleaved rounds of 10 s per server (~4 min)
#   bench/forward.sh --quick              1 round of 2 s (smoke test, ~1 min)
#   bench/forward.sh --before BIN         also an older etcd-dns binary, interleaved (A/B)
#   bench/forward.sh --rounds R --secs S  R rounds of S seconds
#
# NSD (core 0) serves NAMES A records (TTL 3600) under fwd.test.; unbound (Debian, one thread,
# `module-config: "iterator"`, forward-zone to NSD, its default caches) and etcd-dns (`--upstream`
# NSD, its default --cache-size) run pinned to core 1, dnsperf to core 0. Each server is asked
# every name once, then warmed up for 3 s, so every later query is a cache hit. Then the servers
# take turns, round after round (A/B/A/B: the VM's speed drifts), each run
#   dnsperf -c 1 -q 100 -l SECS over the names in random order, type A
# and the medians are printed with the spread (min–max) and the ratios etcd-dns / unbound:
# QPS, and server CPU per query (utime + stime from /proc/PID/stat ÷ completed queries).
# Raw dnsperf output goes to bench/results/forward.log, the table to bench/results/forward.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

names=10000; rounds=5; secs=10; warm=3; before=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) rounds=1; secs=2; warm=1 ;;
    --before) before=$(realpath "$2"); shift ;;
    --rounds) rounds=$2; shift ;;
    --secs) secs=$2; shift ;;
    --names) names=$2; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: bench/forward.sh [--quick] [--before BIN] [--rounds R] [--secs S] [--names N]" >&2; exit 2 ;;
  esac
  shift
done

say() { echo "==> $*" >&2; }
die() { echo "bench/forward.sh: $*" >&2; exit 1; }

work=$(mktemp -d /tmp/etcd-dns-forward.XXXXXX)
source bench/lib.sh
trap cleanup EXIT
trap 'exit 130' INT TERM

install_missing dnsperf:dnsperf nsd:nsd unbound:unbound etcd:etcd-server etcdctl:etcd-client dig:bind9-dnsutils
say "building etcd-dns (release)"
cargo build --release --bin etcd-dns >&2
target=${CARGO_TARGET_DIR:-$root/target}
bin=$target/release/etcd-dns

results=$root/bench/results
mkdir -p "$results"
log=$results/forward.log
: >"$log"

# ---------------------------------------------------------------- NSD upstream (core 0)
zone=fwd.test.
zonefile=$work/fwd.test.zone
write_zone "$zone" "$names" 3600 300 "$zonefile"
queries=$work/queries
write_queries "$zone" "$names" 200000 0 20261126 "$queries"
every=$work/every-name
write_every_name "$zone" "$names" "$every"

nsd_port=$(free_port)
start_nsd "$work/nsd" "$client_cpu" "$nsd_port" "$zone" "$zonefile"
wait_for 20 "NSD" answers "$nsd_port" "n0.$zone"

# ---------------------------------------------------------------- etcd (core 0), for etcd-dns
start_etcd "$work/etcd" "$client_cpu"

# ---------------------------------------------------------------- the servers under test (core 1)
start_etcd_dns_as() { # LABEL BINARY
  start_etcd_dns "$2" "$work/$1.log" "$server_cpu" --etcd "$etcd_url" --upstream "127.0.0.1:$nsd_port"
  srv_pid[$1]=$started_pid; srv_port[$1]=$started_port
}
start_unbound_here() {
  srv_port[unbound]=$(free_port)
  start_unbound "$work/unbound" "$server_cpu" "${srv_port[unbound]}" "$zone" "$nsd_port"
  srv_pid[unbound]=$started_pid
}

servers=(etcd-dns)
start_etcd_dns_as etcd-dns "$bin"
if [ -n "$before" ]; then
  servers+=(before)
  start_etcd_dns_as before "$before"
fi
servers+=(unbound)
start_unbound_here
for s in "${servers[@]}"; do
  wait_for 30 "$s to answer" answers "${srv_port[$s]}" "n0.$zone"
  say "$s (pid ${srv_pid[$s]}, port ${srv_port[$s]}): asking every name once, then ${warm}s of warm-up"
  prime "${srv_port[$s]}" "$every"
  warm_up "${srv_port[$s]}" "$queries" "$warm"
done

# ---------------------------------------------------------------- interleaved rounds
interleave "$rounds" "$queries" "" "${servers[@]}"

{
  echo "cached forwarded names: $names names of an NSD upstream, $rounds interleaved rounds × ${secs}s, dnsperf -c 1 -q 100"
  echo "$(git -C "$root" describe --always --dirty) | $(unbound -V | head -n1) | $(nsd -v 2>&1 | head -n1)"
  echo
  echo "| server | QPS median (min–max) | CPU µs/query median (min–max) |"
  echo "|---|---|---|"
  for s in "${servers[@]}"; do
    echo "| $s | $(median_of QPS "$s") ($(spread_of QPS "$s")) | $(median_of CPU "$s") ($(spread_of CPU "$s")) |"
  done
  echo
  echo "etcd-dns / unbound: QPS $(ratio "$(median_of QPS etcd-dns)" "$(median_of QPS unbound)")×, CPU per query $(ratio "$(median_of CPU etcd-dns)" "$(median_of CPU unbound)")×"
} | tee "$results/forward.txt"
