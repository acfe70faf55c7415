#!/usr/bin/env bash
# Secondaries (issue #21): how fast a change reaches a NOTIFY-driven Knot secondary, and what a
# full transfer of 100,000 instances costs, beside Knot as the primary of the same zone.
#
#   bench/secondary.sh [--instances N] [--changes C]      (defaults 100000 and 1000)
#
# A fresh etcd with N instances (examples/bench_registry load), etcd-dns (release) with
# --allow-transfer 127.0.0.1 --notify to a Knot secondary of the zone. Prints:
#   1. AXFR of the zone from etcd-dns and from the Knot (which then holds the same records):
#      time and bytes as kdig reports them, three runs each;
#   2. put -> answered and revoke -> NXDOMAIN for C changes, polled every 100 us, at the Knot
#      secondary and at etcd-dns itself (bench_registry fresh): p50/p99/max in ms. The
#      difference is what NOTIFY, Knot's SOA query, the IXFR and Knot's reload add.
set -euo pipefail
cd "$(dirname "$0")/.."
instances=100000 changes=1000
while [ $# -gt 0 ]; do
  case $1 in
    --instances) instances=$2; shift 2 ;;
    --changes) changes=$2; shift 2 ;;
    *) echo "usage: bench/secondary.sh [--instances N] [--changes C]" >&2; exit 2 ;;
  esac
done
source scripts/deps.sh
command -v kdig >/dev/null 2>&1 || { echo "kdig not found: apt-get install -y knot-dnsutils" >&2; exit 1; }
cargo build --release --locked --quiet --bin etcd-dns --example bench_registry
bin=${CARGO_TARGET_DIR:-$PWD/target}/release
work=$(mktemp -d /tmp/etcd-dns-secondary.XXXXXX)
pids=()
# KEEP=1 keeps the work directory (logs of etcd, etcd-dns and Knot).
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "${KEEP:-}" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
free_port() { perl -MIO::Socket::INET -e 'print IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1", LocalPort => 0)->sockport'; }
# poll SECONDS WHAT COMMAND...: runs COMMAND every 0.1 s until it succeeds, or fails naming WHAT.
poll() {
  local limit=$1 what=$2 i
  shift 2
  for ((i = 0; i < limit * 10; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "bench/secondary.sh: $what: not within $limit s" >&2; exit 1
}
serial() { dig @127.0.0.1 -p "$1" services.local SOA +short 2>/dev/null | awk '{print $3}'; }
# has_serial PORT: the zone answers there; same_serial A B: both ports serve one serial.
has_serial() { test -n "$(serial "$1")"; }
same_serial() { test -n "$(serial "$1")" && test "$(serial "$1")" = "$(serial "$2")"; }

client=$(free_port); peer=$(free_port); endpoint="http://127.0.0.1:$client"
etcd --name bench --data-dir "$work/etcd" --listen-client-urls "$endpoint" --advertise-client-urls "$endpoint" \
  --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
  --initial-cluster "bench=http://127.0.0.1:$peer" --quota-backend-bytes 8589934592 >"$work/etcd.log" 2>&1 &
pids+=($!)
poll 30 "etcd" env ETCDCTL_API=3 etcdctl --endpoints "$endpoint" endpoint health
"$bin/examples/bench_registry" load --etcd "$endpoint" --count "$instances" >"$work/load.txt"

dns_port=$(free_port); knot_port=$(free_port)
env -u RUST_LOG "$bin/etcd-dns" --listen "127.0.0.1:$dns_port" --no-http --etcd "$endpoint" --zones "$work" \
  --no-forward --allow-transfer 127.0.0.1 --notify "127.0.0.1:$knot_port" 2>"$work/dns.log" &
pids+=($!)
poll 60 "etcd-dns ready" has_serial "$dns_port"

mkdir -p "$work/knot"
cat >"$work/knot/knot.conf" <<CONF
server:
    listen: 127.0.0.1@$knot_port
    rundir: $work/knot
log:
  - target: stderr
    any: info
database:
    storage: $work/knot
remote:
  - id: etcd-dns
    address: 127.0.0.1@$dns_port
acl:
  - id: primary
    address: 127.0.0.1
    action: [notify, transfer]
zone:
  - domain: services.local
    master: etcd-dns
    acl: primary
    file: $work/knot/services.local.zone
    zonefile-sync: -1
    journal-content: none
CONF
knotd -c "$work/knot/knot.conf" 2>"$work/knot.log" &
pids+=($!)
started=$(date +%s.%N)
poll 300 "Knot at etcd-dns's serial" same_serial "$knot_port" "$dns_port"
first=$(awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')

echo "== $(date -u '+%F %T') UTC, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); $instances instances"
echo "versions: $("$bin/etcd-dns" --version) ($(git rev-parse --short HEAD)) | $(knotd --version | head -n1) | $(etcd --version | head -n1)"
echo "Knot's first transfer (start to its serial): $first s"
echo
echo "AXFR (kdig, 3 runs each): time ms, bytes, messages, records"
for who in etcd-dns:$dns_port knot:$knot_port; do
  for run in 1 2 3; do
    out=$(kdig @127.0.0.1 -p "${who#*:}" services.local AXFR +noall +stats 2>&1 | tr '\n' ' ')
    ms=$(sed -n 's/.*in \([0-9.]*\) ms.*/\1/p' <<<"$out")
    size=$(sed -n 's/.*Received \([0-9]*\) B (\([0-9]*\) messages, \([0-9]*\) records).*/\1 \2 \3/p' <<<"$out")
    echo "  ${who%%:*} run $run: $ms ms, $size"
  done
done
echo
echo "put -> answered, revoke -> NXDOMAIN ($changes changes each, polled every 100 us):"
for who in knot:$knot_port etcd-dns:$dns_port; do
  echo "-- at ${who%%:*}"
  "$bin/examples/bench_registry" fresh --etcd "$endpoint" --dns "127.0.0.1:${who#*:}" --changes "$changes" |
    grep -v '^RESULT' | sed 's/^/  /'
done
grep -c "IXFR, incoming.*finished" "$work/knot.log" | sed 's/^/IXFRs Knot completed: /'
