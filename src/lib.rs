//! etcd-dns: authoritative DNS for service discovery, served from a watched etcd prefix.
//!
//! Data flow: [`watch`] reads the prefix at revision R and watches from R+1 → each event goes
//! through [`key`] (key ⇄ name) and [`service`] (JSON ⇄ records) into the [`table::Registry`],
//! which publishes immutable [`table::Snapshot`]s → [`dns`] answers queries from the current
//! snapshot without locks or etcd round trips. [`register`] is the companion that keeps one
//! instance's key alive under a lease.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod dns;
pub mod etcd;
pub mod key;
pub mod logging;
pub mod register;
pub mod server;
pub mod service;
pub mod table;
pub mod watch;
pub mod wire;
