#!/bin/sh
# Asks every server in $SERVERS for the A records of $NAME once a second and prints one line:
#   12:00:01  etcd-dns-1: 172.18.0.6 172.18.0.7  |  etcd-dns-2: 172.18.0.6 172.18.0.7
# (addresses sorted; NXDOMAIN, SERVFAIL, ... as the status; "no reply" when none came).
set -u
# PID 1 of its container: without a handler SIGTERM would be ignored until docker kills it.
trap 'exit 0' TERM INT
name=${NAME:-s-test.services.local}
servers=${SERVERS:-etcd-dns-1 etcd-dns-2}
while :; do
  line=$(date +%T)
  sep=" "
  for server in $servers; do
    if reply=$(dig @"$server" "$name" A +noall +comments +answer +time=1 +tries=1 2>/dev/null); then
      status=$(printf '%s\n' "$reply" | sed -n 's/.*status: \([A-Z]*\),.*/\1/p')
      addrs=$(printf '%s\n' "$reply" | awk '$4 == "A" { print $5 }' | sort -V | tr '\n' ' ')
      [ "$status" = NOERROR ] && [ -n "$addrs" ] && status=${addrs% }
    else
      status="no reply"
    fi
    line="$line$sep $server: $status"
    sep="  |"
  done
  echo "$line"
  sleep 1
done
