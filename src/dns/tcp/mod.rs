//! DNS over TCP: a tokio task per connection, at most `--tcp-max-clients` of them. When full,
//! the connection idle the longest is closed to admit the new one (as Knot does), so that
//! thousands of idle or slow clients cannot lock real ones out; if every connection is in the
//! middle of a request, the new one is closed instead. Idle connections close after
//! `--tcp-idle-timeout`; once a message's length has arrived, its body must follow within
//! `--tcp-io-timeout`. DNS over TLS (RFC 7858) is the same, inside a TLS session whose
//! handshake must end within the idle timeout.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::router::Router;
use crate::logging::LogLimit;
use crate::metrics::{ClientEvent, Metrics};
use crate::wire;

/// Idle TCP connections are closed after this long by default (Knot's default too).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Once a message's length has arrived, its body must follow within this by default: a client
/// that stalls mid-message does not hold a connection for the idle timeout.
pub const DEFAULT_IO_TIMEOUT: Duration = Duration::from_secs(1);
/// The default `--tcp-max-clients` is half the open-file limit (Knot's rule), at most this.
pub const MAX_CLIENTS_CEILING: usize = 10_000;
/// Longest wait for an evicted connection to close its socket before accepting the next.
const EVICTION_WAIT: Duration = Duration::from_millis(100);
/// Pause after a failed accept (typically out of file descriptors), so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(10);

/// Failed accepts (out of file descriptors: each retry fails again) and oversized TCP replies
/// (a client can ask for them) share one log line per interval.
static TCP_TROUBLE: LogLimit = LogLimit::new();

/// `--tcp-max-clients`, `--tcp-idle-timeout`, `--tcp-io-timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpLimits {
    /// Most connections open at once.
    pub max_clients: usize,
    /// How long a connection may wait for its next message.
    pub idle_timeout: Duration,
    /// How long the rest of a message may take once its length has arrived.
    pub io_timeout: Duration,
}

impl Default for TcpLimits {
    fn default() -> Self {
        Self {
            max_clients: default_max_clients(),
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            io_timeout: DEFAULT_IO_TIMEOUT,
        }
    }
}

/// Half the process's open-file limit (after [`crate::rlimit::raise_fd_limit`]), within 1..=[`MAX_CLIENTS_CEILING`]:
/// the other half stays for UDP, etcd, HTTP and the forwarder.
pub fn default_max_clients() -> usize {
    let limit = crate::rlimit::fd_limit().map_or(1024, |(soft, _)| soft);
    usize::try_from(limit / 2).map_or(MAX_CLIENTS_CEILING, |n| n.clamp(1, MAX_CLIENTS_CEILING))
}

/// The open connections, for closing the idlest when full.
struct Clients {
    max: usize,
    open: Mutex<HashMap<u64, Arc<Client>>>,
    next_id: AtomicU64,
    metrics: Arc<Metrics>,
}

/// One connection as the others see it.
struct Client {
    /// Milliseconds since [`epoch`] when it became idle; 0 while a request is in progress.
    idle_since: AtomicU64,
    /// Fired to close it.
    close: CancellationToken,
    /// Notified once its socket is closed.
    closed: Notify,
}

/// Where a connection stands, for `Clients::admit`'s choice.
impl Client {
    fn idle(&self) {
        self.idle_since.store(millis(), Ordering::Relaxed);
    }

    fn busy(&self) {
        self.idle_since.store(0, Ordering::Relaxed);
    }
}

/// A time base for [`Client::idle_since`].
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Milliseconds since [`epoch`], at least 1 (0 means busy).
fn millis() -> u64 {
    (epoch().elapsed().as_millis() as u64).max(1)
}

/// A connection's place among the open ones; dropping it frees the place.
struct Admitted {
    clients: Arc<Clients>,
    id: u64,
    client: Arc<Client>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.client.closed.notify_one();
        let mut open = self.clients.open.lock().unwrap_or_else(|e| e.into_inner());
        // An evicted connection was counted out when it was evicted.
        if open.remove(&self.id).is_some() {
            let gauge = &self.clients.metrics.tcp_connections;
            gauge.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Clients {
    fn new(max: usize, metrics: Arc<Metrics>) -> Arc<Self> {
        metrics
            .tcp_max_connections
            .store(max as u64, Ordering::Relaxed);
        Arc::new(Self {
            max: max.max(1),
            open: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            metrics,
        })
    }

    /// A place for a new connection: a free one, or the idlest connection's (which is told to
    /// close, and returned: wait for it to let go of its socket). `None` when every connection
    /// is mid-request.
    fn admit(self: &Arc<Self>) -> Option<(Admitted, Option<Arc<Client>>)> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let mut evicted = None;
        if open.len() >= self.max {
            let idlest = open
                .iter()
                .map(|(id, client)| (client.idle_since.load(Ordering::Relaxed), *id))
                .filter(|(since, _)| *since > 0)
                .min();
            let (_, id) = idlest?;
            evicted = open.remove(&id);
            if let Some(evicted) = &evicted {
                self.metrics.tcp_connections.fetch_sub(1, Ordering::Relaxed);
                evicted.close.cancel();
                self.metrics.shared().event(ClientEvent::TcpEvicted);
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let client = Arc::new(Client {
            idle_since: AtomicU64::new(millis()),
            close: CancellationToken::new(),
            closed: Notify::new(),
        });
        open.insert(id, client.clone());
        // Added and removed, not stored: every listener (TCP, DoT) has its own `Clients`, and
        // the gauge counts them all.
        self.metrics.tcp_connections.fetch_add(1, Ordering::Relaxed);
        let admitted = Admitted {
            clients: self.clone(),
            id,
            client,
        };
        Some((admitted, evicted))
    }
}

/// Accepts connections on `listener` until `shutdown`; with `tls`, DNS over TLS.
pub async fn accept(
    listener: TcpListener,
    router: Arc<Router>,
    limits: TcpLimits,
    tls: Option<TlsAcceptor>,
    shutdown: CancellationToken,
) {
    if let Ok(addr) = listener.local_addr() {
        let what = if tls.is_some() {
            "DNS over TLS"
        } else {
            "DNS over TCP"
        };
        info!(%addr, max_clients = limits.max_clients, "answering {what}");
    }
    let clients = Clients::new(limits.max_clients, router.metrics().clone());
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let Some((admitted, evicted)) = clients.admit() else {
                    router.metrics().shared().event(ClientEvent::TcpRefused);
                    continue; // dropping the stream closes it
                };
                if let Some(evicted) = evicted {
                    // Its socket must be closed before the next accept takes another file
                    // descriptor: accepting runs ahead of the connection tasks otherwise, and
                    // near the open-file limit accepts would fail.
                    let _ = tokio::time::timeout(EVICTION_WAIT, evicted.closed.notified()).await;
                }
                tokio::spawn(connection(
                    stream,
                    peer,
                    router.clone(),
                    limits,
                    tls.clone(),
                    admitted,
                    shutdown.clone(),
                ));
            }
            Err(error) => {
                if let Some(suppressed) = TCP_TROUBLE.allow() {
                    warn!(%error, suppressed, "TCP accept");
                }
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
            }
        }
    }
}

/// Why a connection ended, when it was the client's doing.
enum Closed {
    /// The client closed, or we shut down, or it was evicted (counted where decided).
    Quietly,
    /// Idle too long, or a message that did not arrive in time.
    TimedOut,
    /// Not a DNS message.
    Garbage,
    /// The TLS handshake failed.
    Handshake,
}

/// Serves one connection (after the TLS handshake with `tls`), then counts why it ended.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Arc<Router>,
    limits: TcpLimits,
    tls: Option<TlsAcceptor>,
    admitted: Admitted,
    shutdown: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let close = admitted.client.close.clone();
    let client = &admitted.client;
    let serve = async {
        let Some(tls) = tls else {
            return messages(stream, peer, &router, limits, client, None).await;
        };
        match tokio::time::timeout(limits.idle_timeout, tls.accept(stream)).await {
            Ok(Ok(stream)) => {
                let counter = &router.metrics().encrypted[0];
                messages(stream, peer, &router, limits, client, Some(counter)).await
            }
            Ok(Err(_)) => Closed::Handshake,
            Err(_) => Closed::TimedOut,
        }
    };
    let closed = tokio::select! {
        _ = shutdown.cancelled() => Closed::Quietly,
        _ = close.cancelled() => Closed::Quietly,
        closed = serve => closed,
    };
    let stats = router.metrics().shared();
    match closed {
        Closed::Quietly => {}
        Closed::TimedOut => stats.event(ClientEvent::TcpTimedOut),
        Closed::Garbage => stats.event(ClientEvent::TcpGarbage),
        Closed::Handshake => stats.event(ClientEvent::TlsHandshakeFailed),
    }
}

/// Answers length-prefixed messages in order until the client closes, goes idle, or sends
/// garbage; counts each in `encrypted` (for an encrypted transport).
async fn messages<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    peer: SocketAddr,
    router: &Router,
    limits: TcpLimits,
    client: &Client,
    encrypted: Option<&AtomicU64>,
) -> Closed {
    loop {
        client.idle();
        let len = match tokio::time::timeout(limits.idle_timeout, stream.read_u16()).await {
            Ok(Ok(len)) => usize::from(len),
            Ok(Err(_)) => return Closed::Quietly,
            Err(_) => return Closed::TimedOut,
        };
        client.busy();
        if len < wire::HEADER_LEN {
            return Closed::Garbage; // not a DNS message: close, as Knot does
        }
        let mut message = vec![0u8; len];
        match tokio::time::timeout(limits.io_timeout, stream.read_exact(&mut message)).await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => return Closed::Quietly,
            Err(_) => return Closed::TimedOut,
        }
        if let Some(counter) = encrypted {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        for reply in router.answer_tcp(&message, peer).await {
            let Ok(len) = u16::try_from(reply.len()) else {
                if let Some(suppressed) = TCP_TROUBLE.allow() {
                    warn!(%peer, bytes = reply.len(), suppressed, "reply too large for TCP; closing");
                }
                return Closed::Quietly;
            };
            let mut framed = Vec::with_capacity(reply.len() + 2);
            framed.extend_from_slice(&len.to_be_bytes());
            framed.extend_from_slice(&reply);
            match tokio::time::timeout(limits.io_timeout, stream.write_all(&framed)).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Closed::Quietly,
                Err(_) => return Closed::TimedOut,
            }
        }
    }
}

/// One connection's messages over any byte stream, outside the connection cap: what the fuzzing
/// harness drives (over memory) to test this same code.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) async fn serve_stream<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    peer: SocketAddr,
    router: &Router,
) {
    let client = Client {
        idle_since: AtomicU64::new(0),
        close: CancellationToken::new(),
        closed: Notify::new(),
    };
    let limits = TcpLimits {
        max_clients: 1,
        idle_timeout: DEFAULT_IDLE_TIMEOUT,
        io_timeout: DEFAULT_IO_TIMEOUT,
    };
    let _ = messages(stream, peer, router, limits, &client, None).await;
}

#[cfg(test)]
mod tests;
