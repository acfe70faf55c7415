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

need=()
command -v dnsperf >/dev/null 2>&1 || need+=(dnsperf)
command -v nsd >/dev/null 2>&1 || need+=(nsd)
command -v unbound >/dev/null 2>&1 || need+=(unbound)
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
command -v dig >/dev/null 2>&1 || need+=(bind9-dnsutils)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  apt-get install -y "${need[@]}" >/dev/null || die "cannot install ${need[*]}"
fi
say "building etcd-dns (release)"
cargo build --release --bin etcd-dns >&2
target=${CARGO_TARGET_DIR:-$root/target}
bin=$target/release/etcd-dns

client_cpu=0; server_cpu=1
results=$root/bench/results
mkdir -p "$results"
log=$results/forward.log
: >"$log"
work=$(mktemp -d /tmp/etcd-dns-forward.XXXXXX)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

source bench/lib.sh
answers() { # PORT NAME: the name answers NOERROR with an address
  dig @127.0.0.1 -p "$1" "$2" A +short +time=2 +tries=1 | grep -q '^10\.'
}
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
spread() { printf '%s\n' "$@" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s–%s", lo, hi }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0) printf "%.2f", a / b; else print "-" }'; }
clk_tck=$(getconf CLK_TCK)
cpu_ticks() { # PID: utime + stime of all its threads
  sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

# ---------------------------------------------------------------- NSD upstream (core 0)
zone=fwd.test.
zonefile=$work/fwd.test.zone
awk -v n="$names" -v zone="$zone" 'BEGIN {
  print "$ORIGIN " zone; print "$TTL 3600"
  print "@ IN SOA ns." zone " hostmaster." zone " 1 60 10 3600 300"
  print "@ IN NS ns." zone; print "ns IN A 127.0.0.1"
  for (i = 0; i < n; i++) { a = 167772161 + i
    printf "n%d IN A %d.%d.%d.%d\n", i, int(a / 16777216), int(a / 65536) % 256, int(a / 256) % 256, a % 256 }
}' >"$zonefile"
queries=$work/queries
awk -v n="$names" -v zone="$zone" 'BEGIN { srand(20261126)
  for (i = 0; i < 200000; i++) printf "n%d.%s A\n", int(rand() * n), zone }' >"$queries"
every=$work/every-name
awk -v n="$names" -v zone="$zone" 'BEGIN { for (i = 0; i < n; i++) printf "n%d.%s A\n", i, zone }' >"$every"

nsd_port=$(free_port)
mkdir -p "$work/nsd"
cat >"$work/nsd/nsd.conf" <<EOF
server:
  ip-address: 127.0.0.1@$nsd_port
  do-ip6: no
  server-count: 1
  username: ""
  chroot: ""
  zonesdir: "$work/nsd"
  database: ""
  zonelistfile: "$work/nsd/zone.list"
  xfrdfile: "$work/nsd/xfrd.state"
  xfrdir: "$work/nsd"
  pidfile: "$work/nsd/nsd.pid"
  logfile: "$work/nsd/nsd.log"
  rrl-ratelimit: 0
remote-control:
  control-enable: no
zone:
  name: ${zone%.}
  zonefile: "$zonefile"
EOF
taskset -c "$client_cpu" nsd -d -c "$work/nsd/nsd.conf" >"$work/nsd/stdout.log" 2>&1 &
pids+=($!)
wait_for 20 "NSD" answers "$nsd_port" "n0.$zone"

# ---------------------------------------------------------------- etcd (core 0), for etcd-dns
etcd_port=$(free_port); peer_port=$(free_port)
etcd_url=http://127.0.0.1:$etcd_port
taskset -c "$client_cpu" etcd --name fwd --data-dir "$work/etcd" \
  --listen-client-urls "$etcd_url" --advertise-client-urls "$etcd_url" \
  --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
  --initial-cluster "fwd=http://127.0.0.1:$peer_port" >"$work/etcd.log" 2>&1 &
pids+=($!)
wait_for 30 "etcd" env ETCDCTL_API=3 etcdctl --endpoints "$etcd_url" endpoint health

# ---------------------------------------------------------------- the servers under test (core 1)
declare -A port pid
start_etcd_dns() { # LABEL BINARY
  local label=$1 exe=$2 logf=$work/$1.log
  env -u RUST_LOG taskset -c "$server_cpu" "$exe" --listen 127.0.0.1:0 --http 127.0.0.1:0 \
    --etcd "$etcd_url" --upstream "127.0.0.1:$nsd_port" 2>"$logf" &
  pid[$label]=$!; pids+=($!)
  wait_for 30 "$label to listen" grep -q "listening addr=127.0.0.1:" "$logf"
  port[$label]=$(sed -n 's/.*listening addr=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$logf" | head -n1)
}
start_unbound() {
  local dir=$work/unbound
  mkdir -p "$dir"
  port[unbound]=$(free_port)
  cat >"$dir/unbound.conf" <<EOF
server:
  interface: 127.0.0.1@${port[unbound]}
  port: ${port[unbound]}
  num-threads: 1
  do-ip6: no
  username: ""
  chroot: ""
  directory: "$dir"
  pidfile: "$dir/unbound.pid"
  use-syslog: no
  logfile: "$dir/unbound.log"
  verbosity: 0
  access-control: 127.0.0.0/8 allow
  do-not-query-localhost: no
  module-config: "iterator"
  local-zone: "test." nodefault
remote-control:
  control-enable: no
forward-zone:
  name: "${zone%.}"
  forward-addr: 127.0.0.1@$nsd_port
EOF
  taskset -c "$server_cpu" unbound -d -c "$dir/unbound.conf" >"$dir/stdout.log" 2>&1 &
  pid[unbound]=$!; pids+=($!)
}

servers=(etcd-dns)
start_etcd_dns etcd-dns "$bin"
if [ -n "$before" ]; then
  servers+=(before)
  start_etcd_dns before "$before"
fi
servers+=(unbound)
start_unbound
for s in "${servers[@]}"; do
  wait_for 30 "$s to answer" answers "${port[$s]}" "n0.$zone"
  say "$s (pid ${pid[$s]}, port ${port[$s]}): asking every name once, then ${warm}s of warm-up"
  taskset -c "$client_cpu" dnsperf -s 127.0.0.1 -p "${port[$s]}" -d "$every" -n 1 -c 1 -q 20 >>"$log" 2>&1
  taskset -c "$client_cpu" dnsperf -s 127.0.0.1 -p "${port[$s]}" -d "$queries" -l "$warm" -c 1 -q 100 >>"$log" 2>&1
done

# ---------------------------------------------------------------- interleaved rounds
declare -A QPS CPU
for ((r = 1; r <= rounds; r++)); do
  for s in "${servers[@]}"; do
    t0=$(cpu_ticks "${pid[$s]}")
    out=$(taskset -c "$client_cpu" dnsperf -s 127.0.0.1 -p "${port[$s]}" -d "$queries" -l "$secs" -c 1 -q 100 2>&1)
    t1=$(cpu_ticks "${pid[$s]}")
    { echo "--- round $r $s"; echo "$out"; } >>"$log"
    read -r q c lost <<<"$(awk -v ticks=$((t1 - t0)) -v hz="$clk_tck" '
      /Queries completed:/ { c = $3 } /Queries lost:/ { l = $3 } /Queries per second:/ { q = $4 }
      END { printf "%.0f %.2f %d\n", q, ticks / hz * 1e6 / c, l }' <<<"$out")"
    QPS[$s]+="$q "; CPU[$s]+="$c "
    say "round $r $s: $q q/s, $c µs CPU/query, $lost lost"
  done
done

{
  echo "cached forwarded names: $names names of an NSD upstream, $rounds interleaved rounds × ${secs}s, dnsperf -c 1 -q 100"
  echo "$(git -C "$root" describe --always --dirty) | $(unbound -V | head -n1) | $(nsd -v 2>&1 | head -n1)"
  echo
  echo "| server | QPS median (min–max) | CPU µs/query median (min–max) |"
  echo "|---|---|---|"
  for s in "${servers[@]}"; do
    read -ra q <<<"${QPS[$s]}"; read -ra c <<<"${CPU[$s]}"
    echo "| $s | $(median "${q[@]}") ($(spread "${q[@]}")) | $(median "${c[@]}") ($(spread "${c[@]}")) |"
  done
  read -ra qa <<<"${QPS[etcd-dns]}"; read -ra ca <<<"${CPU[etcd-dns]}"
  read -ra qu <<<"${QPS[unbound]}"; read -ra cu <<<"${CPU[unbound]}"
  echo
  echo "etcd-dns / unbound: QPS $(ratio "$(median "${qa[@]}")" "$(median "${qu[@]}")")×, CPU per query $(ratio "$(median "${ca[@]}")" "$(median "${cu[@]}")")×"
} | tee "$results/forward.txt"
