#!/usr/bin/env bash
# The rows of issue #14's table in one run: each kind of answer etcd-dns gives, beside the
# reference server for it, with ratios.
#
#   bench/compare.sh                    3 interleaved rounds × 10 s per server and row, 3 s warm-ups (~5 min)
#   bench/compare.sh --quick            1 round × 2 s, 1 s warm-ups (smoke test, under a minute)
#   bench/compare.sh --bin DIR          DIR/etcd-dns and DIR/examples/bench_registry instead of building
#   bench/compare.sh --rounds R --secs S --instances N
#
# Rows (both servers of a row run pinned to core 1; dnsperf `-c 1 -q 100`, etcd and the NSD
# upstream pinned to core 0):
#   forward  cached forwarded names: NSD serves 10,000 A names (TTL 3600) under fwd.test.;
#            etcd-dns --upstream NSD against unbound forwarding to the same NSD (one thread,
#            its default caches). Both are asked every name once and warmed up, so every measured
#            query is a cache hit. Queries: the names at random.
#   static   a static zone file (`--zones DIR`), static.test. with 10,000 A names, against NSD
#            serving the same file. Queries: all existing names at random.
#   nx10     the same two servers, 90 % existing names / 10 % NXDOMAIN (every 10th query).
#   live     the live zone: N = 100,000 instances put into etcd by `bench_registry load`, against
#            NSD serving an equivalent zone file (same names and addresses, TTL 5). Queries 90/10.
#   million  hook for bench/million.sh (1,000,000 instances; built on another branch): when the
#            file exists it runs last (with --quick when given, and BENCH_BIN_DIR) and its
#            output lines are printed after the table.
# Before it is measured, every server must answer an existing name NOERROR with the right address
# and a missing one NXDOMAIN (dig), or the script stops: a broken configuration gives no number.
# The two servers of a row take turns, round after round; the table shows the medians of
# q/s and of server CPU µs per query (utime + stime from /proc/PID/stat ÷ completed queries), and
# the ratios etcd-dns / reference (QPS ratio ≥ 1 and CPU ratio ≤ 1 mean etcd-dns does better).
# The table goes to stdout and bench/results/compare.txt; raw dnsperf output to compare.log.
set -euo pipefail
command_line="bench/compare.sh${*:+ $*}"
cd "$(dirname "$0")/.."
root=$PWD

quick=false; rounds=3; secs=10; warm=3; instances=100000; bindir=""
names=10000
qlines=200000
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=true; rounds=1; secs=2; warm=1 ;;
    --bin) bindir=$(realpath "$2"); shift ;;
    --rounds) rounds=$2; shift ;;
    --secs) secs=$2; shift ;;
    --instances) instances=$2; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: bench/compare.sh [--quick] [--bin DIR] [--rounds R] [--secs S] [--instances N]" >&2; exit 2 ;;
  esac
  shift
done

say() { echo "==> $*" >&2; }
die() { echo "bench/compare.sh: $*" >&2; exit 1; }

work=$(mktemp -d /tmp/etcd-dns-compare.XXXXXX)
source bench/lib.sh
trap cleanup EXIT
trap 'exit 130' INT TERM

install_missing dnsperf:dnsperf nsd:nsd unbound:unbound etcd:etcd-server etcdctl:etcd-client \
  dig:bind9-dnsutils taskset:util-linux perl:perl

if [ -n "$bindir" ]; then
  bin=$bindir
  built="given: $bindir"
else
  command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust from https://rustup.rs"
  say "building (release): etcd-dns and bench_registry"
  cargo build --release --locked --bins --examples >&2
  bin=${CARGO_TARGET_DIR:-$root/target}/release
  built="built from $(git describe --always --dirty 2>/dev/null || echo '?')"
fi
exe=$bin/etcd-dns
tool=$bin/examples/bench_registry
[ -x "$tool" ] || tool=$bin/bench_registry
for b in "$exe" "$tool"; do [ -x "$b" ] || die "missing $b"; done

results=$root/bench/results
mkdir -p "$results"
log=$results/compare.log
: >"$log"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# verify LABEL PORT ZONE N: n<N-1>.ZONE answers NOERROR with its address and nx-check.ZONE
# NXDOMAIN, or the script stops.
verify() {
  local label=$1 port=$2 zone=$3 n=$4 got want
  want="NOERROR $(addr_of $((n - 1)))"
  got=$(answer "$port" "n$((n - 1)).$zone")
  [ "$got" = "$want" ] || die "$label: n$((n - 1)).$zone answered '$got', expected '$want'"
  got=$(answer "$port" "nx-check.$zone")
  [ "$got" = "NXDOMAIN -" ] || die "$label: nx-check.$zone answered '$got', expected NXDOMAIN"
  say "$label (pid ${srv_pid[$label]}, port $port) answers n$((n - 1)).$zone $want and nx-check.$zone NXDOMAIN"
}
# etcd_dns LABEL ARGS...: etcd-dns on core 1 with ARGS, as server LABEL.
etcd_dns() {
  local label=$1
  shift
  start_etcd_dns "$exe" "$work/$label.log" "$server_cpu" --etcd "$etcd_url" "$@"
  srv_pid[$label]=$started_pid; srv_port[$label]=$started_port
}
# nsd_serving LABEL CPU ZONE FILE: NSD serving FILE, as server LABEL.
nsd_serving() {
  srv_port[$1]=$(free_port)
  start_nsd "$work/$1" "$2" "${srv_port[$1]}" "$3" "$4"
  srv_pid[$1]=$started_pid
}
# row KEY QUERIES ETCD_DNS REFERENCE: warm-ups, then the interleaved rounds of the pair.
row() {
  local key=$1 queries=$2 s
  shift 2
  for s in "$@"; do warm_up "${srv_port[$s]}" "$queries" "$warm"; done
  interleave "$rounds" "$queries" "$key:" "$@"
}

empty=$work/no-zones
mkdir -p "$empty"
start_etcd "$work/etcd" "$client_cpu"

# ---------------------------------------------------------------- forward: cached forwarded names
fzone=fwd.test.
write_zone "$fzone" "$names" 3600 300 "$work/fwd.zone"
write_queries "$fzone" "$names" "$qlines" 0 20261126 "$work/fwd.queries"
write_every_name "$fzone" "$names" "$work/fwd.every"
nsd_serving upstream "$client_cpu" "$fzone" "$work/fwd.zone"
wait_for 30 "the NSD upstream" answers "${srv_port[upstream]}" "n0.$fzone"
verify upstream "${srv_port[upstream]}" "$fzone" "$names"

etcd_dns fwd-etcd-dns --zones "$empty" --upstream "127.0.0.1:${srv_port[upstream]}"
srv_port[fwd-unbound]=$(free_port)
start_unbound "$work/unbound" "$server_cpu" "${srv_port[fwd-unbound]}" "$fzone" "${srv_port[upstream]}"
srv_pid[fwd-unbound]=$started_pid
for s in fwd-etcd-dns fwd-unbound; do
  wait_for 30 "$s to answer" answers "${srv_port[$s]}" "n0.$fzone"
  verify "$s" "${srv_port[$s]}" "$fzone" "$names"
  say "$s: asking each of the $names names once"
  prime "${srv_port[$s]}" "$work/fwd.every"
done
row forward "$work/fwd.queries" fwd-etcd-dns fwd-unbound
for s in fwd-unbound fwd-etcd-dns upstream; do stop "${srv_pid[$s]}"; done

# ---------------------------------------------------------------- static and nx10: a zone file
szone=static.test.
mkdir -p "$work/zones"
write_zone "$szone" "$names" 3600 300 "$work/zones/${szone%.}.zone"
write_queries "$szone" "$names" "$qlines" 0 20240601 "$work/static.queries"
write_queries "$szone" "$names" "$qlines" 10 20240601 "$work/nx10.queries"
etcd_dns static-etcd-dns --zones "$work/zones" --no-forward
nsd_serving static-nsd "$server_cpu" "$szone" "$work/zones/${szone%.}.zone"
for s in static-etcd-dns static-nsd; do
  wait_for 30 "$s to answer" answers "${srv_port[$s]}" "n0.$szone"
  verify "$s" "${srv_port[$s]}" "$szone" "$names"
done
row static "$work/static.queries" static-etcd-dns static-nsd
row nx10 "$work/nx10.queries" static-etcd-dns static-nsd
for s in static-nsd static-etcd-dns; do stop "${srv_pid[$s]}"; done

# ---------------------------------------------------------------- live: the registry in etcd
lzone=services.local.
say "putting $instances instances into etcd (bench_registry load)"
taskset -c "$client_cpu" "$tool" load --etcd "$etcd_url" --count "$instances" --prefix services/ >>"$log" 2>&1 ||
  die "bench_registry load failed (see $log)"
write_zone "$lzone" "$instances" 5 5 "$work/live.zone"
write_queries "$lzone" "$instances" "$qlines" 10 20240601 "$work/live.queries"
etcd_dns live-etcd-dns --zones "$empty" --no-forward --zone "$lzone" --prefix services/ --ttl 5
nsd_serving live-nsd "$server_cpu" "$lzone" "$work/live.zone"
for s in live-etcd-dns live-nsd; do
  wait_for 300 "$s to answer the last instance" answers "${srv_port[$s]}" "n$((instances - 1)).$lzone"
  verify "$s" "${srv_port[$s]}" "$lzone" "$instances"
done
row live "$work/live.queries" live-etcd-dns live-nsd
stop_all

# ---------------------------------------------------------------- HOOK: 1,000,000 instances
# bench/million.sh is being written on another branch (the fifth row: ready time and RSS at a
# million instances). When it is there, it runs here, alone on the machine, and its stdout lines
# are printed after the table. It gets --quick when this run has it, and BENCH_BIN_DIR.
million=""
if [ -f bench/million.sh ]; then
  say "running bench/million.sh"
  million_args=()
  if $quick; then million_args=(--quick); fi
  million=$(BENCH_BIN_DIR=$bin bash bench/million.sh "${million_args[@]}" 2>>"$log") ||
    million="${million:+$million
}bench/million.sh failed (exit $?; its stderr is in bench/results/compare.log)"
fi
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- report
# Digits grouped by thousands (the q/s of the table); q/s and µs rounded as dnsperf_run's are.
commas() { sed ':a; s/\B[0-9]\{3\}\>/,&/; ta' <<<"$1"; }
qps() { commas "$(awk -v v="$1" 'BEGIN { printf "%.0f", v }')"; }
us() { awk -v v="$1" 'BEGIN { printf "%.2f", v }'; }
# line KEY ROW REFERENCE ETCD_DNS_LABEL REFERENCE_LABEL: one table row of medians and ratios.
line() {
  local key=$1 what=$2 ref=$3 a=$1:$4 b=$1:$5 qa qb ca cb
  qa=$(median_of QPS "$a"); qb=$(median_of QPS "$b"); ca=$(median_of CPU "$a"); cb=$(median_of CPU "$b")
  echo "| $what | $(qps "$qa") | $(us "$ca") | $ref | $(qps "$qb") | $(us "$cb") | $(ratio "$qa" "$qb") | $(ratio "$ca" "$cb") |"
}
# check KEY LABEL NX%: warns when the server's answers were not the expected mix.
check() {
  local codes c ok nx other
  read -ra codes <<<"${CODES[$1:$2]}"
  for c in "${codes[@]}"; do
    IFS=/ read -r ok nx other <<<"$c"
    if [ "$other" != none ] || awk -v nx="$nx" -v want="$3" 'BEGIN { exit !(nx - want > 1 || want - nx > 1) }'; then
      echo "WARNING: $1 $2 answered NOERROR $ok %, NXDOMAIN $nx % (expected $3 %), other rcodes: $other"
    fi
  done
}
report=$work/report
{
  echo "## etcd-dns against the reference servers — $(date -u '+%F %T UTC')"
  echo
  echo "machine: $(uname -n), nproc $(nproc), load average before $load_before, after $load_after"
  echo "command: $command_line ($rounds round(s) × ${secs} s per server and row, ${warm} s warm-ups)"
  echo "versions: $("$exe" --version) ($built) | $(nsd -v 2>&1 | head -n1) |" \
    "unbound $(unbound -V 2>&1 | sed -n 's/^Version //p' | head -n1) | dnsperf $(dnsperf -v 2>&1 | sed -n 's/^Version //p')"
  echo "servers pinned to core $server_cpu, dnsperf -c 1 -q 100 to core $client_cpu; medians; ratios are etcd-dns / reference"
  echo
  echo "| row | etcd-dns q/s | CPU µs/q | reference | q/s | CPU µs/q | QPS ratio | CPU ratio |"
  echo "|---|--:|--:|---|--:|--:|--:|--:|"
  line forward "cached forwarded names ($(commas "$names") names of an NSD upstream)" "unbound forwarding, its cache" fwd-etcd-dns fwd-unbound
  line static "static zone file (\`--zones\`), $(commas "$names") A names, all existing" "NSD, the same file" static-etcd-dns static-nsd
  line nx10 "the same zone, 90 % existing / 10 % NXDOMAIN" "NSD, the same file" static-etcd-dns static-nsd
  line live "live zone at $(commas "$instances") instances" "NSD, an equivalent zone file" live-etcd-dns live-nsd
  if [ "$rounds" -gt 1 ]; then
    echo
    echo "spread (min–max of the rounds), q/s and CPU µs/q:"
    for k in forward:fwd-etcd-dns forward:fwd-unbound static:static-etcd-dns static:static-nsd \
      nx10:static-etcd-dns nx10:static-nsd live:live-etcd-dns live:live-nsd; do
      echo "  $k: $(spread_of QPS "$k"), $(spread_of CPU "$k")"
    done
  fi
  check forward fwd-etcd-dns 0; check forward fwd-unbound 0
  check static static-etcd-dns 0; check static static-nsd 0
  check nx10 static-etcd-dns 10; check nx10 static-nsd 10
  check live live-etcd-dns 10; check live live-nsd 10
  if [ -n "$million" ]; then
    echo
    echo "### 1,000,000 instances (bench/million.sh)"
    echo
    echo "$million"
  fi
} >"$report"
cp "$report" "$results/compare.txt"
echo
cat "$report"
