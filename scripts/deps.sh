#!/usr/bin/env bash
# Installs what building and testing etcd-dns need, from Debian's packages, if missing:
#   protoc and its well-known types (etcd-client's build), etcd + etcdctl (tests, demo), dig (demo),
#   musl-gcc (tests/clients.rs), Knot, NSD and BIND (tests/secondaries.rs), kdig
#   (tests/encrypted.rs), unbound, delv and dnssec-keygen (tests/dnssec.rs), ip and iptables
#   (tests/partitions: network namespaces of their own).
# Sourced by scripts/demo.sh and scripts/test.sh; safe to run again. With DEPS=build (as
# scripts/install.sh sources it) only what building needs: no etcd, etcdctl, dig or musl-gcc.
set -euo pipefail

need=()
secondaries=()
command -v protoc >/dev/null 2>&1 || need+=(protobuf-compiler)
# protoc's well-known types (google/protobuf/descriptor.proto), only a Recommends of protoc.
[ -e /usr/include/google/protobuf/descriptor.proto ] || need+=(libprotobuf-dev)
if [ "${DEPS:-}" != build ]; then
  command -v etcd >/dev/null 2>&1 || [ -n "${ETCD_BIN:-}" ] || need+=(etcd-server)
  command -v etcdctl >/dev/null 2>&1 || need+=(etcd-client)
  # musl's getaddrinfo, against which tests/clients.rs builds its client (glibc's is cc's).
  command -v musl-gcc >/dev/null 2>&1 || need+=(musl-tools)
  command -v dig >/dev/null 2>&1 || need+=(bind9-dnsutils)
  # kdig: a DNS-over-TLS client that verifies certificates (tests/encrypted.rs).
  command -v kdig >/dev/null 2>&1 || need+=(knot-dnsutils)
  # Real secondaries for tests/secondaries.rs (each runs on its own free port).
  [ -x /usr/sbin/knotd ] || command -v knotd >/dev/null 2>&1 || secondaries+=(knot)
  [ -x /usr/sbin/nsd ] || command -v nsd >/dev/null 2>&1 || secondaries+=(nsd)
  [ -x /usr/sbin/named ] || command -v named >/dev/null 2>&1 || secondaries+=(bind9)
  # A validating resolver (tests/dnssec.rs); BIND's delv and dnssec-keygen come with bind9.
  [ -x /usr/sbin/unbound ] || command -v unbound >/dev/null 2>&1 || secondaries+=(unbound)
  need+=("${secondaries[@]}")
  # The fault suite's network (tests/common/netlab.rs): namespaces, veth, a bridge, iptables
  # rules inside the namespaces it makes.
  command -v ip >/dev/null 2>&1 || need+=(iproute2)
  command -v iptables >/dev/null 2>&1 || [ -x /usr/sbin/iptables ] || need+=(iptables)
fi
command -v cc >/dev/null 2>&1 || need+=(gcc)

if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "need root (or sudo) to install: ${need[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  echo "==> installing ${need[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian's etcd-server starts a system etcd on 2379; the tests and the demo run their own. Its knot,
# nsd and bind9 start DNS servers on port 53 under systemd: the ones installed just now are stopped
# (tests/clients.rs binds port 53 of a loopback address of its own).
if [ "${#secondaries[@]}" -gt 0 ] && [ -d /run/systemd/system ]; then
  for unit in "${secondaries[@]}"; do
    [ "$unit" = bind9 ] && unit=named
    ${sudo:-} systemctl disable --now "$unit" >/dev/null 2>&1 || true
  done
fi
command -v cargo >/dev/null 2>&1 || { echo "cargo not found: install Rust from https://rustup.rs" >&2; exit 1; }
