#!/usr/bin/env bash
# The live demo on one machine: installs what is missing, builds, starts etcd + etcd-dns,
# registers s-test, shows dig answering it, stops the registration and shows the name gone.
#   scripts/demo.sh          run the demo and clean up
#   scripts/demo.sh --keep   leave etcd, etcd-dns and the registration running until Ctrl-C,
#                            and write demo.env for the README's first steps (`source demo.env`)
# Fixed ports, so that the README's commands work as written (override if one is taken):
#   DEMO_ETCD_PORT (23790; peer port DEMO_PEER_PORT, 23800), DEMO_DNS_PORT (5300, UDP and TCP),
#   DEMO_HTTP_PORT (9153: /metrics, /health, /ready, /services). All on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
keep=false
[ "${1:-}" = "--keep" ] && keep=true

etcd_port=${DEMO_ETCD_PORT:-23790}
peer_port=${DEMO_PEER_PORT:-23800}
dns_port=${DEMO_DNS_PORT:-5300}
http_port=${DEMO_HTTP_PORT:-9153}
endpoint="http://127.0.0.1:$etcd_port"
target_dir=${CARGO_TARGET_DIR:-target}
[[ $target_dir = /* ]] || target_dir="$(pwd)/$target_dir"
bin="$target_dir/release"

source scripts/deps.sh

# taken PROTO PORT: true if something on this machine already uses 127.0.0.1:PORT.
taken() {
  ! perl -MIO::Socket::INET -e \
    'exit !IO::Socket::INET->new(Proto => $ARGV[0], LocalAddr => "127.0.0.1", LocalPort => $ARGV[1],
       ($ARGV[0] eq "tcp" ? (Listen => 1, ReuseAddr => 1) : ()))' "$1" "$2"
}
for check in "tcp $etcd_port DEMO_ETCD_PORT" "tcp $peer_port DEMO_PEER_PORT" \
             "tcp $dns_port DEMO_DNS_PORT" "udp $dns_port DEMO_DNS_PORT" "tcp $http_port DEMO_HTTP_PORT"; do
  read -r proto port var <<<"$check"
  if taken "$proto" "$port"; then
    echo "port $port ($proto) on 127.0.0.1 is taken (is a scripts/demo.sh --keep running already?);" \
      "choose another with $var=PORT" >&2
    exit 1
  fi
done

echo "==> building (release; the first build takes a few minutes)"
cargo build --release --locked

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
  if $keep; then rm -f demo.env; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND every 0.1 s until it succeeds.
wait_for() {
  local deadline=$((SECONDS + $1)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then echo "timed out waiting for $what" >&2; exit 1; fi
    sleep 0.1
  done
}

echo "==> starting etcd on $endpoint"
etcd --name demo --data-dir "$work/etcd" \
  --listen-client-urls "$endpoint" --advertise-client-urls "$endpoint" \
  --listen-peer-urls "http://127.0.0.1:$peer_port" \
  --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
  --initial-cluster "demo=http://127.0.0.1:$peer_port" >"$work/etcd.log" 2>&1 &
pids+=($!)
wait_for 30 etcd env ETCDCTL_API=3 etcdctl --endpoints "$endpoint" endpoint health

echo "==> starting etcd-dns: DNS on 127.0.0.1:$dns_port (UDP and TCP), HTTP on 127.0.0.1:$http_port"
"$bin/etcd-dns" --listen "127.0.0.1:$dns_port" --http "127.0.0.1:$http_port" --etcd "$endpoint" \
  2>"$work/dns.log" &
pids+=($!)
wait_for 10 "etcd-dns to answer" bash -c \
  "dig @127.0.0.1 -p $dns_port services.local SOA +tries=1 +time=1 | grep -q 'status: NOERROR'"

echo "==> register --name s-test --ip 192.168.1.26"
"$bin/register" --name s-test --ip 192.168.1.26 --etcd "$endpoint" 2>"$work/register.log" &
reg_pid=$!
pids+=($reg_pid)
wait_for 10 "s-test to resolve" bash -c \
  "dig @127.0.0.1 -p $dns_port s-test.services.local +short | grep -q ."

echo "==> dig @127.0.0.1 -p $dns_port s-test.services.local"
dig @127.0.0.1 -p "$dns_port" s-test.services.local +noall +comments +answer | grep -v '^;; WARNING\|^;; You are\|^$'
echo "==> register list"
"$bin/register" list --etcd "$endpoint"

if $keep; then
  cat >demo.env <<EOF
# Written by scripts/demo.sh --keep (removed when it stops): \`source demo.env\`.
export PATH="$bin:\$PATH"
export ETCDCTL_API=3 ETCDCTL_ENDPOINTS=$endpoint
export REGISTER_ETCD=$endpoint ETCD_DNS_ETCD=$endpoint
export DNS_PORT=$dns_port HTTP_PORT=$http_port
EOF
  echo
  echo "Running: etcd on $endpoint, etcd-dns on 127.0.0.1:$dns_port (HTTP 127.0.0.1:$http_port)."
  echo "In another shell, from $(pwd):"
  echo "  source demo.env      # PATH, REGISTER_ETCD, ETCDCTL_ENDPOINTS, DNS_PORT, HTTP_PORT"
  echo "  dig @127.0.0.1 -p \$DNS_PORT s-test.services.local +short"
  echo "  register --name web --instance n1 --ip 10.0.0.1 --port 80 &"
  echo "  dig @127.0.0.1 -p \$DNS_PORT web.services.local SRV +short"
  echo "(README.md, \"First steps\", has more.) Ctrl-C stops everything."
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
