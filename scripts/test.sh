#!/usr/bin/env bash
# The whole test suite: installs protoc and etcd if missing, checks formatting and lints, then
# runs every unit and integration test (each integration test starts its own etcd on free ports).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --all-targets --locked
