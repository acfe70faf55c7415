//! etcd-dns in-process on port 0: the library's server started with bound sockets and a
//! shutdown token, stopped on drop.

use std::net::SocketAddr;
use std::time::Duration;

use etcd_dns::dns::Listeners;
use etcd_dns::etcd::EtcdConfig;
use etcd_dns::server::{self, ServerConfig};
use etcd_dns::sources::Live;
use etcd_dns::zone::ZoneConfig;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RecordType};
use tokio_util::sync::CancellationToken;

use super::dns::{query, Transport};
use super::etcd::Etcd;
use super::wait::eventually;

/// The live zone of the tests, `services.local.` with TTLs of 5 s and no zone file: a test
/// that needs another sets `config.live` from it (`Live::native(ZoneConfig { .. })`).
pub fn test_zone() -> ZoneConfig {
    ZoneConfig {
        zone: Name::from_ascii("services.local.").expect("zone"),
        ttl: 5,
        negative_ttl: 5,
        statics: None,
    }
}

/// etcd-dns running in-process on a free port, stopped on drop.
pub struct DnsServer {
    /// Where it answers (UDP and TCP).
    pub addr: SocketAddr,
    /// Where it serves /metrics, /health, /ready and /services.
    pub http: SocketAddr,
    /// Cancelled on drop: the server stops.
    shutdown: CancellationToken,
}

impl DnsServer {
    /// Starts etcd-dns for [`test_zone`] and the native prefix `services/` against `endpoint`.
    pub async fn start(endpoint: &str) -> Self {
        Self::start_with(endpoint, |_| {}).await
    }

    /// Starts etcd-dns with `edit` applied to the default configuration.
    pub async fn start_with(endpoint: &str, edit: impl FnOnce(&mut ServerConfig)) -> Self {
        let listen: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        Self::start_on(endpoint, listen, edit)
            .await
            .expect("bind DNS sockets")
    }

    /// Starts etcd-dns on `listen` with `edit` applied to the default configuration.
    pub async fn start_on(
        endpoint: &str,
        listen: SocketAddr,
        edit: impl FnOnce(&mut ServerConfig),
    ) -> std::io::Result<Self> {
        let mut config = ServerConfig {
            live: Live::native(test_zone()),
            etcd: EtcdConfig::from_list(endpoint),
            catalog: Default::default(),
            max_stale: None,
            rate_limit: None,
            tcp: Default::default(),
            max_answers: None,
            locality: None,
            notify: Vec::new(),
            ixfr_history: etcd_dns::table::journal::DEFAULT_IXFR_HISTORY,
            tsig_keys: Vec::new(),
            notify_key: None,
            serial_file: None,
            dnssec: None,
            tls: None,
        };
        edit(&mut config);
        let loopback_any_port: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let listeners = Listeners::bind(&[listen], 2)?.with_http(loopback_any_port)?;
        let addr = listeners.local_addrs()[0];
        let http = listeners.http_addr().expect("HTTP listener");
        let shutdown = CancellationToken::new();
        let running = server::start(config, listeners, shutdown.clone()).expect("start etcd-dns");
        tokio::spawn(running.wait());
        Ok(Self {
            addr,
            http,
            shutdown,
        })
    }

    /// Waits until names under the zone stop answering SERVFAIL (the first read is done).
    pub async fn wait_ready(&self) {
        eventually("server ready", Duration::from_secs(10), || async {
            let r = query(
                self.addr,
                "services.local.",
                RecordType::SOA,
                Transport::Udp,
            )
            .await;
            (r.metadata.response_code == ResponseCode::NoError).then_some(())
        })
        .await;
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A fresh etcd and an etcd-dns that has read it (the start of most tests).
pub async fn etcd_and_dns() -> (Etcd, DnsServer) {
    let etcd = Etcd::start().await;
    let dns = DnsServer::start(&etcd.endpoint).await;
    dns.wait_ready().await;
    (etcd, dns)
}
