#!/usr/bin/env bash
# Builds etcd-dns and register (release) and installs both into PREFIX/bin, by default
# /usr/local/bin, where contrib/systemd expects them. Installs what building needs (protoc, a C
# compiler) from Debian's packages first if missing; needs cargo (https://rustup.rs).
#   scripts/install.sh                      /usr/local/bin/etcd-dns, /usr/local/bin/register
#   PREFIX=$HOME/.local scripts/install.sh  $HOME/.local/bin/...
set -euo pipefail
cd "$(dirname "$0")/.."
DEPS=build source scripts/deps.sh

prefix=${PREFIX:-/usr/local}
target_dir=${CARGO_TARGET_DIR:-target}
echo "==> building (release; the first build takes a few minutes)"
cargo build --release --locked

sudo=""
if ! mkdir -p "$prefix/bin" 2>/dev/null || [ ! -w "$prefix/bin" ]; then
  command -v sudo >/dev/null 2>&1 || { echo "cannot write $prefix/bin: run as root or set PREFIX" >&2; exit 1; }
  sudo="sudo"
  $sudo mkdir -p "$prefix/bin"
fi
$sudo install -m 0755 "$target_dir/release/etcd-dns" "$target_dir/release/register" "$prefix/bin/"
echo "==> installed:"
"$prefix/bin/etcd-dns" --version
"$prefix/bin/register" --version
case ":$PATH:" in
  *":$prefix/bin:"*) ;;
  *) echo "note: $prefix/bin is not on PATH" ;;
esac
