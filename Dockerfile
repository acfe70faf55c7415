# etcd-dns and register in one image.
#   docker build -t etcd-dns .
#   docker run -p 1053:53/udp -p 1053:53/tcp -p 9153:9153 -e ETCD_DNS_ETCD=http://etcd:2379 etcd-dns
#   docker run -e REGISTER_ETCD=http://etcd:2379 etcd-dns register --name s-test
# docker-compose.yml runs both against a 3-member etcd cluster (docs/COMPOSE.md).
#
# Plain Dockerfile syntax: no `# syntax=` line and no BuildKit-only instructions, so it builds
# with the classic builder (docker-compose 1.29, engines without buildx) as well as BuildKit.

# --- build ---------------------------------------------------------------------------------
FROM rust:1.95-bookworm AS builder
# protoc and its well-known types: etcd-client compiles etcd's .proto files at build time.
RUN apt-get update \
 && apt-get install -y --no-install-recommends protobuf-compiler libprotobuf-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /build
# No debug info (Cargo.toml keeps line tables in release builds for profiling): the binaries are
# a fraction of the size, and build faster.
ENV CARGO_PROFILE_RELEASE_DEBUG=0
# The dependencies first, built with placeholder sources in a layer of their own that stays
# cached until Cargo.toml or Cargo.lock change: a change to src/ then recompiles only this crate
# (BuildKit cache mounts would do it too, but not every builder has them).
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src/bin \
 && touch src/lib.rs \
 && echo 'fn main() {}' >src/bin/etcd-dns.rs \
 && echo 'fn main() {}' >src/bin/register.rs \
 && cargo build --release --locked --bins \
 && rm -rf src
COPY src src
# COPY keeps the files' old modification times, which cargo would take for "older than the
# placeholder build": touch them so that this crate is rebuilt. Only the two binaries leave this
# layer; removing target/ keeps the layer small (the dependencies stay in the layer above).
RUN find src -type f -exec touch {} + \
 && cargo build --release --locked --bins \
 && mkdir /out \
 && cp target/release/etcd-dns target/release/register /out/ \
 && rm -rf target

# --- run -----------------------------------------------------------------------------------
FROM debian:bookworm-slim
# libcap2-bin: setcap below (and getcap, to look).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libcap2-bin \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10053 etcd-dns \
 && useradd --uid 10053 --gid etcd-dns --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin etcd-dns \
 && mkdir -p /etc/etcd-dns
COPY --from=builder /out/etcd-dns /out/register /usr/local/bin/
# Port 53 as a non-root user: the binary carries CAP_NET_BIND_SERVICE (runtimes that lower
# net.ipv4.ip_unprivileged_port_start, as Docker does, would not need it; not all do).
# A container run with `--cap-drop ALL` must add it back: `--cap-add NET_BIND_SERVICE`.
RUN setcap cap_net_bind_service=+ep /usr/local/bin/etcd-dns
# Static zone files go in /etc/etcd-dns/zones (the default --zones is relative: `zones`).
WORKDIR /etc/etcd-dns
# /metrics, /health, /ready and /services on every interface of the container, so that they
# can be published; outside a container the default stays loopback.
ENV ETCD_DNS_HTTP=0.0.0.0:9153
USER 10053:10053
EXPOSE 53/udp 53/tcp 9153/tcp
# Ready = the registry has been read (and is fresh enough, with --max-stale). No curl in the
# image: bash's /dev/tcp asks /ready on the port of ETCD_DNS_HTTP. Containers running
# `register` have nothing to ask: docker-compose.yml disables the check for them.
HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${ETCD_DNS_HTTP##*:} && printf 'GET /ready HTTP/1.0\\r\\n\\r\\n' >&3 && read -r _ status _ <&3 && [ \"$status\" = 200 ]"]
CMD ["etcd-dns"]
