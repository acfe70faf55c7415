#!/usr/bin/env bash
# Correctness and memory under churn (issue #10): a fresh etcd and etcd-dns (release build);
# examples/churn_check loads 10,000 instances, then deletes and puts back 9,000 of them at
# 1,000 changes/s for 60 s while it checks that every one of the 1,000 stable names always
# answers its address and every deleted name answers NXDOMAIN 1 s after the delete.
# Also prints etcd-dns's RSS: empty, loaded, right after the churn, and 10 s later.
#
#   bench/churn.sh [SECONDS]      (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
source scripts/deps.sh
cargo build --release --locked --quiet --bins --examples
bin=${CARGO_TARGET_DIR:-$PWD/target}/release
work=$(mktemp -d /tmp/etcd-dns-churn.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { perl -MIO::Socket::INET -e 'print IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1", LocalPort => 0)->sockport'; }
rss() { awk '/VmRSS/ {printf "%.1f MB", $2 / 1024}' "/proc/$1/status"; }

client=$(free_port); peer=$(free_port); endpoint="http://127.0.0.1:$client"
etcd --name churn --data-dir "$work/etcd" --listen-client-urls "$endpoint" --advertise-client-urls "$endpoint" \
  --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
  --initial-cluster "churn=http://127.0.0.1:$peer" --quota-backend-bytes 8589934592 >"$work/etcd.log" 2>&1 &
pids+=($!)
until ETCDCTL_API=3 etcdctl --endpoints "$endpoint" endpoint health >/dev/null 2>&1; do sleep 0.1; done
dns_port=$(free_port)
env -u RUST_LOG "$bin/etcd-dns" --listen "127.0.0.1:$dns_port" --http 127.0.0.1:0 --etcd "$endpoint" \
  --zones "$work" --no-forward 2>"$work/dns.log" &
dns=$!
pids+=($dns)
until dig @127.0.0.1 -p "$dns_port" services.local SOA +short 2>/dev/null | grep -q .; do sleep 0.1; done
empty=$(rss $dns)
"$bin/examples/churn_check" --etcd "$endpoint" --dns "127.0.0.1:$dns_port" --seconds "$secs" | tee "$work/result.txt" &
check=$!
# RSS once the 10,000 instances are in.
until grep -q "^loaded" "$work/result.txt" 2>/dev/null; do sleep 0.2; done
sleep 1
loaded=$(rss $dns)
status=0
wait $check || status=$?
after=$(rss $dns)
sleep 10
settled=$(rss $dns)
echo "etcd-dns RSS: empty $empty, 10,000 instances $loaded, right after the churn $after, 10 s later $settled"
echo "RESULT churn_rss empty=\"$empty\" loaded=\"$loaded\" after=\"$after\" settled=\"$settled\""
exit $status
