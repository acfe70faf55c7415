#!/usr/bin/env bash
# Encrypted transports (issue #23): queries per second, server CPU per query and latency of the
# live zone over UDP, TCP, DNS over TLS and DNS over HTTPS (dnsperf -m udp|tcp|dot|doh), same
# server, same names.
#
#   bench/encrypted.sh [--rounds R] [--secs S] [--instances N]     (defaults 3, 10, 1000)
#
# A fresh etcd with N instances (examples/bench_registry load), etcd-dns (release) pinned to core
# 1 with --tls-listen and --https-listen (a self-signed P-256 certificate), the client pinned to
# core 0 with one connection and 100 queries outstanding: dnsperf for UDP, TCP and DoT (one
# connection, pipelined), h2load for DoH (POST of one A query, 100 HTTP/2 streams at once):
# dnsperf 2.11's own DoH client is its bottleneck (here 1.25 q/s on one name with 63 % lost, where
# h2load gets 81,600 req/s from the same server). The rows take turns round after round; the
# table gives medians.
# DNS over QUIC is not measured: dnsperf has no DoQ mode. Knot 3.2 (Debian's) serves no DoT, so
# there is no Knot row. Output: stdout; raw dnsperf output in the work directory (KEEP=1 keeps it).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=3; secs=10; instances=1000
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --secs) secs=$2; shift 2 ;;
    --instances) instances=$2; shift 2 ;;
    *) echo "usage: bench/encrypted.sh [--rounds R] [--secs S] [--instances N]" >&2; exit 2 ;;
  esac
done
say() { echo "==> $*" >&2; }
die() { echo "bench/encrypted.sh: $*" >&2; exit 1; }
work=$(mktemp -d /tmp/etcd-dns-encrypted.XXXXXX)
log=$work/dnsperf.log
source bench/lib.sh
cleanup_keep() { if [ "${KEEP:-}" = 1 ]; then stop_all; echo "kept $work" >&2; else cleanup; fi; }
trap cleanup_keep EXIT
install_missing dnsperf:dnsperf etcd:etcd-server etcdctl:etcd-client taskset:util-linux \
  perl:perl openssl:openssl h2load:nghttp2-client python3:python3
cargo build --release --locked --quiet --bin etcd-dns --example bench_registry
bin=${CARGO_TARGET_DIR:-$PWD/target}/release

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost -keyout "$work/tls.key" -out "$work/tls.pem" 2>/dev/null
start_etcd "$work/etcd" "$client_cpu"
"$bin/examples/bench_registry" load --etcd "$etcd_url" --count "$instances" >/dev/null
tls_port=$(free_port); https_port=$(free_port)
start_etcd_dns "$bin/etcd-dns" "$work/etcd-dns.log" "$server_cpu" --etcd "$etcd_url" --no-forward \
  --zones "$work" --tls-listen "127.0.0.1:$tls_port" --https-listen "127.0.0.1:$https_port" \
  --tls-cert "$work/tls.pem" --tls-key "$work/tls.key"
port=$started_port; pid=$started_pid
wait_for 30 "the registry" grep -q "registry loaded" "$work/etcd-dns.log"
for i in $(seq 0 $((instances - 1))); do echo "n$i.services.local A"; done >"$work/queries"
# One DoH body: n0.services.local A, query ID 0 (RFC 8484 §4.1).
python3 -c 'import struct, sys
name = b"".join(bytes([len(l)]) + l.encode() for l in "n0.services.local".split(".")) + b"\0"
sys.stdout.buffer.write(struct.pack(">6H", 0, 0x0100, 1, 0, 0, 0) + name + struct.pack(">HH", 1, 1))' \
  >"$work/query.bin"

declare -A qps cpu lat
run() { # MODE
  local mode=$1 args=() t0 t1 out=$work/$1.out
  t0=$(cpu_ticks "$pid")
  if [ "$mode" = doh ]; then
    taskset -c "$client_cpu" h2load -D "$secs" -c 1 -m 100 -d "$work/query.bin" \
      -H "content-type: application/dns-message" "https://127.0.0.1:$https_port/dns-query" \
      >"$out" 2>&1 || { cat "$out" >&2; die "h2load failed"; }
  else
    case $mode in
      udp | tcp) args=(-m "$mode" -p "$port") ;;
      dot) args=(-m dot -p "$tls_port") ;;
    esac
    taskset -c "$client_cpu" dnsperf -s 127.0.0.1 "${args[@]}" -d "$work/queries" -l "$secs" -c 1 \
      -q 100 >"$out" 2>&1 || { cat "$out" >&2; die "dnsperf -m $mode failed"; }
  fi
  t1=$(cpu_ticks "$pid")
  { echo "--- $mode"; cat "$out"; } >>"$log"
  read -r q c l < <(awk -v ticks=$((t1 - t0)) -v hz="$clk_tck" '
    /Queries completed:/ { n = $3 } /Queries per second:/ { q = $4 } /Average Latency/ { a = $4 * 1000 }
    /^requests:/ { n = $8 } /^finished in/ { q = $4 + 0 }
    /^time for request:/ { a = $6; if (a ~ /us$/) a = a / 1000; else if (a ~ /ms$/) a = a + 0; else a = a * 1000 }
    END { if (n == 0) print "0 nan nan"; else printf "%.0f %.2f %.3f\n", q, ticks / hz * 1e6 / n, a }' "$out")
  qps[$mode]+="$q "; cpu[$mode]+="$c "; lat[$mode]+="$l "
}
for round in $(seq 1 "$rounds"); do
  say "round $round of $rounds"
  for mode in udp tcp dot doh; do run "$mode"; done
done
med() { local v; read -ra v <<<"$1"; median "${v[@]}"; }
udp_qps=$(med "${qps[udp]}")
echo "## Encrypted transports ($(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD)): bench/encrypted.sh, $instances instances, $rounds × $secs s"
echo
echo "| transport | q/s | of UDP's | server CPU µs/q | avg latency ms |"
echo "|---|--:|--:|--:|--:|"
for mode in udp tcp dot doh; do
  q=$(med "${qps[$mode]}"); c=$(med "${cpu[$mode]}"); l=$(med "${lat[$mode]}")
  echo "| $mode | $q | $(ratio "$q" "$udp_qps") | $c | $l |"
done
