//! etcd-dns: authoritative DNS for service discovery, served from a watched etcd prefix.
//!
//! Data flow: [`watch`] reads the prefix at revision R (through [`etcd`]) and watches from
//! R+1 → each key and value is parsed by [`key`] and [`service`] and mapped to names and
//! RRsets by [`records`] → the [`table::Registry`] keeps them and publishes immutable
//! [`table::Snapshot`]s → [`dns::router`] places every request and answers the live zone from
//! the current snapshot, without locks or etcd round trips, in [`wire`] form. [`register`] is
//! the companion that keeps one instance's key alive under a lease.
//!
//! Modules, from the pure ones up:
//! - [`key`]: etcd key ⇄ DNS names, label rules.
//! - [`service`]: JSON value → registration.
//! - [`formats`]: the other frameworks' registries: key and value → placement and
//!   registration, one module per format.
//! - [`sources`]: `--registry FORMAT=PREFIX[@ZONE]`: the registries and the zones they feed.
//! - [`records`]: registration → the names it touches and their RRsets.
//! - [`wire`]: DNS wire format: name keys, RRsets, the strict query parser, the reply writer.
//! - [`zone`]: the live zone's configuration and its apex (SOA, NS).
//! - [`table`]: the live table: snapshots, the atomic swap, the writer's index.
//! - [`flags`], [`backoff`], [`logging`], [`rlimit`], [`signals`]: shared command-line, retry,
//!   logging, open-file limit and stop-signal pieces.
//! - [`etcd`]: connecting to etcd, bounded requests, the paged read of a prefix.
//! - [`watch`]: etcd read + watch + resync → table.
//! - [`dns`]: router, live answers, transfers, static zones, forwarding, sockets.
//! - [`dnssec`]: online signing of the live zones: keys, RRSIGs cached per RRset version,
//!   compact denial of existence.
//! - [`metrics`], [`http`]: per-thread query counters; `/metrics`, `/health`, `/ready`,
//!   `/services`.
//! - [`server`]: the watcher, the DNS server and the HTTP endpoints assembled.
//! - [`register`]: lease grant, claim, keep-alive, revoke, re-register; health checks that gate
//!   the registration; `register list`.
//! - `fuzzing` (tests and the `fuzzing` feature only): the harnesses of `fuzz/` and of the
//!   corpus replay.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod backoff;
pub mod dns;
pub mod dnssec;
pub mod etcd;
pub mod flags;
pub mod formats;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod key;
pub mod logging;
pub mod metrics;
pub mod records;
pub mod register;
pub mod rlimit;
pub mod server;
pub mod service;
pub mod signals;
pub mod sources;
pub mod table;
pub mod watch;
pub mod wire;
pub mod zone;

#[cfg(test)]
mod testing;
