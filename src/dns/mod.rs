//! DNS: the live zone over the table, the request handler, and the sockets it answers on.

pub mod handler;
pub mod live;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_server::proto::rr::LowerName;
use hickory_server::zone_handler::{Catalog, ZoneHandler};
use hickory_server::Server;
use tokio::net::{TcpListener, UdpSocket};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::table::Table;
use handler::DnsHandler;
use live::LiveZone;

/// Idle TCP connections are closed after this long (Knot's default idle timeout is 10 s too).
pub const TCP_TIMEOUT: Duration = Duration::from_secs(10);
/// Responses queued per TCP connection.
const TCP_RESPONSE_BUFFER: usize = 32;
/// How many times to look for a port free for both UDP and TCP when asked for port 0.
const BIND_ATTEMPTS: usize = 50;

/// Bound sockets to answer on: one UDP socket and one TCP listener per address.
#[derive(Debug, Default)]
pub struct Listeners {
    /// UDP sockets.
    pub udp: Vec<UdpSocket>,
    /// TCP listeners.
    pub tcp: Vec<TcpListener>,
}

impl Listeners {
    /// Binds UDP and TCP on each address. Port 0 picks one port free for both.
    pub async fn bind(addrs: &[SocketAddr]) -> io::Result<Self> {
        let mut listeners = Self::default();
        for addr in addrs {
            let (udp, tcp) = bind_pair(*addr).await?;
            listeners.udp.push(udp);
            listeners.tcp.push(tcp);
        }
        Ok(listeners)
    }

    /// The addresses actually bound (UDP and TCP share them).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.udp
            .iter()
            .filter_map(|s| s.local_addr().ok())
            .collect()
    }
}

async fn bind_pair(addr: SocketAddr) -> io::Result<(UdpSocket, TcpListener)> {
    let attempts = if addr.port() == 0 { BIND_ATTEMPTS } else { 1 };
    let mut last_error = None;
    for _ in 0..attempts {
        let udp = UdpSocket::bind(addr)
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("UDP {addr}: {e}")))?;
        let bound = udp.local_addr()?;
        match TcpListener::bind(bound).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) => last_error = Some(io::Error::new(e.kind(), format!("TCP {bound}: {e}"))),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::other(format!("cannot bind {addr}"))))
}

/// Builds the catalog for the live zone over `table`.
pub fn catalog(
    origin: &hickory_server::proto::rr::Name,
    table: Arc<Table>,
) -> (Catalog, Arc<LiveZone>) {
    let live = Arc::new(LiveZone::new(origin, table));
    let mut catalog = Catalog::new();
    catalog.upsert(
        LowerName::new(origin),
        vec![live.clone() as Arc<dyn ZoneHandler>],
    );
    (catalog, live)
}

/// Answers DNS on `listeners` with `handler` until `shutdown`.
pub async fn serve(listeners: Listeners, handler: DnsHandler, shutdown: CancellationToken) {
    let mut server = Server::new(handler);
    for udp in listeners.udp {
        if let Ok(addr) = udp.local_addr() {
            info!(%addr, "answering DNS over UDP");
        }
        server.register_socket(udp);
    }
    for tcp in listeners.tcp {
        if let Ok(addr) = tcp.local_addr() {
            info!(%addr, "answering DNS over TCP");
        }
        server.register_listener(tcp, TCP_TIMEOUT, TCP_RESPONSE_BUFFER);
    }
    shutdown.cancelled().await;
    if let Err(error) = server.shutdown_gracefully().await {
        warn!(%error, "DNS server shutdown");
    }
}
