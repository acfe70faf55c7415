#!/usr/bin/env bash
# Big services (issue #20): what a 5,000-instance service costs per query, capped by
# --max-answers 8 and uncapped (TC), beside a one-instance service and NSD.
#
#   bench/fleet.sh                    3 interleaved rounds × 10 s per row, 3 s warm-ups (~7 min)
#   bench/fleet.sh --quick            1 round × 2 s, 1 s warm-ups (smoke test, ~1 min)
#   bench/fleet.sh --bin DIR          DIR/etcd-dns instead of building
#   bench/fleet.sh --rounds R --secs S
#
# One etcd (core 0) holds `services/one` = {"IP":"10.9.9.9","port":8080} and 5,000 instances
# `services/big/i<n>` = {"IP":"10.0.0.1 + n","port":8080} (put through etcd's JSON gateway, 100
# puts per txn). Rows (every server pinned to core 1, dnsperf `-c 1 -q 100` to core 0, one name
# and type repeated):
#   1 one     etcd-dns, default flags: one.services.local A (1 record) — the baseline
#   2 big8    etcd-dns --max-answers 8: big.services.local A (8 records of 5,000, no TC)
#   3 srv8    the same server: big.services.local SRV (8 SRV + their 8 A in additional)
#   4 bigtc   etcd-dns, default flags (the server of row 1): big.services.local A, as many records
#             as fit the server's 1,232-byte cap (74) and TC
#   5 nsdbig  NSD serving a zone file where big.services.local. has the 5,000 A records (TTL 5)
#   6 nsd8    the same NSD: eight.services.local. with 8 A records (the answer size of row 2)
# Every query carries EDNS: dnsperf's -e (it advertises 4,096 bytes and has no flag to change
# that), added by a `dnsperf` wrapper first on the PATH because bench/lib.sh runs dnsperf with
# fixed flags; without EDNS, 8 SRV and their addresses would not fit 512 bytes.
# Before the rounds, dig (+bufsize=4096 +ignore) must see the expected answer of every row
# (records, TC flag), or the script stops. The rows take turns round after round (a throughput
# run each, then a fixed-rate run of 20,000 q/s each for the average latency); the table gives
# the medians of q/s, server CPU µs per query (utime + stime from /proc/PID/stat ÷ completed
# queries) and latency, and dnsperf's response size. Output: stdout and bench/results/fleet.txt;
# raw dnsperf output and logs: bench/results/fleet.log.
set -euo pipefail
command_line="bench/fleet.sh${*:+ $*}"
cd "$(dirname "$0")/.."
root=$PWD

rounds=3; secs=10; warm=3; bindir=""
instances=5000
qlines=1000
fixed_qps=20000
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) rounds=1; secs=2; warm=1 ;;
    --bin) bindir=$(realpath "$2"); shift ;;
    --rounds) rounds=$2; shift ;;
    --secs) secs=$2; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: bench/fleet.sh [--quick] [--bin DIR] [--rounds R] [--secs S]" >&2; exit 2 ;;
  esac
  shift
done

say() { echo "==> $*" >&2; }
die() { echo "bench/fleet.sh: $*" >&2; exit 1; }

work=$(mktemp -d /tmp/etcd-dns-fleet.XXXXXX)
source bench/lib.sh
trap cleanup EXIT
trap 'exit 130' INT TERM

install_missing dnsperf:dnsperf nsd:nsd etcd:etcd-server etcdctl:etcd-client \
  dig:bind9-dnsutils taskset:util-linux perl:perl

if [ -n "$bindir" ]; then
  bin=$bindir
  built="given: $bindir"
else
  command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust from https://rustup.rs"
  say "building (release): etcd-dns"
  cargo build --release --locked --bin etcd-dns >&2
  bin=${CARGO_TARGET_DIR:-$root/target}/release
  built="built from $(git describe --always --dirty 2>/dev/null || echo '?')"
fi
exe=$bin/etcd-dns
[ -x "$exe" ] || die "missing $exe"

# dnsperf with EDNS: lib.sh's dnsperf_run, warm_up and prime find this wrapper first on the PATH.
real_dnsperf=$(command -v dnsperf)
mkdir -p "$work/bin"
printf '#!/bin/sh\nexec %q -e "$@"\n' "$real_dnsperf" >"$work/bin/dnsperf"
chmod +x "$work/bin/dnsperf"
PATH=$work/bin:$PATH

results=$root/bench/results
mkdir -p "$results"
log=$results/fleet.log
: >"$log"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- data: etcd, zone file, queries
# Digits grouped by thousands; q/s, µs and ms rounded for the table.
commas() { sed ':a; s/\B[0-9]\{3\}\>/,&/; ta' <<<"$1"; }
qps() { commas "$(awk -v v="$1" 'BEGIN { printf "%.0f", v }')"; }
us() { awk -v v="$1" 'BEGIN { printf "%.2f", v }'; }
ms() { awk -v v="$1" 'BEGIN { printf "%.3f", v }'; }
count=$(commas "$instances")
zone=services.local.
# instances: "key<TAB>value" lines of the registry.
instances_tsv() {
  printf 'services/one\t{"IP":"10.9.9.9","port":8080}\n'
  awk -v n="$instances" 'BEGIN { for (i = 0; i < n; i++) { a = 167772161 + i
    printf "services/big/i%d\t{\"IP\":\"%d.%d.%d.%d\",\"port\":8080}\n", i,
      int(a / 16777216), int(a / 65536) % 256, int(a / 256) % 256, a % 256 } }'
}
# put_all URL < TSV: puts every line through etcd's JSON gateway, 100 puts per transaction.
put_all() {
  # shellcheck disable=SC2016 # perl's variables
  taskset -c "$client_cpu" perl -MHTTP::Tiny -MMIME::Base64 -e '
    my $url = "$ARGV[0]/v3/kv/txn"; my $http = HTTP::Tiny->new(timeout => 30); my (@ops, $n);
    sub flush {
      return unless @ops;
      my $r = $http->post($url, { content => "{\"success\":[" . join(",", @ops) . "]}",
        headers => { "Content-Type" => "application/json" } });
      die "txn failed: $r->{status} $r->{content}\n" unless $r->{success} && $r->{content} =~ /"succeeded":true/;
      @ops = ();
    }
    while (<STDIN>) {
      chomp; my ($k, $v) = split /\t/, $_, 2;
      push @ops, sprintf("{\"requestPut\":{\"key\":\"%s\",\"value\":\"%s\"}}", encode_base64($k, ""), encode_base64($v, ""));
      $n++; flush() if @ops == 100;
    }
    flush(); print "put $n keys\n";' "$1"
}
# The zone file NSD serves: the same addresses at big, the first 8 at eight, and one, TTL 5.
awk -v zone="$zone" -v n="$instances" 'BEGIN {
  print "$ORIGIN " zone; print "$TTL 5"
  print "@ IN SOA ns." zone " hostmaster." zone " 1 60 10 3600 5"
  print "@ IN NS ns." zone; print "ns IN A 127.0.0.1"; print "one IN A 10.9.9.9"
  for (i = 0; i < n; i++) { a = 167772161 + i
    ip = sprintf("%d.%d.%d.%d", int(a / 16777216), int(a / 65536) % 256, int(a / 256) % 256, a % 256)
    print "big IN A " ip; if (i < 8) print "eight IN A " ip }
}' >"$work/fleet.zone"
# queries NAME TYPE FILE: a dnsperf file of NAME TYPE, $qlines times.
queries() { awk -v q="$1 $2" -v n="$qlines" 'BEGIN { for (i = 0; i < n; i++) print q }' >"$3"; }
queries "one.$zone" A "$work/one.q"
queries "big.$zone" A "$work/big-a.q"
queries "big.$zone" SRV "$work/big-srv.q"
queries "eight.$zone" A "$work/eight.q"

start_etcd "$work/etcd" "$client_cpu"
say "putting services/one and $instances instances services/big/i<n> into etcd"
instances_tsv | put_all "$etcd_url" >>"$log" 2>&1 ||
  die "loading etcd failed (see $log)"

# ---------------------------------------------------------------- servers
empty=$work/no-zones
mkdir -p "$empty"
etcd_dns() {
  local label=$1
  shift
  start_etcd_dns "$exe" "$work/$label.log" "$server_cpu" --etcd "$etcd_url" --zones "$empty" \
    --no-forward --zone "$zone" --prefix services/ --ttl 5 "$@"
  srv_pid[$label]=$started_pid; srv_port[$label]=$started_port
  wait_for 60 "$label to answer one.$zone" answers "${srv_port[$label]}" "one.$zone" 10.9.9.9
}
etcd_dns etcd-dns
etcd_dns etcd-dns-8 --max-answers 8
srv_port[nsd]=$(free_port)
start_nsd "$work/nsd" "$server_cpu" "${srv_port[nsd]}" "$zone" "$work/fleet.zone"
srv_pid[nsd]=$started_pid
wait_for 60 "NSD to answer eight.$zone" answers "${srv_port[nsd]}" "eight.$zone"

# ---------------------------------------------------------------- rows
rows=(one big8 srv8 bigtc nsdbig nsd8)
declare -A row_server row_queries row_name row_type row_text
# def KEY SERVER NAME TYPE QUERIES TEXT
def() {
  row_server[$1]=$2; row_name[$1]=$3; row_type[$1]=$4; row_queries[$1]=$5; row_text[$1]=$6
}
def one etcd-dns "one.$zone" A "$work/one.q" "etcd-dns, default flags: one instance"
def big8 etcd-dns-8 "big.$zone" A "$work/big-a.q" "etcd-dns --max-answers 8: $count instances"
def srv8 etcd-dns-8 "big.$zone" SRV "$work/big-srv.q" "the same server, SRV"
def bigtc etcd-dns "big.$zone" A "$work/big-a.q" "etcd-dns, default flags (no cap): $count instances"
def nsdbig nsd "big.$zone" A "$work/big-a.q" "NSD: $count A records at one name"
def nsd8 nsd "eight.$zone" A "$work/eight.q" "the same NSD: 8 A records"

# look PORT NAME TYPE [DIG_OPTIONS...]: one dig exchange (EDNS 4096 as dnsperf's, no TCP retry) as
# "RCODE TC ANSWERS ANSWER_TYPE ADDITIONAL_A BYTES FIRST_RDATA", TC 0 or 1.
look() {
  local port=$1 name=$2 type=$3
  shift 3
  dig @127.0.0.1 -p "$port" "$name" "$type" +bufsize=4096 +ignore +time=2 +tries=2 "$@" 2>/dev/null |
    awk '
      /status:/ { s = $6; sub(/,$/, "", s) }
      /^;; flags:/ { f = $0; sub(/;.*flags:/, "", f); sub(/;.*/, "", f); tc = (f ~ / tc( |$)/) }
      /^;; MSG SIZE/ { b = $NF }
      /^;; [A-Z]+ SECTION:/ { sec = $2; next }
      /^$/ { sec = "" }
      /^[^;]/ && sec == "ANSWER" { n++; t = $4; if (first == "") first = $5 }
      /^[^;]/ && sec == "ADDITIONAL" && $4 == "A" { add++ }
      END { printf "%s %d %d %s %d %s %s\n", (s == "" ? "TIMEOUT" : s), tc, n, (t == "" ? "-" : t), add,
        (b == "" ? 0 : b), (first == "" ? "-" : first) }'
}
# describe "LOOK OUTPUT": the answer in words ("8 SRV + 8 A additional", "74 A, TC").
describe() {
  local rc tc n t add out
  read -r rc tc n t add _ <<<"$1"
  [ "$n" -gt 0 ] || t="records"
  out="$n $t"
  [ "$add" -eq 0 ] || out+=" + $add A additional"
  [ "$tc" = 0 ] || out+=", TC"
  [ "$rc" = NOERROR ] || out+=" ($rc)"
  echo "$out"
}
declare -A ANSWER
# verify KEY: the row's server must give its expected answer, or the script stops.
verify() {
  local key=$1 got rc tc n t add b first ok=true want
  got=$(look "${srv_port[${row_server[$key]}]}" "${row_name[$key]}" "${row_type[$key]}")
  read -r rc tc n t add b first <<<"$got"
  case $key in
    one) want="NOERROR, 1 A 10.9.9.9, no TC"
      [ "$rc $tc $n $t $first" = "NOERROR 0 1 A 10.9.9.9" ] || ok=false ;;
    big8 | nsd8) want="NOERROR, 8 A, no TC"
      [ "$rc $tc $n $t" = "NOERROR 0 8 A" ] || ok=false ;;
    srv8) want="NOERROR, 8 SRV + 8 A additional, no TC"
      [ "$rc $tc $n $t $add" = "NOERROR 0 8 SRV 8" ] || ok=false ;;
    bigtc) want="NOERROR, TC, more A records than 512 bytes hold (29), at most 1,232 bytes"
      if [ "$rc $tc $t" != "NOERROR 1 A" ] || [ "$n" -le 29 ] || [ "$b" -gt 1232 ]; then ok=false; fi ;;
    nsdbig) want="NOERROR with TC"
      [ "$rc $tc" = "NOERROR 1" ] || ok=false ;;
  esac
  $ok || die "row $key: ${row_name[$key]} ${row_type[$key]} from ${row_server[$key]} answered" \
    "'$(describe "$got"), $b bytes', expected $want"
  ANSWER[$key]=$(describe "$got")
  say "row $key: ${row_server[$key]} answers ${row_name[$key]} ${row_type[$key]}: ${ANSWER[$key]}, $b bytes"
}
for key in "${rows[@]}"; do verify "$key"; done
# What a client falling back to TCP after TC gets (noted under the table).
tcp_etcd=$(describe "$(look "${srv_port[etcd-dns]}" "big.$zone" A +tcp)")
tcp_nsd=$(describe "$(look "${srv_port[nsd]}" "big.$zone" A +tcp)")
tcp_etcd_bytes=$(look "${srv_port[etcd-dns]}" "big.$zone" A +tcp | cut -d' ' -f6)
tcp_nsd_bytes=$(look "${srv_port[nsd]}" "big.$zone" A +tcp | cut -d' ' -f6)

# ---------------------------------------------------------------- measure
for key in "${rows[@]}"; do warm_up "${srv_port[${row_server[$key]}]}" "${row_queries[$key]}" "$warm"; done
declare -A LAT RESP
for ((round = 1; round <= rounds; round++)); do
  say "round $round of $rounds: throughput"
  for key in "${rows[@]}"; do
    s=${row_server[$key]}
    interleave 1 "${row_queries[$key]}" "$key:" "$s"
    read -r _ _ _ _ _ _ _ _ bytes _ <"$work/run-$key:$s-1"
    RESP[$key]=$bytes
  done
  say "round $round of $rounds: latency at $fixed_qps q/s"
  for key in "${rows[@]}"; do
    s=${row_server[$key]}
    f=$work/lat-$key-$round
    dnsperf_run latency "${srv_port[$s]}" "${row_queries[$key]}" "$f" "${srv_pid[$s]}"
    read -r _ _ _ avg _ <"$f"
    LAT[$key]+="$avg "
    say "round $round $key: average latency $avg ms at $fixed_qps q/s"
  done
done
stop_all
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- report
# check KEY: warns when the row's answers were not all NOERROR.
check() {
  local codes c ok nx other
  read -ra codes <<<"${CODES[$1:${row_server[$1]}]}"
  for c in "${codes[@]}"; do
    IFS=/ read -r ok nx other <<<"$c"
    if [ "$other" != none ] || awk -v ok="$ok" 'BEGIN { exit !(ok < 99.9) }'; then
      echo "WARNING: row $1 answered NOERROR $ok %, NXDOMAIN $nx %, other rcodes: $other"
    fi
  done
}
report=$work/report
{
  echo "## Big services: $count instances at one name — $(date -u '+%F %T UTC')"
  echo
  echo "machine: $(uname -n), nproc $(nproc), load average before $load_before, after $load_after"
  echo "command: $command_line ($rounds round(s) × ${secs} s per row, ${warm} s warm-ups, latency at $fixed_qps q/s)"
  echo "versions: $("$exe" --version) ($built) | $(nsd -v 2>&1 | head -n1) |" \
    "etcd $(etcd --version 2>/dev/null | sed -n 's/^etcd Version: //p') | dnsperf $("$real_dnsperf" -v 2>&1 | sed -n 's/^Version //p')"
  echo "servers pinned to core $server_cpu, dnsperf -e -c 1 -q 100 (EDNS, 4096 bytes) to core $client_cpu; one name and type per row; medians"
  echo
  echo "| # | server | question | answer (dig) | response bytes | q/s | CPU µs/q | CPU / row 1 | avg latency ms |"
  echo "|--:|---|---|---|--:|--:|--:|--:|--:|"
  i=0
  cpu1=$(median_of CPU "one:${row_server[one]}")
  for key in "${rows[@]}"; do
    i=$((i + 1))
    k=$key:${row_server[$key]}
    echo "| $i | ${row_text[$key]} | \`${row_name[$key]%.} ${row_type[$key]}\` | ${ANSWER[$key]} | ${RESP[$key]} |" \
      "$(qps "$(median_of QPS "$k")") | $(us "$(median_of CPU "$k")") | $(ratio "$(median_of CPU "$k")" "$cpu1") |" \
      "$(ms "$(median_of LAT "$key")") |"
  done
  echo
  q2=$(median_of QPS big8:etcd-dns-8); q6=$(median_of QPS nsd8:nsd)
  c2=$(median_of CPU big8:etcd-dns-8); c6=$(median_of CPU nsd8:nsd)
  echo "row 2 / row 6 (8 A records, etcd-dns out of $count / NSD): QPS ratio $(ratio "$q2" "$q6"), CPU ratio $(ratio "$c2" "$c6")"
  echo "after TC, over TCP (dig +tcp): etcd-dns (row 4) answers $tcp_etcd, $tcp_etcd_bytes bytes; NSD (row 5) answers $tcp_nsd, $tcp_nsd_bytes bytes"
  if [ "$rounds" -gt 1 ]; then
    echo
    echo "spread (min–max of the rounds), q/s, CPU µs/q and latency ms:"
    for key in "${rows[@]}"; do
      k=$key:${row_server[$key]}
      echo "  $key: $(spread_of QPS "$k"), $(spread_of CPU "$k"), $(spread_of LAT "$key")"
    done
  fi
  for key in "${rows[@]}"; do check "$key"; done
} >"$report"
cp "$report" "$results/fleet.txt"
echo
cat "$report"
