#!/usr/bin/env bash
# DNSSEC online signing (issue #23): server CPU per query of the live zone at N instances with
# DO and a warm signature cache, against the same queries without DO and against a server
# without a key; and the cold signing rate (signatures per CPU second of the server).
#
#   bench/dnssec.sh [--rounds R] [--secs S] [--instances N]     (defaults 3, 10, 100000)
#
# A fresh etcd with N instances (examples/bench_registry load); two etcd-dns (release), one with
# --dnssec-key (a key etcd-dns dnssec keygen made), one without, both pinned to core 1 and loaded
# one at a time; dnsperf pinned to core 0, one socket, 100 queries outstanding, the names
# n0…n(N-1) in turn, type A (dnsperf -D sets DO). Rows, round after round (the table gives
# medians):
#   plain            the server without a key, queries without DO
#   signed, no DO    the signed server, the same queries (must equal plain)
#   signed, DO       the signed server with DO, after one pass over every name warmed its cache
#                    (signatures are reused for 60 s, so a run longer than that re-signs each
#                    name once a minute: that is in the row)
# Then the cold rate: one pass of N names that do not exist, with DO, on the signed server:
# every answer signs one NSEC (a compact denial), so signatures per CPU second = answers per
# CPU second of the server in that pass.
# Last, both servers' resident memory (the signed one holding a signature per name and per missing
# name asked). Output: stdout; raw dnsperf output in the work directory (KEEP=1 keeps it).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=3; secs=10; instances=100000
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --secs) secs=$2; shift 2 ;;
    --instances) instances=$2; shift 2 ;;
    *) echo "usage: bench/dnssec.sh [--rounds R] [--secs S] [--instances N]" >&2; exit 2 ;;
  esac
done
say() { echo "==> $*" >&2; }
die() { echo "bench/dnssec.sh: $*" >&2; exit 1; }
work=$(mktemp -d /tmp/etcd-dns-dnssec.XXXXXX)
log=$work/dnsperf.log
source bench/lib.sh
cleanup_keep() { if [ "${KEEP:-}" = 1 ]; then stop_all; echo "kept $work" >&2; else cleanup; fi; }
trap cleanup_keep EXIT
install_missing dnsperf:dnsperf etcd:etcd-server etcdctl:etcd-client taskset:util-linux perl:perl
cargo build --release --locked --quiet --bin etcd-dns --example bench_registry
bin=${CARGO_TARGET_DIR:-$PWD/target}/release

key=$("$bin/etcd-dns" dnssec keygen services.local --dir "$work" | head -n1)
start_etcd "$work/etcd" "$client_cpu"
say "loading $instances instances"
"$bin/examples/bench_registry" load --etcd "$etcd_url" --count "$instances" >/dev/null
start_etcd_dns "$bin/etcd-dns" "$work/plain.log" "$server_cpu" --etcd "$etcd_url" --no-forward \
  --zones "$work"
plain_port=$started_port; plain_pid=$started_pid
start_etcd_dns "$bin/etcd-dns" "$work/signed.log" "$server_cpu" --etcd "$etcd_url" --no-forward \
  --zones "$work" --dnssec-key "$key"
signed_port=$started_port; signed_pid=$started_pid
for f in plain signed; do wait_for 60 "the registry ($f)" grep -q "registry loaded" "$work/$f.log"; done
for i in $(seq 0 $((instances - 1))); do echo "n$i.services.local A"; done >"$work/queries"
for i in $(seq 0 $((instances - 1))); do echo "missing$i.services.local A"; done >"$work/missing"

declare -A qps cpu
# measure ROW PORT PID [dnsperf args]: one run of $secs seconds (or one pass with -n 1).
measure() {
  local row=$1 port=$2 pid=$3 t0 t1 out
  shift 3
  out=$work/run.out
  t0=$(cpu_ticks "$pid")
  taskset -c "$client_cpu" dnsperf -s 127.0.0.1 -p "$port" -c 1 -q 100 "$@" >"$out" 2>&1 ||
    { cat "$out" >&2; die "dnsperf failed ($row)"; }
  t1=$(cpu_ticks "$pid")
  { echo "--- $row"; cat "$out"; } >>"$log"
  read -r q c < <(awk -v ticks=$((t1 - t0)) -v hz="$clk_tck" '
    /Queries completed:/ { n = $3 } /Queries per second:/ { q = $4 }
    END { if (n == 0) print "0 nan"; else printf "%.0f %.2f\n", q, ticks / hz * 1e6 / n }' "$out")
  qps[$row]+="$q "; cpu[$row]+="$c "
}
say "warming the signature cache: one pass over every name with DO"
measure warm "$signed_port" "$signed_pid" -D -d "$work/queries" -n 1
rows=(plain "signed, no DO" "signed, DO")
for round in $(seq 1 "$rounds"); do
  say "round $round of $rounds"
  measure plain "$plain_port" "$plain_pid" -d "$work/queries" -l "$secs"
  measure "signed, no DO" "$signed_port" "$signed_pid" -d "$work/queries" -l "$secs"
  measure "signed, DO" "$signed_port" "$signed_pid" -D -d "$work/queries" -l "$secs"
done
say "cold: $instances missing names with DO, each answer signing one NSEC"
measure cold "$signed_port" "$signed_pid" -D -d "$work/missing" -n 1
med() { local v; read -ra v <<<"$1"; median "${v[@]}"; }
plain_cpu=$(med "${cpu[plain]}")
echo "## DNSSEC ($(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD)): bench/dnssec.sh, $instances instances, $rounds × $secs s"
echo
echo "| row | q/s | server CPU µs/q | CPU of plain's |"
echo "|---|--:|--:|--:|"
for row in "${rows[@]}"; do
  c=$(med "${cpu[$row]}")
  echo "| $row | $(med "${qps[$row]}") | $c | $(ratio "$c" "$plain_cpu") |"
done
warm_cpu=$(med "${cpu[warm]}"); cold_cpu=$(med "${cpu[cold]}")
echo "| first DO pass over every name (each signs its set once) | $(med "${qps[warm]}") | $warm_cpu | $(ratio "$warm_cpu" "$plain_cpu") |"
echo "| DO, missing names (each signs one NSEC) | $(med "${qps[cold]}") | $cold_cpu | $(ratio "$cold_cpu" "$plain_cpu") |"
echo
awk -v c="$cold_cpu" 'BEGIN { if (c > 0) printf "Cold signing rate: %.0f signatures per CPU second of the server (one per answer of the last row).\n", 1e6 / c }'
echo "Memory (VmRSS) at the end: plain $(rss_mb "$plain_pid") MB, signed $(rss_mb "$signed_pid") MB (its cache: every name's A set and $instances denials)."
