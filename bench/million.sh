#!/usr/bin/env bash
# etcd-dns at a million instances: start-up time, memory and query cost.
#
#   bench/million.sh [--count N] [--data DIR] [--starts K] [--secs S] [--reps R] [--no-dnsperf] [--unpinned]
#   bench/million.sh --quick    one start, one 2 s dnsperf run
#
# With BENCH_BIN_DIR set (as bench/compare.sh sets it), its etcd-dns and examples/bench_registry
# are used instead of building.
# etcd (data in DIR, default /tmp/etcd-dns-million-N; loaded with N instances `services/n<i>` =
# {"IP":…} by bench_registry the first time, reused afterwards) runs on core 0. etcd-dns (release
# build) starts K times (default 3) pinned to core 1; each start prints the time from process
# start to the first NOERROR answer for the last instance (`ready_ms`), the server's own
# read_ms and elapsed_ms from its "registry loaded" line, the CPU time etcd-dns and etcd spent
# until then (cpu_ms, etcd_cpu_ms: steadier than wall time on a shared machine), and VmRSS /
# VmHWM once ready. Then,
# on the last start, dnsperf pinned to core 0 sends 90 % existing names / 10 % NXDOMAIN
# (-c 1 -q 100, R runs of S seconds after a warm-up): QPS and server CPU µs per query (median).
# With --unpinned, etcd and etcd-dns share both cores (as they would on a host of their own);
# dnsperf stays on core 0.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

count=1000000; data=""; starts=3; secs=10; reps=3; perf=true; etcd_cpus=0; server_cpus=1
while [ $# -gt 0 ]; do
  case "$1" in
    --count) count=$2; shift 2 ;;
    --data) data=$2; shift 2 ;;
    --starts) starts=$2; shift 2 ;;
    --secs) secs=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --no-dnsperf) perf=false; shift ;;
    --unpinned) etcd_cpus=0-$(($(nproc) - 1)); server_cpus=$etcd_cpus; shift ;;
    --quick) starts=1; secs=2; reps=1; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: bench/million.sh [--quick] [--count N] [--data DIR] [--starts K] [--secs S] [--reps R] [--no-dnsperf] [--unpinned]" >&2; exit 2 ;;
  esac
done
data=${data:-/tmp/etcd-dns-million-$count}
zone=services.local.

say() { echo "==> $*" >&2; }
die() { echo "bench/million.sh: $*" >&2; exit 1; }
for tool in etcd etcdctl taskset perl; do command -v $tool >/dev/null || die "missing $tool"; done
$perf && { command -v dnsperf >/dev/null || die "missing dnsperf (apt-get install -y dnsperf)"; }

if [ -n "${BENCH_BIN_DIR:-}" ]; then
  bin=$BENCH_BIN_DIR
else
  say "building (release): etcd-dns, bench_registry"
  cargo build --release --locked --quiet --bin etcd-dns --example bench_registry
  bin=${CARGO_TARGET_DIR:-$root/target}/release
fi
work=$(mktemp -d /tmp/etcd-dns-million.XXXXXX)
# shellcheck source=bench/lib.sh
source bench/lib.sh # pids, cleanup (stops them, removes $work), cpu_ticks, median
trap cleanup EXIT
trap 'exit 130' INT TERM
status_mb() { # PID FIELD: a /proc/PID/status size in MB
  awk -v f="$2:" '$1 == f { printf "%.0f", $2 / 1024 }' "/proc/$1/status"
}

client=$(free_port); peer=$(free_port)
etcd_url=http://127.0.0.1:$client
taskset -c "$etcd_cpus" etcd --name million --data-dir "$data" --quota-backend-bytes 8589934592 \
  --listen-client-urls "$etcd_url" --advertise-client-urls "$etcd_url" \
  --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
  --initial-cluster "million=http://127.0.0.1:$peer" >"$work/etcd.log" 2>&1 &
pids+=($!)
wait_for 60 "etcd on $etcd_url" env ETCDCTL_API=3 etcdctl --endpoints "$etcd_url" endpoint health
if [ ! -e "$data/loaded-$count" ]; then
  say "loading $count instances into $data"
  taskset -c 0 "$bin/examples/bench_registry" load --etcd "$etcd_url" --count "$count" | tail -n1
  touch "$data/loaded-$count"
fi

last=n$((count - 1)).$zone
dns_pid=""; dns_port=""
for ((s = 1; s <= starts; s++)); do
  [ -n "$dns_pid" ] && { kill "$dns_pid"; wait "$dns_pid" 2>/dev/null || true; }
  dns_port=$(free_port)
  etcd0=$(cpu_ticks "${pids[0]}")
  t0=$(date +%s%N)
  env -u RUST_LOG taskset -c "$server_cpus" "$bin/etcd-dns" --listen "127.0.0.1:$dns_port" --no-http \
    --etcd "$etcd_url" --zone "$zone" --ttl 5 2>"$work/etcd-dns-$s.log" &
  dns_pid=$!; pids+=("$dns_pid")
  line=$(taskset -c 0 "$bin/examples/bench_registry" wait --dns "127.0.0.1:$dns_port" --name "$last" \
    --since-unix-ns "$t0" --timeout 120 | grep '^RESULT')
  ready=$(tr ' ' '\n' <<<"$line" | sed -n 's/^ms=//p')
  wait_for 10 "the registry loaded line" grep -q "registry loaded" "$work/etcd-dns-$s.log"
  loaded=$(grep "registry loaded" "$work/etcd-dns-$s.log" | head -n1)
  read_ms=$(sed -n 's/.*read_ms=\([0-9]*\).*/\1/p' <<<"$loaded")
  elapsed=$(sed -n 's/.*elapsed_ms=\([0-9]*\).*/\1/p' <<<"$loaded")
  cpu_ms=$(( $(cpu_ticks "$dns_pid") * 1000 / $(getconf CLK_TCK) ))
  etcd_ms=$(( ($(cpu_ticks "${pids[0]}") - etcd0) * 1000 / $(getconf CLK_TCK) ))
  sleep 1 # let the allocator settle after the read
  echo "start $s: ready_ms=$ready read_ms=$read_ms elapsed_ms=$elapsed cpu_ms=$cpu_ms etcd_cpu_ms=$etcd_ms rss_mb=$(status_mb "$dns_pid" VmRSS) hwm_mb=$(status_mb "$dns_pid" VmHWM)"
done

$perf || exit 0
queries=$work/queries
awk -v n="$count" -v zone="$zone" 'BEGIN { srand(20240601)
  for (i = 0; i < 200000; i++)
    if (i % 10 == 9) printf "nx%d.%s A\n", i, zone; else printf "n%d.%s A\n", int(rand() * n), zone
}' >"$queries"
taskset -c 0 dnsperf -s 127.0.0.1 -p "$dns_port" -d "$queries" -l 3 -c 1 -q 100 >/dev/null 2>&1 || true
qps=(); cpu=()
hz=$(getconf CLK_TCK)
for ((r = 1; r <= reps; r++)); do
  c0=$(cpu_ticks "$dns_pid")
  taskset -c 0 dnsperf -s 127.0.0.1 -p "$dns_port" -d "$queries" -l "$secs" -c 1 -q 100 >"$work/dnsperf" 2>&1
  c1=$(cpu_ticks "$dns_pid")
  done_q=$(awk '/Queries completed:/ { print $3 }' "$work/dnsperf")
  qps+=("$(awk '/Queries per second:/ { printf "%.0f", $4 }' "$work/dnsperf")")
  cpu+=("$(awk -v t=$((c1 - c0)) -v hz="$hz" -v q="$done_q" 'BEGIN { printf "%.2f", t / hz * 1e6 / q }')")
done
echo "dnsperf at $count instances (median of $reps × ${secs}s): qps=$(median "${qps[@]}") cpu_us_per_query=$(median "${cpu[@]}") (each: ${qps[*]} / ${cpu[*]})"
echo "rss after dnsperf: rss_mb=$(status_mb "$dns_pid" VmRSS) hwm_mb=$(status_mb "$dns_pid" VmHWM)"
