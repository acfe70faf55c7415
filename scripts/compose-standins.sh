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
# Needs root (or sudo) for debootstrap, which it installs with apt-get if missing.
# Environment: DEBIAN_MIRROR (http://deb.debian.org/debian).
set -euo pipefail
cd "$(dirname "$0")/.."

mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
label=org.etcd-dns.stand-in
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
work=$(mktemp -d)
trap '$sudo rm -rf "$work"' EXIT

exists() { docker image inspect "$1" >/dev/null 2>&1; }
# pulled IMAGE: the real image could be pulled (a registry answers); stand-ins are for engines
# that cannot (here a pull fails in milliseconds: the registry's name does not resolve).
pulled() {
  timeout "${PULL_TIMEOUT:-600}" docker pull -q "$1" >/dev/null 2>&1 || return 1
  echo "    $1: pulled (the real image)"
}
label_of() { docker image inspect -f "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true; }
now() { date +%s.%N; }
# quietly LOG COMMAND...: runs COMMAND with its output in LOG, shown (the end) only on failure.
quietly() {
  local log=$1; shift
  "$@" >"$log" 2>&1 || { tail -30 "$log" >&2; echo "failed: $*" >&2; exit 1; }
}
took() { awk -v start="$1" -v end="$(now)" 'BEGIN { printf "%.1f s", end - start }'; }

# The images the build and the stack start from: FROM lines (not earlier stages) and the
# compose file's image: lines that have no build.
from_images() {
  awk 'toupper($1) == "FROM" { for (i = 2; i <= NF; i++) if ($i !~ /^--/) { print $i; break } }' \
    Dockerfile docker/client.Dockerfile | grep -v '^builder$'
  grep -E '^\s+image:\s' docker-compose.yml | grep -v '\${' | awk '{ print $2 }'
}

# debian IMAGE: a `docker import` of `debootstrap --variant=minbase SUITE`, trimmed like the
# official -slim images (no documentation, manual pages or translations; empty apt lists).
debian() {
  local image=$1 tag suite root start
  tag=${image#*:}
  suite=${tag%-slim}
  start=$(now)
  if ! command -v debootstrap >/dev/null 2>&1; then
    echo "==> installing debootstrap"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
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
  $sudo tar -C "$root" --numeric-owner --xattrs --exclude='./dev/*' --exclude='./proc/*' \
      --exclude='./sys/*' -c . |
    docker import \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'CMD ["bash"]' \
      --change "LABEL $label=debootstrap-minbase-$suite" \
      - "$image" >/dev/null
  $sudo rm -rf "$root"
  echo "    $image: done in $(took "$start")"
}

# rust IMAGE: Debian + gcc, the host's toolchain where the official image keeps its own
# (RUSTUP_HOME=/usr/local/rustup, CARGO_HOME=/usr/local/cargo) and the vendored crates, as one
# `docker import` (a build's COPY of these 20,000 files takes minutes here, an import seconds).
rust() {
  local image=$1 tag suite sysroot version toolchain base lock start id bin
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
  fi
  start=$(now)
  echo "==> stand-in $image: $base + Rust $version from $sysroot + the crates of Cargo.lock ($lock)"
  mkdir -p "$work/rust/usr/local/cargo/bin"
  quietly "$work/cargo-vendor.log" cargo vendor --locked --versioned-dirs "$work/rust/usr/local/cargo/vendor"
  cat >"$work/rust/usr/local/cargo/config.toml" <<EOF
# Stand-in: crates come from the vendored copy of Cargo.lock's crates, not from crates.io.
[source.crates-io]
replace-with = "vendored-sources"
[source.vendored-sources]
directory = "/usr/local/cargo/vendor"
EOF
  for bin in "$sysroot"/bin/*; do
    ln -s "/$toolchain/bin/${bin##*/}" "$work/rust/usr/local/cargo/bin/"
  done
  # One archive: the gcc image's files, then ours, then the toolchain (without documentation).
  id=$(docker create "$base")
  docker export "$id" >"$work/rust.tar"
  docker rm "$id" >/dev/null
  tar --delete -f "$work/rust.tar" .dockerenv 2>/dev/null || true
  # (No entry twice: the import refuses duplicates, even of a directory such as usr/local.)
  tar -r -f "$work/rust.tar" -C "$work/rust" usr/local/cargo
  tar -r -f "$work/rust.tar" -C "$sysroot" \
    --transform "flags=r;s,^\(bin\|lib\|libexec\)\(/\|$\),$toolchain/\1\2," bin lib libexec
  quietly "$work/import.log" docker import \
    --change "ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo RUST_VERSION=$version" \
    --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' \
    --change "LABEL $label=host-toolchain-$version-vendored org.etcd-dns.cargo-lock=$lock" \
    "$work/rust.tar" "$image"
  rm -rf "$work/rust" "$work/rust.tar"
  echo "    $image: done in $(took "$start") ($(docker run --rm "$image" cargo --version))"
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

for image in $(from_images); do
  ensure "$image"
done
