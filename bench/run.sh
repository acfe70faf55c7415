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
need=()
command -v dnsperf >/dev/null 2>&1 || need+=(dnsperf)
command -v knotd >/dev/null 2>&1 || need+=(knot)
command -v nsd >/dev/null 2>&1 || need+=(nsd)
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || need+=(etcd-client)
command -v dig >/dev/null 2>&1 || need+=(bind9-dnsutils)
command -v protoc >/dev/null 2>&1 || need+=(protobuf-compiler)
[ -e /usr/include/google/protobuf/descriptor.proto ] || need+=(libprotobuf-dev)
command -v taskset >/dev/null 2>&1 || need+=(util-linux)
command -v perl >/dev/null 2>&1 || need+=(perl)
command -v cc >/dev/null 2>&1 || need+=(gcc)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "need root (or sudo) to install: ${need[*]}"
    sudo="sudo"
  fi
  say "installing ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # The packages start system services on port 53 (and etcd on 2379); this script runs its own.
  for service in nsd knot etcd; do
    case " ${need[*]} " in
      *" $service "* | *" $service-server "*)
        if command -v systemctl >/dev/null 2>&1; then
          $sudo systemctl disable --now "$service" >/dev/null 2>&1 || true
        fi ;;
    esac
  done
fi
command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust from https://rustup.rs"

cores=$(nproc)
if [ "$cores" -ge 2 ]; then client_cpu=0; server_cpu=1; else
  client_cpu=0; server_cpu=0; echo "warning: 1 CPU: client and server share it" >&2
fi

say "building (release): etcd-dns, register, bench_registry"
cargo build --release --locked --quiet --bins --examples
bin=${CARGO_TARGET_DIR:-$root/target}/release
tool=$bin/examples/bench_registry
for b in "$bin/etcd-dns" "$bin/register" "$tool"; do [ -x "$b" ] || die "missing $b"; done

# ---------------------------------------------------------------- processes and helpers
work=$(mktemp -d /tmp/etcd-dns-bench.XXXXXX)
results=$root/bench/results
mkdir -p "$results"
log=$results/latest.log
: >"$log"
pids=()

descendants() { # PID → PID and all its descendants
  local pid=$1 child
  echo "$pid"
  for child in $(pgrep -P "$pid" 2>/dev/null || true); do descendants "$child"; done
}
# stop PID: SIGTERM to it and its descendants, wait up to 5 s, then SIGKILL what is left.
stop() {
  local pid=$1 all p deadline
  all=$(descendants "$pid")
  kill -TERM $all 2>/dev/null || true
  deadline=$((SECONDS + 5))
  for p in $all; do
    while kill -0 "$p" 2>/dev/null && [ "$(ps -o stat= -p "$p" 2>/dev/null | cut -c1)" != Z ]; do
      if [ $SECONDS -ge $deadline ]; then kill -KILL "$p" 2>/dev/null || true; break; fi
      sleep 0.05
    done
  done
  wait "$pid" 2>/dev/null || true
  local kept=()
  for p in "${pids[@]}"; do [ "$p" = "$pid" ] || kept+=("$p"); done
  pids=("${kept[@]}")
}
cleanup() {
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop "${pids[$i]}"; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

source bench/lib.sh
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
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
  if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
busy() { awk -v q="$1" -v c="$2" 'BEGIN { if (q == q + 0 && c == c + 0) printf "%.0f%%", q * c / 1e4; else print "-" }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0 && a == a + 0) printf "%.2f", a / b; else print "-" }'; }
clk_tck=$(getconf CLK_TCK)
# CPU ticks (utime + stime, all threads) of the given PIDs and their descendants.
cpu_ticks() {
  local total=0 p t
  for p in $(for q in "$@"; do descendants "$q"; done); do
    t=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{ print $12 + $13 }') || t=0
    total=$((total + ${t:-0}))
  done
  echo "$total"
}
# Resident memory in MB of the given PIDs and their descendants (summed).
rss_mb() {
  local p
  for p in $(for q in "$@"; do descendants "$q"; done); do
    sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$p/status" 2>/dev/null || true
  done | awk '{ s += $1 } END { printf "%.1f", s / 1024 }'
}
# Address of instance i (as bench_registry's instance_addr): 10.0.0.1 + i.
addr_of() {
  local a=$((0x0A000001 + $1))
  echo "$((a >> 24 & 255)).$((a >> 16 & 255)).$((a >> 8 & 255)).$((a & 255))"
}
# check_answer PORT N: the last instance answers its address.
check_answer() {
  local got want
  got=$(dig @127.0.0.1 -p "$1" "n$(($2 - 1)).$zone" A +short +time=2 +tries=2 2>/dev/null | head -n1)
  want=$(addr_of $(($2 - 1)))
  [ "$got" = "$want" ] || die "port $1: n$(($2 - 1)).$zone answered '$got', expected $want"
}

# dnsperf MODE PORT QUERIES OUT PIDS...: one pinned dnsperf run (MODE throughput or latency);
# writes "completed lost qps avg_ms max_ms noerror_pct nxdomain_pct other_rcodes resp_bytes cpu_us_per_q"
dnsperf_run() {
  local mode=$1 port=$2 queries=$3 out=$4 extra=() t0 t1
  shift 4
  [ "$mode" = latency ] && extra=(-Q "$fixed_qps")
  t0=$(cpu_ticks "$@")
  taskset -c "$client_cpu" dnsperf -s 127.0.0.1 -p "$port" -d "$queries" -l "$secs" -c 1 -q 100 \
    "${extra[@]}" >"$out.raw" 2>&1 || { cat "$out.raw" >>"$log"; die "dnsperf failed"; }
  t1=$(cpu_ticks "$@")
  { echo "--- dnsperf $mode port $port"; cat "$out.raw"; } >>"$log"
  awk -v ticks=$((t1 - t0)) -v hz="$clk_tck" '
    /Queries completed:/ { c = $3 }
    /Queries lost:/ { l = $3 }
    /Queries per second:/ { q = $4 }
    /Average Latency/ { a = $4 * 1000; m = $8; sub(/\)/, "", m); m *= 1000 }
    /Average packet size:/ { r = $NF }
    /Response codes:/ {
      for (i = 3; i < NF; i++) if ($i ~ /^[A-Z]+$/) { n = $(i + 1); if ($i == "NOERROR") ok = n; else if ($i == "NXDOMAIN") nx = n; else other = other $i "," }
    }
    END {
      if (c == 0) { print "0 0 0 nan nan 0 0 none 0 nan"; exit }
      printf "%d %d %.0f %.3f %.3f %.1f %.1f %s %s %.2f\n", c, l, q, a, m, 100 * ok / c, 100 * nx / c,
        (other == "" ? "none" : other), r, ticks / hz * 1e6 / c
    }' "$out.raw" >"$out"
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
etcd_pid=""; etcd_url=""; dns_pid=""; dns_port=""
start_etcd() {
  local n=$1 client peer
  client=$(free_port); peer=$(free_port)
  etcd_url="http://127.0.0.1:$client"
  taskset -c "$client_cpu" etcd --name bench --data-dir "$work/etcd-$n" \
    --listen-client-urls "$etcd_url" --advertise-client-urls "$etcd_url" \
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "bench=http://127.0.0.1:$peer" >"$work/etcd-$n.log" 2>&1 &
  etcd_pid=$!; pids+=("$etcd_pid")
  wait_for 30 "etcd on $etcd_url" env ETCDCTL_API=3 etcdctl --endpoints "$etcd_url" endpoint health
}
start_etcd_dns() {
  local n=$1 t0 line
  t0=$(now_ns)
  env -u RUST_LOG taskset -c "$server_cpu" "$bin/etcd-dns" --listen 127.0.0.1:0 --http 127.0.0.1:0 --etcd "$etcd_url" \
    --zone "$zone" --prefix "$prefix" --ttl 5 2>"$work/etcd-dns-$n.log" &
  dns_pid=$!; pids+=("$dns_pid")
  wait_for 30 "etcd-dns to listen" grep -q "listening addr=127.0.0.1:" "$work/etcd-dns-$n.log"
  dns_port=$(sed -n 's/.*listening addr=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/etcd-dns-$n.log" | head -n1)
  line=$(run_tool taskset -c "$client_cpu" "$tool" wait --dns "127.0.0.1:$dns_port" \
    --name "n$((n - 1)).$zone" --since-unix-ns "$t0" --timeout 120)
  R[etcd-dns|$n|ready]=$(result "$line" ms)
  check_answer "$dns_port" "$n"
}
write_zone() { # N FILE
  awk -v n="$1" -v zone="$zone" 'BEGIN {
    print "$ORIGIN " zone; print "$TTL 5"
    print "@ IN SOA ns." zone " hostmaster." zone " 1 60 10 3600 5"
    print "@ IN NS ns." zone
    for (i = 0; i < n; i++) { a = 167772161 + i
      printf "n%d IN A %d.%d.%d.%d\n", i, int(a / 16777216), int(a / 65536) % 256, int(a / 256) % 256, a % 256 }
  }' >"$2"
}
write_queries() { # N FILE: 90 % existing names at random, every 10th line a missing one
  awk -v n="$1" -v lines="$qlines" -v zone="$zone" 'BEGIN { srand(20240601)
    for (i = 0; i < lines; i++)
      if (i % 10 == 9) printf "nx%d.%s A\n", i, zone; else printf "n%d.%s A\n", int(rand() * n), zone
  }' >"$2"
}
# start_reference nsd|knot N ZONEFILE: starts the server pinned to the server core; sets ref_pid, ref_port.
ref_pid=""; ref_port=""
start_reference() {
  local kind=$1 n=$2 zonefile=$3 dir=$work/$1-$2 t0 line
  mkdir -p "$dir"
  ref_port=$(free_port)
  t0=$(now_ns)
  if [ "$kind" = nsd ]; then
    cat >"$dir/nsd.conf" <<EOF
server:
  ip-address: 127.0.0.1@$ref_port
  do-ip6: no
  server-count: 1
  username: ""
  chroot: ""
  zonesdir: "$dir"
  database: ""
  zonelistfile: "$dir/zone.list"
  xfrdfile: "$dir/xfrd.state"
  xfrdir: "$dir"
  pidfile: "$dir/nsd.pid"
  logfile: "$dir/nsd.log"
  rrl-ratelimit: 0
  minimal-responses: yes
remote-control:
  control-enable: no
zone:
  name: ${zone%.}
  zonefile: "$zonefile"
EOF
    taskset -c "$server_cpu" nsd -d -c "$dir/nsd.conf" >"$dir/stdout.log" 2>&1 &
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
  fi
  ref_pid=$!; pids+=("$ref_pid")
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
  start_etcd "$n"
  line=$(run_tool taskset -c "$client_cpu" "$tool" load --etcd "$etcd_url" --count "$n" --prefix "$prefix")
  F[load|$n]=$(result "$line" seconds)
  queries=$work/queries-$n
  write_queries "$n" "$queries"

  say "N=$n: starting etcd-dns on core $server_cpu"
  start_etcd_dns "$n"
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
  write_zone "$n" "$zonefile"
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
