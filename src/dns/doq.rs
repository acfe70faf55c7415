//! DNS over QUIC (RFC 9250): each query on a bidirectional stream of its own, length-prefixed
//! as over TCP, answered on the same stream (every message of a zone transfer, then the end of
//! the stream). QUIC and its TLS 1.3 (ALPN `doq`) are hickory's, over quinn, with the
//! certificate of [`super::tls`] (reloaded as it is). A query whose ID is not 0 is a protocol
//! error (RFC 9250 §4.2.1): its stream is reset.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use hickory_net::quic::{DoqErrorCode, QuicServer, QuicStream, QuicStreams};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::router::Router;
use super::tcp::TcpLimits;
use super::tls::Certificates;
use crate::metrics::ClientEvent;
use crate::wire;

/// The `transport` label index of DNS over QUIC in the metrics.
const TRANSPORT: usize = 2;

/// Answers DNS over QUIC on `socket` until `shutdown`: at most `limits.max_clients` connections,
/// each closed after `limits.idle_timeout` without a new stream.
pub async fn serve(
    socket: std::net::UdpSocket,
    router: Arc<Router>,
    certificates: Arc<Certificates>,
    limits: TcpLimits,
    shutdown: CancellationToken,
) {
    let addr = socket.local_addr().ok();
    let server = socket
        .set_nonblocking(true)
        .and_then(|()| tokio::net::UdpSocket::from_std(socket))
        .map_err(|e| e.to_string())
        .and_then(|socket| {
            QuicServer::with_socket(socket, certificates).map_err(|e| e.to_string())
        });
    let mut server = match server {
        Ok(server) => server,
        Err(error) => {
            warn!(?addr, %error, "cannot serve DNS over QUIC");
            return;
        }
    };
    if let Some(addr) = addr {
        info!(%addr, "answering DNS over QUIC");
    }
    let open = Arc::new(tokio::sync::Semaphore::new(limits.max_clients.max(1)));
    loop {
        let next = tokio::select! {
            _ = shutdown.cancelled() => return,
            next = server.next() => next,
        };
        let (streams, peer) = match next {
            Ok(Some(connection)) => connection,
            Ok(None) => return,
            Err(_) => {
                router
                    .metrics()
                    .shared()
                    .event(ClientEvent::TlsHandshakeFailed);
                continue;
            }
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            router.metrics().shared().event(ClientEvent::TcpRefused);
            continue;
        };
        let (router, shutdown) = (router.clone(), shutdown.clone());
        tokio::spawn(async move {
            let _permit = permit;
            tokio::select! {
                _ = shutdown.cancelled() => {}
                () = connection(streams, peer, router, limits) => {}
            }
        });
    }
}

/// Serves the streams of one connection until it closes or goes idle.
async fn connection(
    mut streams: QuicStreams,
    peer: SocketAddr,
    router: Arc<Router>,
    limits: TcpLimits,
) {
    loop {
        let stream = match tokio::time::timeout(limits.idle_timeout, streams.next()).await {
            Ok(Some(Ok(stream))) => stream,
            Ok(_) => return,
            Err(_) => {
                router.metrics().shared().event(ClientEvent::TcpTimedOut);
                return;
            }
        };
        let router = router.clone();
        tokio::spawn(async move { query(stream, peer, &router, limits).await });
    }
}

/// Answers the one query of `stream`.
async fn query(mut stream: QuicStream, peer: SocketAddr, router: &Router, limits: TcpLimits) {
    let bytes = match tokio::time::timeout(limits.io_timeout, stream.receive_bytes()).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => {
            router.metrics().shared().event(ClientEvent::Malformed);
            return;
        }
        Err(_) => {
            router.metrics().shared().event(ClientEvent::TcpTimedOut);
            return;
        }
    };
    if bytes.len() < wire::HEADER_LEN || bytes[..2] != [0, 0] {
        router.metrics().shared().event(ClientEvent::Malformed);
        let _ = stream.reset(DoqErrorCode::ProtocolError);
        return;
    }
    router.metrics().encrypted[TRANSPORT].fetch_add(1, Ordering::Relaxed);
    for reply in router.answer_tcp(&bytes, peer).await {
        if stream.send_bytes(reply.into()).await.is_err() {
            return;
        }
    }
    let _ = stream.finish().await;
}
