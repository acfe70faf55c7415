#!/usr/bin/env bash
# The whole test suite: installs protoc and etcd if missing, checks formatting and lints, then
# runs every unit and integration test (each integration test starts its own etcd on free ports),
# then the docker-compose demo on the Docker engine, if one answers (scripts/compose-test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --all-targets --locked
# The docker-compose demo against a real Docker engine (a first run builds images: 7-17 minutes on
# 2 cores; later runs 30 s to 3 minutes; says NOT RUN without an engine).
bash scripts/compose-test.sh
