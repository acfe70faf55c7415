//! The operator's window (`--http`): `/metrics` (Prometheus text), `/health` (the process
//! answers), `/ready` (the table is loaded and fresh enough to answer from) and `/services`
//! (the live table and the rejected keys, as JSON). It reads the current snapshot like the
//! router does, never the watcher's state.

use std::convert::Infallible;
use std::net::TcpListener as StdTcpListener;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::CONTENT_TYPE;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Registry;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::logging::LogLimit;
use crate::metrics::{gauge, Metrics};
use crate::table::Table;
use crate::wire::name_from_wire;

/// Default `--http` address: loopback only, as CoreDNS's prometheus plugin on 9153.
pub const DEFAULT_HTTP: &str = "127.0.0.1:9153";
/// A connection that sends no complete request within this is closed.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Content type of Prometheus' text format.
const PROMETHEUS_TEXT: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// What the endpoints read.
pub struct Http {
    /// The live table.
    pub table: Arc<Table>,
    /// Query and watch counters.
    pub metrics: Arc<Metrics>,
    /// `--max-stale`: past it `/ready` says 503.
    pub max_stale: Option<Duration>,
}

/// Accept errors, logged at most once per interval.
static ACCEPT_ERRORS: LogLimit = LogLimit::new();
/// Connections that ended in an error (a client's doing: garbage, a slow header).
static CONNECTION_ERRORS: LogLimit = LogLimit::new();

/// Serves the endpoints on `listener` until `shutdown`.
pub async fn serve(listener: StdTcpListener, http: Http, shutdown: CancellationToken) {
    let listener = match listener
        .set_nonblocking(true)
        .and_then(|()| TcpListener::from_std(listener))
    {
        Ok(listener) => listener,
        Err(error) => {
            warn!(%error, "cannot serve HTTP");
            return;
        }
    };
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "serving /metrics, /health, /ready, /services over HTTP");
    }
    let http = Arc::new(http);
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    if let Some(suppressed) = ACCEPT_ERRORS.allow() {
                        warn!(%error, suppressed, "HTTP accept");
                    }
                    continue;
                }
            },
        };
        let http = http.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let http = http.clone();
                async move { Ok::<_, Infallible>(http.respond(&request)) }
            });
            let mut builder = http1::Builder::new();
            builder
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = shutdown.cancelled() => {}
                result = connection => {
                    if let Err(error) = result {
                        if let Some(suppressed) = CONNECTION_ERRORS.allow() {
                            debug!(%peer, %error, suppressed, "HTTP connection");
                        }
                    }
                }
            }
        });
    }
}

fn reply(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response.headers_mut().insert(CONTENT_TYPE, value);
    }
    response
}

impl Http {
    fn respond(&self, request: &Request<Incoming>) -> Response<Full<Bytes>> {
        const TEXT: &str = "text/plain; charset=utf-8";
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return reply(StatusCode::METHOD_NOT_ALLOWED, TEXT, "GET only\n".into());
        }
        match request.uri().path() {
            "/metrics" => match self.metrics_text() {
                Ok(text) => reply(StatusCode::OK, PROMETHEUS_TEXT, text),
                Err(_) => reply(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    TEXT,
                    "encoding failed\n".into(),
                ),
            },
            "/health" => reply(StatusCode::OK, TEXT, "ok\n".into()),
            "/ready" => {
                let (ready, why) = self.readiness();
                let status = if ready {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                reply(status, TEXT, why + "\n")
            }
            "/services" => reply(StatusCode::OK, "application/json", self.services()),
            _ => reply(
                StatusCode::NOT_FOUND,
                TEXT,
                "not found: try /metrics, /health, /ready or /services\n".into(),
            ),
        }
    }

    /// Whether the table can be answered from, and why (the body of `/ready`).
    pub fn readiness(&self) -> (bool, String) {
        let snapshot = self.table.load();
        let age = self.table.age();
        if let Some(why) = self.table.failure() {
            return (false, format!("not ready: the etcd watcher stopped: {why}"));
        }
        match (snapshot.ready, age) {
            (false, _) | (_, None) => (false, "not ready: the registry has not been read from etcd yet".into()),
            (true, Some(age)) if self.max_stale.is_some_and(|max| age > max) => (
                false,
                format!(
                    "not ready: an etcd quorum last confirmed the table {:.1} s ago, more than --max-stale {}",
                    age.as_secs_f64(),
                    humantime::format_duration(self.max_stale.unwrap_or_default())
                ),
            ),
            (true, Some(age)) => (
                true,
                format!(
                    "ready: revision {}, {} instances, confirmed by an etcd quorum {:.1} s ago",
                    snapshot.revision,
                    snapshot.instances,
                    age.as_secs_f64()
                ),
            ),
        }
    }

    fn metrics_text(&self) -> Result<String, std::fmt::Error> {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self.metrics.clone()));
        registry.register_collector(Box::new(TableGauges {
            table: self.table.clone(),
            ready: self.readiness().0,
        }));
        let mut out = String::with_capacity(4096);
        prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)?;
        Ok(out)
    }

    /// The live table by name (each record as type, TTL and data) and the rejected keys with
    /// their reasons. Built on request: a big registry gives a big document.
    fn services(&self) -> String {
        let snapshot = self.table.load_full();
        let mut names = serde_json::Map::new();
        let mut nodes: Vec<_> = snapshot.names.iter().collect();
        nodes.sort_by_key(|node| node.name().to_vec());
        for node in nodes {
            let Some(owner) = name_from_wire(node.name()) else {
                continue;
            };
            let records: Vec<_> = node
                .rrsets()
                .flat_map(|set| set.records(&owner))
                .map(|r| json!({"type": r.record_type().to_string(), "ttl": r.ttl, "data": r.data.to_string()}))
                .collect();
            if !records.is_empty() {
                names.insert(owner.to_ascii(), records.into());
            }
        }
        let rejected: Vec<_> = snapshot
            .rejected
            .iter()
            .map(|(key, reason)| json!({"key": key, "reason": reason.to_string()}))
            .collect();
        let zones: Vec<_> = snapshot
            .zones
            .iter()
            .filter_map(|z| {
                Some(json!({"zone": name_from_wire(z.name())?.to_ascii(), "serial": z.serial}))
            })
            .collect();
        let document = json!({
            "zone": snapshot.zones.first().and_then(|z| name_from_wire(z.name())).map(|n| n.to_ascii()),
            "zones": zones,
            "ready": snapshot.ready,
            "revision": snapshot.revision,
            "instances": snapshot.instances,
            "table_age_seconds": self.table.age().map(|a| a.as_secs_f64()),
            "names": names,
            "rejected": rejected,
        });
        let mut text = serde_json::to_string_pretty(&document).unwrap_or_default();
        text.push('\n');
        text
    }
}

/// The table's gauges, read from the current snapshot at scrape time.
struct TableGauges {
    table: Arc<Table>,
    ready: bool,
}

impl std::fmt::Debug for TableGauges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableGauges")
            .field("ready", &self.ready)
            .finish()
    }
}

impl Collector for TableGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let snapshot = self.table.load();
        let counts: [(&str, &str, i64); 5] = [
            (
                "etcd_dns_ready",
                "1 when the registry is loaded and fresh enough (/ready)",
                i64::from(self.ready),
            ),
            (
                "etcd_dns_instances",
                "Live instances in the table",
                snapshot.instances as i64,
            ),
            (
                "etcd_dns_names",
                "DNS names in the live table (with records or empty non-terminals)",
                snapshot.names.len() as i64,
            ),
            (
                "etcd_dns_rejected_keys",
                "Registry keys skipped as invalid",
                snapshot.rejected.len() as i64,
            ),
            (
                "etcd_dns_revision",
                "etcd revision the table reflects (the SOA serial)",
                snapshot.revision,
            ),
        ];
        for (name, help, value) in counts {
            gauge(&mut encoder, name, help, value)?;
        }
        let age = self.table.age().map_or(f64::NAN, |a| a.as_secs_f64());
        let help =
            "Seconds since an etcd quorum last confirmed the table (NaN before the first read)";
        gauge(&mut encoder, "etcd_dns_table_age_seconds", help, age)
    }
}
