//! Shared integration-test harness, one module per job; the tests `use common::*`.
//!
//! - `etcd`: a real etcd on free ports in a temp dir, killed on drop.
//! - `server`: etcd-dns in-process on port 0, stopped on drop.
//! - `daemon`: this crate's binaries as child processes, their stderr collected.
//! - `dns`: a small DNS client and the answer sections as sorted text.
//! - `http`: a GET against the HTTP endpoints; a metric from a /metrics body.
//! - `wait`: polling with a deadline (never a bare sleep).
//! - `pki` (certificates for mutual TLS), [`cluster`], [`proxy`], [`registries`],
//!   [`upstream`]: what some tests need besides.
#![allow(dead_code)]

pub mod cluster;
mod daemon;
mod dns;
mod etcd;
mod http;
pub mod netlab;
mod pki;
pub mod proxy;
pub mod registries;
pub mod secondary;
mod server;
pub mod upstream;
pub mod validator;
mod wait;

// The index of what tests use; each test crate uses a part of it.
#[allow(unused_imports)]
pub use self::{
    daemon::{bin, register, Daemon, Proc},
    dns::{
        additional_addresses, addresses, authority_soa, build_query, exchange, exchange_message,
        lookup_a, lookup_aaaa, lookup_ptr, lookup_srv, lookup_txt, parse_reply, ptr_targets, query,
        rand_id, srv_records, try_query, txt_strings, Transport,
    },
    etcd::{etcd_bin, free_port, Etcd, ROOT_PASSWORD},
    http::{http_get, metric},
    pki::{Pki, TlsFiles},
    server::{etcd_and_dns, test_zone, DnsServer},
    wait::{eventually, wait_answers, wait_rcode},
};
