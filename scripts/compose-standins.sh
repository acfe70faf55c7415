#!/usr/bin/env bash
# Makes the base images that Dockerfile, docker/client.Dockerfile and docker-compose.yml name
# exist on a Docker engine that cannot pull them (no registry reachable), by building
# stand-ins under the very same names:
#   debian:<suite>[-slim]   a minimal Debian root from debootstrap, `docker import`ed
#   rust:<ver>-<suite>      that Debian + gcc + this machine's Rust toolchain, with the
#                           crates of Cargo.lock vendored into it (no crates.io needed:
#                           builds in containers here cannot reach it)
#   <...>/etcd:<tag>        that Debian + Debian's etcd-server/etcd-client, the binaries at
#                           the official image's paths (/usr/local/bin/etcd, etcdctl), and no
#                           shell, like the official distroless image
# A missing image is pulled first; a stand-in is built only when no registry answers.
# An image that exists already (pulled, or a stand-in of an earlier run) is kept, except the
# rust stand-in when Cargo.lock changed. Stand-ins carry the label org.etcd-dns.stand-in.
# Needs root (or sudo) for debootstrap, which it installs with apt-get if missing, a Docker
# engine, and Rust (rustc, cargo) for the rust stand-in.
# Run it by hand before `docker compose build` / `docker compose up` (or `docker-compose ...`)
# on an engine without registry access; scripts/compose-test.sh runs it first anyway.
# The first run takes minutes (it downloads Debian and builds four images: 2 to 4 min on 2
# CPUs); a run that finds every image present takes a second or less. While a long step runs it
# prints a line every PROGRESS_INTERVAL seconds (30): how long it has run and its last line.
# Environment: DEBIAN_MIRROR (http://deb.debian.org/debian), PULL_TIMEOUT (600 s per pull),
# PROGRESS_INTERVAL (30).
set -euo pipefail
cd "$(dirname "$0")/.."

case ${1:-} in
  -h | --help)
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
    exit 0
    ;;
  "") ;;
  *) echo "usage: $0 [--help]" >&2; exit 2 ;;
esac

now() { date +%s.%N; }
took() { awk -v start="$1" -v end="$(now)" 'BEGIN { printf "%.1f s", end - start }'; }
began=$(now)
echo "==> compose-standins: local stand-ins for the base images (debian, rust, etcd) that cannot" \
  "be pulled (no registry access); first run 2-4 min on 2 CPUs, later ~1 s"
command -v docker >/dev/null 2>&1 || { echo "no docker command: install Docker first" >&2; exit 1; }
timeout 30 docker info >/dev/null 2>&1 ||
  { echo "no Docker engine answers ('docker info' fails): start it, or check your access to it" >&2; exit 1; }

mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
label=org.etcd-dns.stand-in
interval=${PROGRESS_INTERVAL:-30}
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
work=$(mktemp -d)
ticker=""
cleanup() {
  tick_stop
  $sudo rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

exists() { docker image inspect "$1" >/dev/null 2>&1; }
# pulled IMAGE: the real image could be pulled (a registry answers); stand-ins are for engines
# that cannot (here a pull fails in milliseconds: the registry's name does not resolve).
pulled() {
  timeout "${PULL_TIMEOUT:-600}" docker pull -q "$1" >/dev/null 2>&1 || return 1
  echo "    $1: pulled (the real image)"
}
label_of() { docker image inspect -f "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true; }
# Progress of a long step: every $interval seconds one line, how long the step has run, the
# build step it is in (docker build's "Step N/M :" or BuildKit's "#N [...]") and the last line
# of its log. No more than that: the whole log is shown only when the step fails.
# tick_start LOG: starts the lines (in a subshell); tick_stop ends them.
tick_start() {
  local log=$1 started
  started=$(now)
  (
    s=""
    trap 'kill "$s" 2>/dev/null; exit 0' TERM
    while :; do
      sleep "$interval" &
      s=$!
      wait "$s"
      kill -0 $$ 2>/dev/null || exit 0 # the script is gone
      echo "    ... $(awk -v s="$started" -v e="$(now)" 'BEGIN { printf "%.0f", e - s }') s: $(last_of "$log")"
    done
  ) &
  ticker=$!
}
tick_stop() {
  [ -n "$ticker" ] || return 0
  kill "$ticker" 2>/dev/null || true
  wait "$ticker" 2>/dev/null || true
  ticker=""
}
# last_of LOG: "<its last build step> | <its last line>", each cut short.
last_of() {
  local step last
  step=$(grep -aE '^(Step [0-9]+/[0-9]+ : |#[0-9]+ \[)' "$1" 2>/dev/null | tail -1 | cut -c1-60) || true
  last=$(tail -c 4096 "$1" 2>/dev/null | tr '\r' '\n' | sed 's/\x1b\[[0-9;]*[A-Za-z]//g' |
    grep -av '^[[:space:]]*$' | tail -1 |
    sed 's/^[[:space:]]*//' | cut -c1-80) || true
  if [ -z "$step" ] || [ "$step" = "${last:0:60}" ]; then
    echo "${last:-(no output yet)}"
  else
    echo "$step | ${last:-}"
  fi
}
# quietly LOG COMMAND...: runs COMMAND with its output in LOG, shown (the end) only on failure;
# progress lines while it runs.
quietly() {
  local log=$1 rc=0
  shift
  : >"$log"
  tick_start "$log"
  "$@" >"$log" 2>&1 || rc=$?
  tick_stop
  [ $rc -eq 0 ] || { tail -30 "$log" >&2; echo "failed: $*" >&2; exit 1; }
}

# The images the build and the stack start from: FROM lines (not earlier stages) and the
# compose file's image: lines that have no build.
from_images() {
  awk 'toupper($1) == "FROM" { for (i = 2; i <= NF; i++) if ($i !~ /^--/) { print $i; break } }' \
    Dockerfile docker/client.Dockerfile | grep -v '^builder$'
  grep -E '^\s+image:\s' docker-compose.yml | grep -v '[$]{' | awk '{ print $2 }'
}

# debian IMAGE: a `docker import` of `debootstrap --variant=minbase SUITE`, trimmed like the
# official -slim images (no documentation, manual pages or translations; empty apt lists).
debian() {
  local image=$1 tag suite root start
  tag=${image#*:}
  suite=${tag%-slim}
  start=$(now)
  if [ -n "$sudo" ] && ! command -v sudo >/dev/null 2>&1; then
    echo "debootstrap needs root: run $0 as root, or install sudo" >&2
    exit 1
  fi
  if ! command -v debootstrap >/dev/null 2>&1; then
    echo "==> installing debootstrap"
    quietly "$work/apt.log" $sudo apt-get update -qq
    quietly "$work/apt.log" $sudo env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends debootstrap
  fi
  root="$work/root-$suite"
  echo "==> stand-in $image: debootstrap --variant=minbase $suite from $mirror"
  [ "$mirror" = http://deb.debian.org/debian ] || echo "    (DEBIAN_MIRROR=$mirror)"
  quietly "$work/debootstrap.log" $sudo debootstrap --variant=minbase "$suite" "$root" "$mirror"
  $sudo rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/* "$root"/etc/apt/sources.list
  # As in the official images: later installs leave these out too, and apt reads deb822 sources
  # with the updates and security suites.
  $sudo tee "$root/etc/dpkg/dpkg.cfg.d/docker" >/dev/null <<EOF
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/locale/*
EOF
  $sudo tee "$root/etc/apt/sources.list.d/debian.sources" >/dev/null <<EOF
Types: deb
URIs: ${mirror}
Suites: ${suite} ${suite}-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror}-security
Suites: ${suite}-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  quietly "$work/import.log" import_root "$root" "$image" "debootstrap-minbase-$suite"
  $sudo rm -rf "$root"
  echo "    $image: done in $(took "$start")"
  built+=("$image")
}
# import_root ROOT IMAGE KIND: ROOT's files as the image IMAGE, labelled a stand-in of KIND.
import_root() {
  $sudo tar -C "$1" --numeric-owner --xattrs --exclude='./dev/*' --exclude='./proc/*' \
      --exclude='./sys/*' -c . |
    docker import \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'CMD ["bash"]' \
      --change "LABEL $label=$3" \
      - "$2"
}

# rust IMAGE: Debian + gcc, the host's toolchain where the official image keeps its own
# (RUSTUP_HOME=/usr/local/rustup, CARGO_HOME=/usr/local/cargo) and the vendored crates, as one
# `docker import` (a build's COPY of these 20,000 files takes minutes here, an import seconds).
rust() {
  local image=$1 tag suite sysroot version toolchain base lock start
  tag=${image#*:}
  suite=${tag##*-}
  lock=$(sha256sum Cargo.lock | cut -c1-16)
  if ! exists "$image" && pulled "$image"; then
    return
  fi
  if exists "$image" && [ -z "$(label_of "$image" $label)" ]; then
    echo "    $image: present (not a stand-in: its build fetches crates from crates.io)"
    return
  fi
  if exists "$image" && [ "$(label_of "$image" org.etcd-dns.cargo-lock)" = "$lock" ]; then
    echo "    $image: present (stand-in: $(label_of "$image" $label), Cargo.lock $lock)"
    return
  fi
  command -v rustc >/dev/null 2>&1 ||
    { echo "rustc not found: the rust stand-in copies this host's toolchain" >&2; exit 1; }
  sysroot=$(rustc --print sysroot)
  version=$(rustc --version | awk '{ print $2 }')
  toolchain=usr/local/rustup/toolchains/$version-x86_64-unknown-linux-gnu
  if [ "${tag%%-*}" != "${version%.*}" ] && [ "${tag%%-*}" != "$version" ]; then
    echo "    note: $image stands in with this host's Rust $version"
  fi
  ensure "debian:$suite-slim"
  base="etcd-dns-stand-in/gcc:$suite"
  if ! exists "$base"; then
    start=$(now)
    echo "==> stand-in $base: debian:$suite-slim + gcc"
    mkdir -p "$work/gcc"
    cat >"$work/gcc/Dockerfile" <<EOF
FROM debian:$suite-slim
RUN apt-get update \\
 && apt-get install -y --no-install-recommends gcc libc6-dev \\
 && rm -rf /var/lib/apt/lists/*
LABEL $label=debian-gcc
EOF
    quietly "$work/gcc.log" docker build -t "$base" "$work/gcc"
    echo "    $base: done in $(took "$start")"
    built+=("$base")
  fi
  start=$(now)
  echo "==> stand-in $image: $base + Rust $version from $sysroot + the crates of Cargo.lock ($lock)"
  quietly "$work/rust.log" rust_import "$image" "$base" "$sysroot" "$toolchain" "$version" "$lock"
  rm -rf "$work/rust" "$work/rust.tar"
  echo "    $image: done in $(took "$start") ($(docker run --rm "$image" cargo --version))"
  built+=("$image")
}
# rust_import IMAGE BASE SYSROOT TOOLCHAIN VERSION LOCK: the rust stand-in, one `docker import`
# of an archive of the image BASE's files, then the vendored crates of Cargo.lock (LOCK, its
# hash) and cargo's configuration, then the toolchain from SYSROOT (bin, lib, libexec) at
# TOOLCHAIN. (Every failure returns explicitly: quietly runs it in a `||` list, where set -e
# does not act.)
rust_import() {
  local image=$1 base=$2 sysroot=$3 toolchain=$4 version=$5 lock=$6 id bin
  echo "cargo vendor"
  mkdir -p "$work/rust/usr/local/cargo/bin" || return
  cargo vendor --locked --versioned-dirs "$work/rust/usr/local/cargo/vendor" >/dev/null || return
  cat >"$work/rust/usr/local/cargo/config.toml" <<EOF || return
# Stand-in: crates come from the vendored copy of Cargo.lock's crates, not from crates.io.
[source.crates-io]
replace-with = "vendored-sources"
[source.vendored-sources]
directory = "/usr/local/cargo/vendor"
EOF
  for bin in "$sysroot"/bin/*; do
    ln -s "/$toolchain/bin/${bin##*/}" "$work/rust/usr/local/cargo/bin/" || return
  done
  echo "docker export of $base"
  id=$(docker create "$base") || return
  docker export "$id" >"$work/rust.tar" || return
  docker rm "$id" >/dev/null || return
  tar --delete -f "$work/rust.tar" .dockerenv 2>/dev/null || true
  # (No entry twice: the import refuses duplicates, even of a directory such as usr/local.)
  echo "adding the vendored crates and the toolchain"
  tar -r -f "$work/rust.tar" -C "$work/rust" usr/local/cargo || return
  tar -r -f "$work/rust.tar" -C "$sysroot" \
    --transform "flags=r;s,^\(bin\|lib\|libexec\)\(/\|$\),$toolchain/\1\2," bin lib libexec || return
  echo "docker import ($(du -m "$work/rust.tar" | cut -f1) MB)"
  docker import \
    --change "ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo RUST_VERSION=$version" \
    --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' \
    --change "LABEL $label=host-toolchain-$version-vendored org.etcd-dns.cargo-lock=$lock" \
    "$work/rust.tar" "$image"
}

# etcd IMAGE: Debian's etcd (3.4 in bookworm) where the official image keeps it, no shell.
etcd() {
  local image=$1 start
  start=$(now)
  ensure debian:bookworm-slim
  echo "==> stand-in $image: Debian's etcd-server and etcd-client at /usr/local/bin, no shell"
  mkdir -p "$work/etcd"
  cat >"$work/etcd/Dockerfile" <<EOF
FROM debian:bookworm-slim
RUN printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d \\
 && apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends etcd-server etcd-client \\
 && mv /usr/bin/etcd /usr/bin/etcdctl /usr/local/bin/ \\
 && rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d \\
 && mkdir -p /var/etcd /var/lib/etcd
# The official image is distroless: whatever needs a shell must fail here as it would there.
RUN ["/usr/bin/rm", "-f", "/usr/bin/sh", "/usr/bin/dash", "/usr/bin/bash", "/usr/bin/rbash"]
WORKDIR /var/lib/etcd
EXPOSE 2379 2380
CMD ["/usr/local/bin/etcd"]
LABEL $label=debian-etcd-server
EOF
  quietly "$work/etcd.log" docker build -t "$image" "$work/etcd"
  echo "    $image: done in $(took "$start") ($(docker run --rm "$image" /usr/local/bin/etcd --version | head -1))"
  built+=("$image")
}

# ensure IMAGE: the image exists afterwards (for the rust stand-in: with today's Cargo.lock).
declare -A ensured=()
ensure() {
  local image=$1 kind
  [ -z "${ensured[$image]:-}" ] || return 0
  ensured[$image]=1
  case $image in
    rust:*) rust "$image"; return ;;
  esac
  if exists "$image"; then
    kind=$(label_of "$image" $label)
    echo "    $image: present (${kind:+stand-in: }${kind:-not a stand-in})"
    return
  fi
  pulled "$image" && return
  case $image in
    debian:*) debian "$image" ;;
    */etcd:* | etcd:*) etcd "$image" ;;
    *) echo "no stand-in recipe for $image (scripts/compose-standins.sh)" >&2; exit 1 ;;
  esac
}

built=()
for image in $(from_images); do
  ensure "$image"
done
if [ ${#built[@]} -eq 0 ]; then
  echo "==> base images ready in $(took "$began"): all present (no stand-in built)"
else
  echo "==> base images ready in $(took "$began"): built ${built[*]}"
fi
