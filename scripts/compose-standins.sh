#!/usr/bin/env bash
# Makes the base images that Dockerfile, docker/client.Dockerfile and docker-compose.yml name
# exist on a Docker engine that cannot pull them (no registry reachable), by building
# stand-ins under the very same names:
#   debian:<suite>[-slim]   a minimal Debian root from debootstrap, `docker import`ed
#   rust:<ver>-<suite>      that Debian + gcc + this machine's Rust toolchain, with the
#                           crates of Cargo.lock vendored into it (no crates.io needed)
#   <...>/etcd:<tag>        that Debian + Debian's etcd-server/etcd-client, the binaries at
#                           the official image's paths (/usr/local/bin/etcd, etcdctl), and no
#                           shell, like the official distroless image
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

# rust IMAGE: Debian + gcc + the host's toolchain at the paths of the official image
# (RUSTUP_HOME=/usr/local/rustup, CARGO_HOME=/usr/local/cargo), then the vendored crates.
rust() {
  local image=$1 tag suite sysroot version toolchain lock start
  tag=${image#*:}
  suite=${tag##*-}
  command -v rustc >/dev/null 2>&1 || { echo "rustc not found: the rust stand-in copies this host's toolchain" >&2; exit 1; }
  sysroot=$(rustc --print sysroot)
  version=$(rustc --version | awk '{ print $2 }')
  toolchain="etcd-dns-stand-in/rust-toolchain:$version-$suite"
  lock=$(sha256sum Cargo.lock | cut -c1-16)
  if [ "${tag%%-*}" != "${version%.*}" ] && [ "${tag%%-*}" != "$version" ]; then
    echo "    note: $image is a stand-in with this host's Rust $version"
  fi
  ensure "debian:$suite-slim"
  if ! exists "$toolchain"; then
    start=$(now)
    echo "==> stand-in $toolchain: debian:$suite-slim + gcc + the Rust toolchain in $sysroot"
    mkdir -p "$work/toolchain"
    cat >"$work/toolchain/Dockerfile" <<EOF
FROM debian:$suite-slim
RUN apt-get update \\
 && apt-get install -y --no-install-recommends gcc libc6-dev \\
 && rm -rf /var/lib/apt/lists/*
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo RUST_VERSION=$version \\
    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
COPY toolchain /usr/local/rustup/toolchains/$version-x86_64-unknown-linux-gnu
RUN mkdir -p /usr/local/cargo/bin \\
 && ln -s /usr/local/rustup/toolchains/$version-x86_64-unknown-linux-gnu/bin/* /usr/local/cargo/bin/ \\
 && cargo --version && rustc --version
LABEL $label=host-toolchain-$version
EOF
    # The context: the Dockerfile, and the toolchain (no documentation) streamed as toolchain/.
    tar -c -C "$work/toolchain" Dockerfile \
        -C "$sysroot" --transform 'flags=r;s,^\(bin\|lib\|libexec\)\(/\|$\),toolchain/\1\2,' bin lib libexec |
      quietly "$work/toolchain.log" docker build -t "$toolchain" -
    echo "    $toolchain: done in $(took "$start")"
  fi
  if exists "$image" && [ -z "$(label_of "$image" $label)" ]; then
    echo "    $image: present (not a stand-in: its build fetches crates from crates.io)"
    return
  fi
  if exists "$image" && [ "$(label_of "$image" org.etcd-dns.cargo-lock)" = "$lock" ]; then
    echo "    $image: present (stand-in: $(label_of "$image" $label), Cargo.lock $lock)"
    return
  fi
  start=$(now)
  echo "==> stand-in $image: $toolchain + the crates of Cargo.lock ($lock), vendored"
  mkdir -p "$work/vendor"
  quietly "$work/cargo-vendor.log" cargo vendor --locked --versioned-dirs "$work/vendor/vendor"
  cat >"$work/vendor/config.toml" <<EOF
# Stand-in: crates come from the vendored copy of Cargo.lock's crates, not from crates.io.
[source.crates-io]
replace-with = "vendored-sources"
[source.vendored-sources]
directory = "/usr/local/cargo/vendor"
EOF
  cat >"$work/vendor/Dockerfile" <<EOF
FROM $toolchain
COPY vendor /usr/local/cargo/vendor
COPY config.toml /usr/local/cargo/config.toml
LABEL $label=host-toolchain-$version-vendored org.etcd-dns.cargo-lock=$lock
EOF
  quietly "$work/vendor.log" docker build -t "$image" "$work/vendor"
  rm -rf "$work/vendor"
  echo "    $image: done in $(took "$start")"
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
ensure() {
  local image=$1 kind
  case $image in
    rust:*) rust "$image"; return ;;
  esac
  if exists "$image"; then
    kind=$(label_of "$image" $label)
    echo "    $image: present (${kind:+stand-in: }${kind:-not a stand-in})"
    return
  fi
  case $image in
    debian:*) debian "$image" ;;
    */etcd:* | etcd:*) etcd "$image" ;;
    *) echo "no stand-in recipe for $image (scripts/compose-standins.sh)" >&2; exit 1 ;;
  esac
}

declare -A done_images=()
for image in $(from_images); do
  [ -n "${done_images[$image]:-}" ] && continue
  done_images[$image]=1
  ensure "$image"
done
