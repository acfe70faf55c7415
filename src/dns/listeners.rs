//! The sockets a server answers on, bound at start (so that a bad address fails before
//! anything runs): UDP and TCP per `--listen` address, the encrypted listeners, and the TLS
//! acceptors that go with them. [`super::transport`] serves them.

use std::io;
use std::net::{SocketAddr, TcpListener as StdTcpListener, UdpSocket};
use std::sync::Arc;

use socket2::{Domain, Socket, Type};
use tokio_rustls::TlsAcceptor;

use super::tls::Certificates;

/// Connections the kernel queues for `accept` (NSD's and Knot's are a few hundred to 1,024).
const TCP_BACKLOG: i32 = 1024;
/// How many times to look for a port free for both UDP and TCP when asked for port 0.
const BIND_ATTEMPTS: usize = 50;

/// Bound sockets to answer on: per address, one UDP socket per core and one TCP listener.
#[derive(Debug, Default)]
pub struct Listeners {
    /// UDP sockets (several per address, sharing it through SO_REUSEPORT).
    pub udp: Vec<UdpSocket>,
    /// TCP listeners, one per address.
    pub tcp: Vec<StdTcpListener>,
    /// The `--http` listener for the operator's endpoints, if any.
    pub http: Option<StdTcpListener>,
    /// DNS-over-TLS listeners (`--tls-listen`), one per address.
    pub tls: Vec<StdTcpListener>,
    /// DNS-over-HTTPS listeners (`--https-listen`), one per address.
    pub https: Vec<StdTcpListener>,
    /// DNS-over-QUIC sockets (`--quic-listen`), one per address.
    pub quic: Vec<UdpSocket>,
}

/// The TLS acceptors of the encrypted listeners (one certificate, different ALPN).
#[derive(Clone)]
pub struct Encrypted {
    /// DNS over TLS.
    pub dot: TlsAcceptor,
    /// DNS over HTTPS.
    pub doh: TlsAcceptor,
    /// The certificate, for DNS over QUIC (whose TLS is QUIC's).
    pub certificates: Arc<Certificates>,
}

impl Listeners {
    /// Binds UDP and TCP on each address, `per_addr` UDP sockets each. Port 0 picks one port
    /// free for both protocols.
    pub fn bind(addrs: &[SocketAddr], per_addr: usize) -> io::Result<Self> {
        let mut listeners = Self::default();
        for addr in addrs {
            let (udp, tcp) = bind_addr(*addr, per_addr.max(1))?;
            listeners.udp.extend(udp);
            listeners.tcp.push(tcp);
        }
        Ok(listeners)
    }

    /// Also binds the HTTP endpoints' address (port 0 picks a free one).
    pub fn with_http(mut self, addr: SocketAddr) -> io::Result<Self> {
        let listener = StdTcpListener::bind(addr)
            .map_err(|e| io::Error::new(e.kind(), format!("HTTP {addr}: {e}")))?;
        self.http = Some(listener);
        Ok(self)
    }

    /// Also binds DNS-over-TLS listeners on `tls`, DNS-over-HTTPS ones on `https` and
    /// DNS-over-QUIC sockets on `quic` (port 0 picks a free one).
    pub fn with_encrypted(
        mut self,
        tls: &[SocketAddr],
        https: &[SocketAddr],
        quic: &[SocketAddr],
    ) -> io::Result<Self> {
        let bind = |addr: &SocketAddr, what: &str| {
            tcp_listener(*addr).map_err(|e| io::Error::new(e.kind(), format!("{what} {addr}: {e}")))
        };
        for addr in tls {
            self.tls.push(bind(addr, "TLS")?);
        }
        for addr in https {
            self.https.push(bind(addr, "HTTPS")?);
        }
        for addr in quic {
            let socket = udp_socket(*addr)
                .map_err(|e| io::Error::new(e.kind(), format!("QUIC {addr}: {e}")))?;
            self.quic.push(socket);
        }
        Ok(self)
    }

    /// The DNS-over-TLS, DNS-over-HTTPS and DNS-over-QUIC addresses bound, with their names.
    pub fn encrypted_addrs(&self) -> Vec<(&'static str, SocketAddr)> {
        let tcp = |all: &[StdTcpListener], what| {
            all.iter()
                .filter_map(move |s| Some((what, s.local_addr().ok()?)))
                .collect::<Vec<_>>()
        };
        let mut addrs = tcp(&self.tls, "TLS");
        addrs.extend(tcp(&self.https, "HTTPS"));
        addrs.extend(
            self.quic
                .iter()
                .filter_map(|s| Some(("QUIC", s.local_addr().ok()?))),
        );
        addrs
    }

    /// The HTTP endpoints' address, if bound.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The addresses bound (UDP and TCP share them), one per `--listen`.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.tcp
            .iter()
            .filter_map(|s| s.local_addr().ok())
            .collect()
    }
}

pub(super) fn udp_socket(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, None)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// A TCP listener on `addr` with room for [`TCP_BACKLOG`] connections not yet accepted (the
/// standard library's 128 overflows in a burst, and a client whose SYN is dropped waits a
/// second to retry).
fn tcp_listener(addr: SocketAddr) -> io::Result<StdTcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(TCP_BACKLOG)?;
    Ok(socket.into())
}

fn bind_addr(addr: SocketAddr, per_addr: usize) -> io::Result<(Vec<UdpSocket>, StdTcpListener)> {
    let attempts = if addr.port() == 0 { BIND_ATTEMPTS } else { 1 };
    let context = |proto: &str, addr: SocketAddr, e: io::Error| {
        io::Error::new(e.kind(), format!("{proto} {addr}: {e}"))
    };
    let mut last_error = None;
    for _ in 0..attempts {
        let first = udp_socket(addr).map_err(|e| context("UDP", addr, e))?;
        let bound = first.local_addr()?;
        let tcp = match tcp_listener(bound) {
            Ok(tcp) => tcp,
            Err(e) => {
                last_error = Some(context("TCP", bound, e));
                continue;
            }
        };
        let mut udp = vec![first];
        for _ in 1..per_addr {
            udp.push(udp_socket(bound).map_err(|e| context("UDP", bound, e))?);
        }
        return Ok((udp, tcp));
    }
    Err(last_error.unwrap_or_else(|| io::Error::other(format!("cannot bind {addr}"))))
}
