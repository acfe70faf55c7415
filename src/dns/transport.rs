//! Sockets: UDP served by one blocking thread per socket (SO_REUSEPORT spreads them over the
//! cores; on Linux each system call takes or sends a whole batch of datagrams), TCP by a tokio
//! task per connection ([`super::tcp`]). Both hand each message to the [`Router`].

use std::io;
use std::net::{SocketAddr, TcpListener as StdTcpListener, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use hickory_server::net::xfer::Protocol;
use tokio::net::TcpListener;
use tokio::runtime::Handle;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

pub use super::listeners::{Encrypted, Listeners};
use super::reply::REPLY_CAPACITY;
use super::router::{Answer, Pending, Router};
use super::tcp::{self, TcpLimits};
use super::{doh, doq};
use crate::logging::LogLimit;
use crate::metrics::ClientEvent;

/// UDP receive and send errors (ICMP reports of earlier sends concern one client) and
/// oversized datagrams, which a remote sender can cause at will: one debug line per interval.
static UDP_TROUBLE: LogLimit = LogLimit::new();
/// How often a UDP thread wakes up to check for shutdown when no query arrives.
const UDP_SHUTDOWN_POLL: Duration = Duration::from_millis(200);
/// Largest UDP datagram we read (without recvmmsg; with it, [`super::mmsg::SLOT`]).
#[cfg(not(target_os = "linux"))]
const UDP_BUFFER: usize = 65_535;

/// Serves every listener until `shutdown`. UDP threads answer the live zone inline and pass
/// the rest to tasks on `runtime`.
pub async fn serve(
    listeners: Listeners,
    router: Arc<Router>,
    tcp_limits: TcpLimits,
    encrypted: Option<Encrypted>,
    shutdown: CancellationToken,
) {
    let Listeners {
        udp,
        tcp,
        tls: tls_listeners,
        https,
        quic,
        ..
    } = listeners;
    let runtime = Handle::current();
    let mut threads = Vec::new();
    for (index, socket) in udp.into_iter().enumerate() {
        let addr = socket.local_addr().ok();
        // The loops wake up this often to notice shutdown when no query arrives.
        if let Err(error) = socket.set_read_timeout(Some(UDP_SHUTDOWN_POLL)) {
            warn!(%error, "UDP socket without read timeout; shutdown may wait for a query");
        }
        let socket = Arc::new(socket);
        let router = router.clone();
        let shutdown = shutdown.clone();
        let runtime = runtime.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("udp-{index}"))
            .spawn(move || udp_loop(socket, router, runtime, shutdown));
        match spawned {
            Ok(thread) => threads.push(thread),
            Err(error) => warn!(?addr, %error, "cannot start a UDP thread"),
        }
    }
    let mut tasks = tokio::task::JoinSet::new();
    let mut stream_listeners: Vec<(StdTcpListener, Option<TlsAcceptor>)> =
        tcp.into_iter().map(|listener| (listener, None)).collect();
    // Without a certificate there is no encrypted listener (the flags are checked at start).
    if let Some(encrypted) = &encrypted {
        let dot = &encrypted.dot;
        stream_listeners.extend(tls_listeners.into_iter().map(|l| (l, Some(dot.clone()))));
        for listener in https {
            let listener = match listener
                .set_nonblocking(true)
                .and_then(|()| TcpListener::from_std(listener))
            {
                Ok(listener) => listener,
                Err(error) => {
                    warn!(%error, "cannot serve HTTPS");
                    continue;
                }
            };
            let doh = encrypted.doh.clone();
            let router = router.clone();
            tasks.spawn(doh::accept(
                listener,
                router,
                tcp_limits,
                doh,
                shutdown.clone(),
            ));
        }
        for socket in quic {
            let (router, certificates) = (router.clone(), encrypted.certificates.clone());
            tasks.spawn(doq::serve(
                socket,
                router,
                certificates,
                tcp_limits,
                shutdown.clone(),
            ));
        }
    }
    for (listener, tls) in stream_listeners {
        let listener = match listener
            .set_nonblocking(true)
            .and_then(|()| TcpListener::from_std(listener))
        {
            Ok(listener) => listener,
            Err(error) => {
                warn!(%error, "cannot serve TCP");
                continue;
            }
        };
        tasks.spawn(tcp::accept(
            listener,
            router.clone(),
            tcp_limits,
            tls,
            shutdown.clone(),
        ));
    }
    shutdown.cancelled().await;
    while tasks.join_next().await.is_some() {}
    for thread in threads {
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
}

/// Answers one UDP socket until shutdown: takes every queued datagram in one system call,
/// answers the live zone inline, sends those replies in one more, and hands the rest to tasks.
#[cfg(target_os = "linux")]
fn udp_loop(
    socket: Arc<UdpSocket>,
    router: Arc<Router>,
    runtime: Handle,
    shutdown: CancellationToken,
) {
    use super::mmsg::{self, Batch};

    let mut batch = Batch::default();
    // This thread's own counters: no other core writes them.
    let stats = router.exclusive_stats();
    let mut replies: Vec<(Vec<u8>, SocketAddr)> = Vec::with_capacity(mmsg::BATCH);
    // Reply buffers go back here once sent: no allocation per answered query.
    let mut spare: Vec<Vec<u8>> = Vec::with_capacity(mmsg::BATCH);
    while !shutdown.is_cancelled() {
        let received = match batch.recv(&socket) {
            Ok(received) => received,
            Err(error) if quiet_receive_error(&error) => continue,
            Err(error) => {
                udp_trouble(|suppressed| debug!(%error, suppressed, "UDP receive"));
                continue;
            }
        };
        for i in 0..received {
            let query = batch.get(i);
            let Some(src) = query.src else { continue };
            if query.truncated {
                stats.event(ClientEvent::Oversized);
                udp_trouble(
                    |suppressed| debug!(%src, suppressed, "UDP query longer than {} bytes dropped", mmsg::SLOT),
                );
                continue;
            }
            let buffer = spare
                .pop()
                .unwrap_or_else(|| Vec::with_capacity(REPLY_CAPACITY));
            match router.answer_now(query.bytes, src, Protocol::Udp, buffer, &stats) {
                Answer::Reply(reply) => replies.push((reply, src)),
                Answer::Drop => {}
                Answer::Later(pending) => {
                    later_udp(&runtime, &router, &socket, query.bytes, src, pending)
                }
            }
        }
        batch.send_all(&socket, &replies, |error, dst| {
            udp_trouble(|suppressed| debug!(%error, %dst, suppressed, "UDP send"))
        });
        spare.extend(replies.drain(..).map(|(buffer, _)| buffer));
    }
}

/// Answers one UDP socket until shutdown, a datagram at a time (systems without recvmmsg).
#[cfg(not(target_os = "linux"))]
fn udp_loop(
    socket: Arc<UdpSocket>,
    router: Arc<Router>,
    runtime: Handle,
    shutdown: CancellationToken,
) {
    let mut buf = vec![0u8; UDP_BUFFER];
    let stats = router.exclusive_stats();
    while !shutdown.is_cancelled() {
        let (len, src) = match socket.recv_from(&mut buf) {
            Ok(received) => received,
            Err(error) if quiet_receive_error(&error) => continue,
            Err(error) => {
                udp_trouble(|suppressed| debug!(%error, suppressed, "UDP receive"));
                continue;
            }
        };
        let query = &buf[..len];
        match router.answer_now(
            query,
            src,
            Protocol::Udp,
            Vec::with_capacity(REPLY_CAPACITY),
            &stats,
        ) {
            Answer::Reply(reply) => send(&socket, &reply, src),
            Answer::Drop => {}
            Answer::Later(pending) => later_udp(&runtime, &router, &socket, query, src, pending),
        }
    }
}

/// Timeouts (the shutdown poll) and interruptions; other errors are ICMP reports from earlier
/// sends on Linux, which concern one client.
fn quiet_receive_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// Hands a query that needs the catalog (forwarding, static zones) or a transfer to a task.
fn later_udp(
    runtime: &Handle,
    router: &Arc<Router>,
    socket: &Arc<UdpSocket>,
    query: &[u8],
    src: SocketAddr,
    pending: Pending,
) {
    let query = query.to_vec();
    let router = router.clone();
    let socket = socket.clone();
    runtime.spawn(async move {
        if let Some(reply) = router
            .answer_later(&query, src, Protocol::Udp, pending)
            .await
        {
            send(&socket, &reply, src);
        }
    });
}

fn send(socket: &UdpSocket, reply: &[u8], dst: SocketAddr) {
    if let Err(error) = socket.send_to(reply, dst) {
        udp_trouble(|suppressed| debug!(%error, %dst, suppressed, "UDP send"));
    }
}

/// Runs `log` (given the count of lines held back) when a UDP trouble line may go out now.
fn udp_trouble(log: impl FnOnce(u64)) {
    if tracing::enabled!(tracing::Level::DEBUG) {
        if let Some(suppressed) = UDP_TROUBLE.allow() {
            log(suppressed);
        }
    }
}
