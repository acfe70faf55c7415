//! DNS over HTTPS (RFC 8484): `GET /dns-query?dns=<base64url>` and `POST /dns-query` with an
//! `application/dns-message` body, over HTTP/2 or HTTP/1.1 inside TLS (the certificate of
//! [`super::tls`]). Each request goes through the same router as a TCP query from the same
//! client address; the reply carries `Cache-Control: max-age` of its smallest TTL, as the RFC
//! asks. Connections follow TCP's rules: a cap per listener, the TLS handshake within the idle
//! timeout.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use base64::Engine;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::router::Router;
use super::tcp::TcpLimits;
use crate::logging::LogLimit;
use crate::metrics::ClientEvent;
use crate::wire;

/// The path of RFC 8484's examples, which clients use by default.
pub const PATH: &str = "/dns-query";
/// The media type of a DNS message.
const DNS_MESSAGE: &str = "application/dns-message";
/// The largest DNS message (a larger body is refused).
const MAX_MESSAGE: usize = 65_535;
/// The `transport` label index of DNS over HTTPS in the metrics.
const TRANSPORT: usize = 1;

/// A connection is closed this long after it opened (HTTP/2 has no idle timeout of its own):
/// clients open a new one, and a client cannot hold a slot for ever.
const CONNECTION_LIFETIME: std::time::Duration = std::time::Duration::from_secs(300);

/// Failed accepts share one log line per interval.
static ACCEPT_TROUBLE: LogLimit = LogLimit::new();

/// Accepts DNS-over-HTTPS connections on `listener` until `shutdown`.
pub async fn accept(
    listener: TcpListener,
    router: Arc<Router>,
    limits: TcpLimits,
    tls: TlsAcceptor,
    shutdown: CancellationToken,
) {
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, path = PATH, "answering DNS over HTTPS");
    }
    let open = Arc::new(tokio::sync::Semaphore::new(limits.max_clients.max(1)));
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    if let Some(suppressed) = ACCEPT_TROUBLE.allow() {
                        warn!(%error, suppressed, "HTTPS accept");
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            router.metrics().shared().event(ClientEvent::TcpRefused);
            continue;
        };
        let (router, tls, shutdown) = (router.clone(), tls.clone(), shutdown.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let _ = stream.set_nodelay(true);
            let stream = match tokio::time::timeout(limits.idle_timeout, tls.accept(stream)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(_)) => {
                    router
                        .metrics()
                        .shared()
                        .event(ClientEvent::TlsHandshakeFailed);
                    return;
                }
                Err(_) => {
                    router.metrics().shared().event(ClientEvent::TcpTimedOut);
                    return;
                }
            };
            let service = service_fn(move |request| {
                let router = router.clone();
                async move { Ok::<_, Infallible>(respond(&router, peer, request).await) }
            });
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(limits.idle_timeout);
            builder
                .http2()
                .timer(hyper_util::rt::TokioTimer::new())
                .keep_alive_interval(None);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = tokio::time::sleep(CONNECTION_LIFETIME) => {}
                _ = connection => {}
            }
        });
    }
}

/// A plain-text reply with `status`.
fn refuse(status: StatusCode, why: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(why.as_bytes())));
    *response.status_mut() = status;
    response
}

/// The DNS message of a request: the `dns` parameter of a GET, the body of a POST.
async fn message(request: Request<Incoming>) -> Result<Vec<u8>, Response<Full<Bytes>>> {
    match *request.method() {
        Method::GET => {
            let query = request.uri().query().unwrap_or_default();
            let encoded = query
                .split('&')
                .find_map(|pair| pair.strip_prefix("dns="))
                .ok_or_else(|| refuse(StatusCode::BAD_REQUEST, "no dns parameter\n"))?;
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(encoded.trim_end_matches('='))
                .map_err(|_| refuse(StatusCode::BAD_REQUEST, "dns is not base64url\n"))
        }
        Method::POST => {
            let content_type = request.headers().get(CONTENT_TYPE);
            if content_type.is_none_or(|t| t.as_bytes() != DNS_MESSAGE.as_bytes()) {
                return Err(refuse(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "the body must be application/dns-message\n",
                ));
            }
            let body = Limited::new(request.into_body(), MAX_MESSAGE);
            match body.collect().await {
                Ok(collected) => Ok(collected.to_bytes().to_vec()),
                Err(_) => Err(refuse(StatusCode::PAYLOAD_TOO_LARGE, "body too large\n")),
            }
        }
        _ => Err(refuse(StatusCode::METHOD_NOT_ALLOWED, "GET or POST\n")),
    }
}

/// Answers one request.
async fn respond(
    router: &Router,
    peer: SocketAddr,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    if request.uri().path() != PATH {
        return refuse(StatusCode::NOT_FOUND, "DNS queries go to /dns-query\n");
    }
    let query = match message(request).await {
        Ok(query) => query,
        Err(response) => return response,
    };
    if query.len() < wire::HEADER_LEN {
        router.metrics().shared().event(ClientEvent::Malformed);
        return refuse(StatusCode::BAD_REQUEST, "not a DNS message\n");
    }
    router.metrics().encrypted[TRANSPORT].fetch_add(1, Ordering::Relaxed);
    let mut replies = router.answer_tcp(&query, peer).await;
    if replies.len() > 1 {
        return refuse(
            StatusCode::NOT_IMPLEMENTED,
            "zone transfers take several messages: ask over TCP\n",
        );
    }
    let Some(reply) = replies.pop() else {
        return refuse(StatusCode::BAD_REQUEST, "not a DNS query\n");
    };
    let max_age = super::cache::max_age(&reply);
    let mut response = Response::new(Full::new(Bytes::from(reply)));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(DNS_MESSAGE));
    if let Some(max_age) = max_age {
        if let Ok(value) = HeaderValue::from_str(&format!("max-age={max_age}")) {
            headers.insert(CACHE_CONTROL, value);
        }
    }
    response
}
