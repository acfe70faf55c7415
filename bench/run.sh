#!/usr/bin/env bash
# etcd-dns side by side with NSD and Knot, plus live-update measurements, in one run.
#
#   bench/run.sh           N = 100 and 100,000 instances; 3 × 10 s dnsperf runs per profile (~10 min)
#   bench/run.sh --quick   N = 100 and 1,000; 1 × 2 s run, 100 freshness changes (smoke test, ~1 min)
#
# For each N: a fresh etcd (temp dir, free ports) gets N instances `services/n<i>` = 10.0.0.1 + i;
# etcd-dns (release build) starts pinned to core 1 and the time from its start to the first NOERROR
# answer is taken; dnsperf, pinned to core 0, sends 90 % existing names / 10 % NXDOMAIN (type A):
#   throughput  dnsperf -c 1 -q 100 -l SECS          → QPS, lost, server CPU µs per query
#   latency     dnsperf -c 1 -q 100 -Q 20000 -l SECS → average and max latency at a fixed rate
# (median of the repetitions, after a warm-up). NSD and Knot then serve the same names from a zone
# file (same SOA, TTL 5), pinned to core 1, under the identical profile. For etcd-dns also: put →
# answer and revoke → NXDOMAIN (bench_registry fresh), SIGKILL of a `register --ttl 5` → NXDOMAIN,
# and QPS while bench_registry churn rewrites keys at 1,000 updates/s.
#
# etcd, the churn/fresh clients and register run on core 0 with dnsperf, so core 1 holds only the
# server under test. The table goes to stdout and bench/results/latest.txt; every raw dnsperf and
# tool output goes to bench/results/latest.log.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

quick=false
case "${1:-}" in
  --quick) quick=true ;;
  "") ;;
  -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  *) echo "usage: bench/run.sh [--quick]" >&2; exit 2 ;;
esac

if $quick; then
  sizes=(100 1000); secs=2; reps=1; warm=1; changes=100; kill_reps=1; qlines=20000
else
  sizes=(100 100000); secs=10; reps=3; warm=3; changes=1000; kill_reps=3; qlines=200000
fi
fixed_qps=20000
churn_rate=1000
zone=services.local.
prefix=services/
largest=${sizes[${#sizes[@]} - 1]}

say() { echo "==> $*" >&2; }
die() { echo "bench/run.sh: $*" >&2; exit 1; }

# ---------------------------------------------------------------- dependencies and build
work=$(mktemp -d /tmp/etcd-dns-bench.XXXXXX)
source bench/lib.sh
trap cleanup EXIT
trap 'exit 130' INT TERM

install_missing dnsperf:dnsperf knotd:knot nsd:nsd etcd:etcd-server etcdctl:etcd-client dig:bind9-dnsutils \
  protoc:protobuf-compiler /usr/include/google/protobuf/descriptor.proto:libprotobuf-dev taskset:util-linux \
  perl:perl cc:gcc
command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust from https://rustup.rs"

cores=$(nproc)

say "building (release): etcd-dns, register, bench_registry"
cargo build --release --locked --quiet --bins --examples
bin=${CARGO_TARGET_DIR:-$root/target}/release
tool=$bin/examples/bench_registry
for b in "$bin/etcd-dns" "$bin/register" "$tool"; do [ -x "$b" ] || die "missing $b"; done

# ---------------------------------------------------------------- processes and helpers
results=$root/bench/results
mkdir -p "$results"
log=$results/latest.log
: >"$log"
now_ns() { date +%s%N; }
# result LINE KEY: the value of KEY=… in a `RESULT …` line.
result() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }
# Runs the bench tool, logging its output; prints its RESULT line.
run_tool() {
  local out
  out=$("$@" 2>>"$log") || { echo "$out" >>"$log"; die "failed: ${*##*/}"; }
  echo "$out" >>"$log"
  grep '^RESULT' <<<"$out" | tail -n1
}
busy() { awk -v q="$1" -v c="$2" 'BEGIN { if (q == q + 0 && c == c + 0) printf "%.0f%%", q * c / 1e4; else print "-" }'; }
# check_answer PORT N: the last instance answers its address.
check_answer() {
  local got want
  got=$(answer "$1" "n$(($2 - 1)).$zone")
  want="NOERROR $(addr_of $(($2 - 1)))"
  [ "$got" = "$want" ] || die "port $1: n$(($2 - 1)).$zone answered '$got', expected '$want'"
}

declare -A R # R[server|N|metric]
# measure SERVER N PORT QUERIES PIDS...: warm-up, then reps × (throughput, latency); medians into R.
measure() {
  local server=$1 n=$2 port=$3 queries=$4 r f
  shift 4
  say "$server N=$n: warm-up ${warm}s, then $reps × ${secs}s throughput and $reps × ${secs}s at $fixed_qps q/s"
  taskset -c "$client_cpu" dnsperf -s 127.0.0.1 -p "$port" -d "$queries" -l "$warm" -c 1 -q 100 >/dev/null 2>&1 || true
  local qps=() lost=() cpu=() avg=() max=() llost=() ok=() nx=() other=() size=()
  for ((r = 1; r <= reps; r++)); do
    f=$work/$server-$n-tp-$r
    dnsperf_run throughput "$port" "$queries" "$f" "$@"
    read -r _ l q _ _ o x oth s c <"$f"
    qps+=("$q"); lost+=("$l"); cpu+=("$c"); ok+=("$o"); nx+=("$x"); other+=("$oth"); size+=("$s")
  done
  for ((r = 1; r <= reps; r++)); do
    f=$work/$server-$n-lat-$r
    dnsperf_run latency "$port" "$queries" "$f" "$@"
    read -r _ l _ a m _ _ _ _ _ <"$f"
    avg+=("$a"); max+=("$m"); llost+=("$l")
  done
  R[$server|$n|qps]=$(median "${qps[@]}")
  R[$server|$n|lost]=$(median "${lost[@]}")
  R[$server|$n|cpu]=$(median "${cpu[@]}")
  R[$server|$n|avg]=$(median "${avg[@]}")
  R[$server|$n|max]=$(median "${max[@]}")
  R[$server|$n|llost]=$(median "${llost[@]}")
  R[$server|$n|rcodes]="$(median "${ok[@]}")/$(median "${nx[@]}")"
  R[$server|$n|other]=$(printf '%s\n' "${other[@]}" | sort -u | paste -sd' ')
  R[$server|$n|size]=$(median "${size[@]}")
  R[$server|$n|rss]=$(rss_mb "$@")
}

# ---------------------------------------------------------------- servers
etcd_pid=""; dns_pid=""; dns_port=""
start_etcd_for() { # N: a fresh etcd for N instances (core 0)
  start_etcd "$work/etcd-$1" "$client_cpu"
  etcd_pid=$started_pid
}
start_etcd_dns_for() { # N: etcd-dns (core 1) on the N instances; times start → first answer
  local n=$1 t0 line
  t0=$(now_ns)
  start_etcd_dns "$bin/etcd-dns" "$work/etcd-dns-$n.log" "$server_cpu" --etcd "$etcd_url" \
    --zone "$zone" --prefix "$prefix" --ttl 5
  dns_pid=$started_pid; dns_port=$started_port
  line=$(run_tool taskset -c "$client_cpu" "$tool" wait --dns "127.0.0.1:$dns_port" \
    --name "n$((n - 1)).$zone" --since-unix-ns "$t0" --timeout 120)
  R[etcd-dns|$n|ready]=$(result "$line" ms)
  check_answer "$dns_port" "$n"
}
# start_reference nsd|knot N ZONEFILE: starts the server pinned to the server core; sets ref_pid, ref_port.
ref_pid=""; ref_port=""
start_reference() {
  local kind=$1 n=$2 zonefile=$3 dir=$work/$1-$2 t0 line
  mkdir -p "$dir"
  ref_port=$(free_port)
  t0=$(now_ns)
  if [ "$kind" = nsd ]; then
    start_nsd "$dir" "$server_cpu" "$ref_port" "$zone" "$zonefile"
  else
    cat >"$dir/knot.conf" <<EOF
server:
    listen: 127.0.0.1@$ref_port
    rundir: $dir
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
log:
  - target: stderr
    any: warning
database:
    storage: $dir/db
control:
    listen: $dir/knot.sock
template:
  - id: default
    storage: $dir
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
zone:
  - domain: $zone
    file: $zonefile
EOF
    taskset -c "$server_cpu" knotd -c "$dir/knot.conf" >"$dir/stdout.log" 2>&1 &
    started_pid=$!; pids+=("$started_pid")
  fi
  ref_pid=$started_pid
  line=$(run_tool taskset -c "$client_cpu" "$tool" wait --dns "127.0.0.1:$ref_port" \
    --name "n$((n - 1)).$zone" --since-unix-ns "$t0" --timeout 120)
  R[$kind|$n|ready]=$(result "$line" ms)
  # Knot pins its own worker threads one per core: put every thread back on the server core.
  [ "$kind" = knot ] && taskset -a -p -c "$server_cpu" "$ref_pid" >/dev/null
  check_answer "$ref_port" "$n"
}

# churn_measure SERVER N PORT QUERIES PID: reps × throughput runs while bench_registry churn rewrites
# the N keys at $churn_rate/s; medians into F[churn_qps|SERVER], F[churn_cpu|…], F[churn_rate|…].
churn_measure() {
  local server=$1 n=$2 port=$3 queries=$4 pid=$5 r q c churn_pid cq=() cc=() cr=()
  say "$server N=$n: $reps × ${secs}s throughput while churn rewrites $n keys at $churn_rate/s"
  for ((r = 1; r <= reps; r++)); do
    taskset -c "$client_cpu" "$tool" churn --etcd "$etcd_url" --rate "$churn_rate" \
      --seconds $((secs + 1)) --keys "$n" --prefix "$prefix" >"$work/churn-$server-$r.out" 2>&1 &
    churn_pid=$!; pids+=("$churn_pid")
    dnsperf_run throughput "$port" "$queries" "$work/churn-tp-$server-$r" "$pid"
    wait "$churn_pid" || { cat "$work/churn-$server-$r.out" >>"$log"; die "churn failed"; }
    stop "$churn_pid"
    cat "$work/churn-$server-$r.out" >>"$log"
    read -r _ _ q _ _ _ _ _ _ c <"$work/churn-tp-$server-$r"
    cq+=("$q"); cc+=("$c")
    cr+=("$(result "$(grep '^RESULT' "$work/churn-$server-$r.out")" rate)")
  done
  F[churn_qps|$server]=$(median "${cq[@]}")
  F[churn_cpu|$server]=$(median "${cc[@]}")
  F[churn_rate|$server]=$(median "${cr[@]}")
}

# ---------------------------------------------------------------- the run
say "mode: $($quick && echo quick || echo full); N = ${sizes[*]}; work dir $work; raw log $log"
{ echo "# bench/run.sh $*  $(date -u +%FT%TZ)  $(uname -n)"; echo "# $(git -C "$root" describe --always --dirty 2>/dev/null || echo '?')"; } >>"$log"
declare -A F # freshness etc.
kills=()
for n in "${sizes[@]}"; do
  say "N=$n: fresh etcd, loading $n instances"
  start_etcd_for "$n"
  line=$(run_tool taskset -c "$client_cpu" "$tool" load --etcd "$etcd_url" --count "$n" --prefix "$prefix")
  F[load|$n]=$(result "$line" seconds)
  queries=$work/queries-$n
  # 90 % existing names at random, every 10th line a missing one
  write_queries "$zone" "$n" "$qlines" 10 20240601 "$queries"

  say "N=$n: starting etcd-dns on core $server_cpu"
  start_etcd_dns_for "$n"
  say "N=$n: etcd-dns answers on 127.0.0.1:$dns_port after ${R[etcd-dns|$n|ready]} ms"
  measure etcd-dns "$n" "$dns_port" "$queries" "$dns_pid"

  if [ "$n" = "$largest" ]; then
    churn_measure etcd-dns "$n" "$dns_port" "$queries" "$dns_pid"
    # The last write to n0 (update 0 mod N) must be what etcd-dns answers now: 10.128.0.0 and up.
    got=$(dig @127.0.0.1 -p "$dns_port" "n0.$zone" A +short +time=2 +tries=2 2>/dev/null | head -n1)
    case "$got" in 10.12[89].* | 10.1[3-9][0-9].* | 10.2[0-5][0-9].*) F[churn_applied]="yes (n0 → $got)" ;; *) F[churn_applied]="NO (n0 → '$got')" ;; esac
  fi

  say "N=$n: freshness, $changes put/revoke cycles"
  line=$(run_tool taskset -c "$client_cpu" "$tool" fresh --etcd "$etcd_url" --dns "127.0.0.1:$dns_port" \
    --changes "$changes" --prefix "$prefix" --zone "$zone")
  F[fresh|$n]=$line

  if [ "$n" = "$largest" ]; then
    for ((r = 1; r <= kill_reps; r++)); do
      name=killed$r
      say "N=$n: register --ttl 5 $name, SIGKILL, time to NXDOMAIN ($r/$kill_reps)"
      taskset -c "$client_cpu" "$bin/register" --name "$name" --ip "10.250.0.$r" --etcd "$etcd_url" \
        --ttl 5 --prefix "$prefix" 2>"$work/register-$r.log" &
      reg_pid=$!; pids+=("$reg_pid")
      run_tool taskset -c "$client_cpu" "$tool" wait --dns "127.0.0.1:$dns_port" --name "$name.$zone" \
        --timeout 10 >/dev/null
      # Kill at a random point of the keep-alive cycle (every TTL/3 ≈ 1.7 s), as a crash would.
      dwell_ms=$((RANDOM % 1700))
      $quick || dwell_ms=$((dwell_ms + 1700))
      sleep "$((dwell_ms / 1000)).$(printf '%03d' $((dwell_ms % 1000)))"
      t0=$(now_ns)
      { kill -KILL "$reg_pid"; wait "$reg_pid"; } 2>/dev/null || true
      line=$(run_tool taskset -c "$client_cpu" "$tool" wait --dns "127.0.0.1:$dns_port" --name "$name.$zone" \
        --until nxdomain --since-unix-ns "$t0" --timeout 15)
      stop "$reg_pid"
      kills+=("$(awk -v ms="$(result "$line" ms)" 'BEGIN { printf "%.2f", ms / 1000 }')")
    done
  fi
  stop "$dns_pid"

  zonefile=$work/zone-$n
  write_zone "$zone" "$n" 5 5 "$zonefile"
  for kind in nsd knot; do
    say "N=$n: starting $kind on core $server_cpu"
    start_reference "$kind" "$n" "$zonefile"
    measure "$kind" "$n" "$ref_port" "$queries" "$ref_pid"
    # Control: the same churn next to NSD, which does not watch etcd, shows what the load on the
    # client core alone costs dnsperf.
    if [ "$kind" = nsd ] && [ "$n" = "$largest" ]; then
      churn_measure nsd "$n" "$ref_port" "$queries" "$ref_pid"
    fi
    stop "$ref_pid"
  done
  stop "$etcd_pid"
done

# ---------------------------------------------------------------- report
report=$work/report
{
  echo "etcd-dns vs NSD vs Knot — $(date -u '+%F %T UTC') on $(uname -n), $cores CPUs, mode $($quick && echo quick || echo full)"
  echo "$(git -C "$root" describe --always --dirty 2>/dev/null || echo '?') | $(nsd -v 2>&1 | head -n1) | $(knotd --version 2>&1 | head -n1) | $(etcd --version | head -n1)"
  echo "queries: 90 % existing names at random, 10 % NXDOMAIN, type A; server on core $server_cpu, dnsperf on core $client_cpu"
  echo "throughput: dnsperf -c 1 -q 100 -l $secs; latency: same at -Q $fixed_qps; median of $reps run(s) after a ${warm}s warm-up"
  echo "CPU/q = server CPU time (utime+stime from /proc/PID/stat) per completed query; busy = QPS × CPU/q, the"
  echo "share of the server core used (well under 100 % means dnsperf, not the server, set the pace);"
  echo "RSS = VmRSS after the runs (NSD: its processes summed); ready = process start → first NOERROR answer"
  echo
  printf '%-7s %-13s %8s %8s %5s %5s %9s %9s %6s %7s %8s %6s %9s\n' \
    N server QPS 'CPU/q' busy lost 'avg ms@Q' 'max ms@Q' 'lost@Q' 'RSS MB' 'ready ms' 'resp B' 'NOERR/NX%'
  for n in "${sizes[@]}"; do
    for s in etcd-dns nsd knot; do
      printf '%-7s %-13s %8s %6sus %5s %5s %9s %9s %6s %7s %8s %6s %9s\n' "$n" "$s" "${R[$s|$n|qps]}" \
        "${R[$s|$n|cpu]}" "$(busy "${R[$s|$n|qps]}" "${R[$s|$n|cpu]}")" "${R[$s|$n|lost]}" \
        "${R[$s|$n|avg]}" "${R[$s|$n|max]}" "${R[$s|$n|llost]}" \
        "${R[$s|$n|rss]}" "${R[$s|$n|ready]}" "${R[$s|$n|size]}" "${R[$s|$n|rcodes]}"
    done
    for s in nsd knot; do
      printf '%-7s %-13s %8s %8s %5s %5s %9s %9s %6s %7s %8s\n' "$n" "etcd-dns/$s" \
        "$(ratio "${R[etcd-dns|$n|qps]}" "${R[$s|$n|qps]}")x" "$(ratio "${R[etcd-dns|$n|cpu]}" "${R[$s|$n|cpu]}")x" "" "" \
        "$(ratio "${R[etcd-dns|$n|avg]}" "${R[$s|$n|avg]}")x" "" "" \
        "$(ratio "${R[etcd-dns|$n|rss]}" "${R[$s|$n|rss]}")x" "$(ratio "${R[etcd-dns|$n|ready]}" "${R[$s|$n|ready]}")x"
    done
  done
  for n in "${sizes[@]}"; do
    for s in etcd-dns nsd knot; do
      [ "${R[$s|$n|other]}" = none ] || echo "WARNING: $s N=$n answered other response codes: ${R[$s|$n|other]}"
    done
  done
  echo
  echo "etcd load: $(for n in "${sizes[@]}"; do printf 'N=%s in %ss  ' "$n" "${F[load|$n]}"; done)(bench_registry load: txns of 128 puts, 16 in flight)"
  echo
  echo "live updates (etcd-dns; ms from the request being sent to etcd until the DNS answer changed; polled every 100 µs;"
  echo "etcd ack = until etcd acknowledged the request: the part of the total that is etcd's own)"
  printf '%-8s %7s %26s %26s %9s %26s\n' N changes 'put→answer p50/p99/max' 'revoke→NXDOMAIN p50/p99/max' timeouts 'etcd ack p50/p99 put, rev'
  for n in "${sizes[@]}"; do
    l=${F[fresh|$n]}
    printf '%-8s %7s %26s %26s %9s %26s\n' "$n" "$(result "$l" changes)" \
      "$(result "$l" put_p50)/$(result "$l" put_p99)/$(result "$l" put_max)" \
      "$(result "$l" revoke_p50)/$(result "$l" revoke_p99)/$(result "$l" revoke_max)" \
      "$(($(result "$l" put_timeouts) + $(result "$l" revoke_timeouts)))" \
      "$(result "$l" put_ack_p50)/$(result "$l" put_ack_p99), $(result "$l" revoke_ack_p50)/$(result "$l" revoke_ack_p99)"
  done
  echo
  echo "crash (SIGKILL of register --ttl 5) → NXDOMAIN, N=$largest: median $(median "${kills[@]}") s (each: ${kills[*]} s)"
  echo
  echo "under churn (N=$largest: bench_registry churn rewrites the N keys at $churn_rate/s during throughput runs; etcd and"
  echo "the churn client run on core 0 with dnsperf, so NSD, which does not watch etcd, is the control for that cost)"
  echo "etcd-dns answers the churned data afterwards: ${F[churn_applied]}"
  printf '  %-9s %9s %9s %6s %9s %9s %6s %10s %14s\n' server 'QPS idle' 'QPS churn' ratio 'CPU/q idle' 'CPU/q churn' busy 'updates/s' 'CPU/update'
  for s in etcd-dns nsd; do
    printf '  %-9s %9s %9s %6s %8sus %9sus %6s %10s %14s\n' "$s" "${R[$s|$largest|qps]}" "${F[churn_qps|$s]}" \
      "$(ratio "${F[churn_qps|$s]}" "${R[$s|$largest|qps]}")" "${R[$s|$largest|cpu]}" "${F[churn_cpu|$s]}" \
      "$(busy "${F[churn_qps|$s]}" "${F[churn_cpu|$s]}")" "${F[churn_rate|$s]}" \
      "$(awk -v q="${F[churn_qps|$s]}" -v c="${F[churn_cpu|$s]}" -v c0="${R[$s|$largest|cpu]}" -v u="${F[churn_rate|$s]}" \
        'BEGIN { if (u > 0) printf "%.0fus", (c - c0) * q / u; else print "-" }')"
  done
  echo "  CPU/update = (CPU/q churn − CPU/q idle) × QPS churn ÷ updates/s: server CPU spent per applied update (≈ 0 for NSD)"
} >"$report"
cp "$report" "$results/latest.txt"
echo
cat "$report"
echo
echo "(written to bench/results/latest.txt; raw outputs in bench/results/latest.log)"
