#!/usr/bin/env bash
# The live demo on one machine: installs what is missing, builds, starts etcd + etcd-dns,
# registers s-test, shows dig answering it, stops the registration and shows the name gone.
#   scripts/demo.sh          run the demo and clean up
#   scripts/demo.sh --keep   leave etcd, etcd-dns and the registration running until Ctrl-C
set -euo pipefail
cd "$(dirname "$0")/.."
keep=false
[ "${1:-}" = "--keep" ] && keep=true

source scripts/deps.sh
echo "==> building (release)"
cargo build --release --locked --quiet

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  perl -MIO::Socket::INET -e \
    'print IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1", LocalPort => 0)->sockport'
}
# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND every 0.1 s until it succeeds.
wait_for() {
  local deadline=$((SECONDS + $1)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then echo "timed out waiting for $what" >&2; exit 1; fi
    sleep 0.1
  done
}

client_port=$(free_port); peer_port=$(free_port)
endpoint="http://127.0.0.1:$client_port"
echo "==> starting etcd on $endpoint"
etcd --name demo --data-dir "$work/etcd" \
  --listen-client-urls "$endpoint" --advertise-client-urls "$endpoint" \
  --listen-peer-urls "http://127.0.0.1:$peer_port" \
  --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
  --initial-cluster "demo=http://127.0.0.1:$peer_port" >"$work/etcd.log" 2>&1 &
pids+=($!)
wait_for 30 etcd env ETCDCTL_API=3 etcdctl --endpoints "$endpoint" endpoint health

echo "==> starting etcd-dns"
target/release/etcd-dns --listen 127.0.0.1:0 --http 127.0.0.1:0 --etcd "$endpoint" 2>"$work/dns.log" &
pids+=($!)
wait_for 10 "etcd-dns to listen" grep -q "listening" "$work/dns.log"
dns_port=$(sed -n 's/.*listening addr=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/dns.log" | head -n1)
echo "    etcd-dns answers on 127.0.0.1:$dns_port (UDP and TCP)"

echo "==> register --name s-test --ip 192.168.1.26"
target/release/register --name s-test --ip 192.168.1.26 --etcd "$endpoint" 2>"$work/register.log" &
reg_pid=$!
pids+=($reg_pid)
wait_for 10 "s-test to resolve" bash -c \
  "dig @127.0.0.1 -p $dns_port s-test.services.local +short | grep -q ."

echo "==> dig @127.0.0.1 -p $dns_port s-test.services.local"
dig @127.0.0.1 -p "$dns_port" s-test.services.local +noall +comments +answer | grep -v '^;; WARNING\|^;; You are\|^$'
echo "==> register list"
target/release/register list --etcd "$endpoint"

if $keep; then
  echo
  echo "Running. Try:  dig @127.0.0.1 -p $dns_port s-test.services.local"
  echo "               target/release/register --name web --instance n1 --ip 10.0.0.1 --port 80 --etcd $endpoint"
  echo "               dig @127.0.0.1 -p $dns_port web.services.local SRV"
  echo "Ctrl-C stops everything."
  wait "$reg_pid" || true
  exit 0
fi

echo "==> stopping the registration (SIGTERM revokes the lease)"
kill -TERM "$reg_pid"
wait "$reg_pid" || true
wait_for 5 "s-test to disappear" bash -c \
  "dig @127.0.0.1 -p $dns_port s-test.services.local | grep -q 'status: NXDOMAIN'"
echo "==> dig @127.0.0.1 -p $dns_port s-test.services.local"
dig @127.0.0.1 -p "$dns_port" s-test.services.local +noall +comments +authority | grep -E 'status|SOA'
echo "==> demo done: s-test answered while registered and was gone as soon as it stopped"
