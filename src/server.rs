//! The etcd-dns server assembled: watcher + table + DNS, sharing one shutdown token.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::dns::rrl::{RateLimiter, RrlConfig};
use crate::dns::tcp::TcpLimits;
use crate::dns::{self, transport, zones, CatalogConfig, CatalogError, Listeners};
use crate::etcd::EtcdConfig;
use crate::http::{self, Http};
use crate::metrics::Metrics;
use crate::sources::{Live, RegistrySpec, SourceError};
use crate::table::Table;
use crate::watch::{self, WatchError};
use crate::zone::ZoneConfig;

/// Everything the server needs besides its sockets.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The default live zone (`--zone`, its TTLs and zone file) and its native prefix.
    pub zone: ZoneConfig,
    /// `--registry`: the registries and the zones they feed; empty for the native registry
    /// `zone.prefix` alone.
    pub registries: Vec<RegistrySpec>,
    /// How to reach etcd.
    pub etcd: EtcdConfig,
    /// Static zones, forwarding, zone transfers.
    pub catalog: CatalogConfig,
    /// `--max-stale`: how long the table may go unconfirmed by etcd before names under the
    /// zone answer SERVFAIL and `/ready` fails.
    pub max_stale: Option<Duration>,
    /// Response rate limiting of UDP replies (`--rrl-*`); `None` is off.
    pub rate_limit: Option<RrlConfig>,
    /// How many TCP clients at once, and their timeouts.
    pub tcp: TcpLimits,
}

/// A started server: its table (for inspection) and its tasks.
pub struct Running {
    /// The live table the DNS answers from.
    pub table: Arc<Table>,
    /// Query and watch counters.
    pub metrics: Arc<Metrics>,
    tasks: JoinSet<Result<(), WatchError>>,
}

impl Running {
    /// Waits until every task has stopped: after the shutdown token fired, or after the
    /// watcher met a permanent failure before its first read (wrong credentials, missing
    /// permission, a certificate that does not verify), which fires the token itself and is
    /// returned.
    pub async fn wait(mut self) -> Result<(), WatchError> {
        let mut result = Ok(());
        while let Some(joined) = self.tasks.join_next().await {
            if let Ok(Err(error)) = joined {
                result = Err(error);
            }
        }
        result
    }
}

/// Why the server cannot start.
#[derive(Debug, Error)]
pub enum StartError {
    /// A static zone file or the forwarder.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The registries.
    #[error(transparent)]
    Registries(#[from] SourceError),
    /// The watcher's thread or runtime could not be started.
    #[error("cannot start the etcd watcher's thread: {0}")]
    Thread(std::io::Error),
}

/// The live zones of `config`: a zone file for a zone other than `--zone` is taken out of
/// the catalog's files and serves that zone's static records.
pub fn live_zones(config: &mut ServerConfig) -> Result<Live, SourceError> {
    let catalog = &mut config.catalog;
    Live::new(config.zone.clone(), &config.registries, |zone| {
        let files = std::mem::take(&mut catalog.zone_files);
        let (statics, others) = zones::split_live(files, zone);
        catalog.zone_files = others;
        statics.map(Arc::new)
    })
}

/// Starts the watcher, the DNS server on `listeners` and, when `listeners.http` is bound, the
/// HTTP endpoints; they run until `shutdown`.
pub fn start(
    mut config: ServerConfig,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> Result<Running, StartError> {
    let zone = Arc::new(live_zones(&mut config)?);
    let table = Arc::new(Table::for_live(&zone));
    let metrics = Arc::new(Metrics::default());
    let mut router = dns::router(table.clone(), metrics.clone(), &config.catalog)?;
    match &config.rate_limit {
        Some(rrl) => {
            info!(
                rate = rrl.rate,
                slip = rrl.slip,
                ipv4_prefix = rrl.ipv4_prefix,
                ipv6_prefix = rrl.ipv6_prefix,
                "response rate limiting on: replies per second per client network and answer"
            );
            router = router.with_rate_limit(RateLimiter::new(rrl));
        }
        None => info!("response rate limiting off"),
    }
    let router = Arc::new(router);
    let mut tasks = JoinSet::new();
    let (prefetcher, stop) = (router.clone(), shutdown.clone());
    tasks.spawn(async move {
        tokio::select! {
            () = prefetcher.prefetch() => {}
            () = stop.cancelled() => {}
        }
        Ok(())
    });
    let watcher = watch::run(
        tokio::runtime::Handle::current(),
        config.etcd,
        zone.clone(),
        table.clone(),
        metrics.clone(),
        shutdown.clone(),
    );
    let stop = shutdown.clone();
    let watcher = on_own_thread(watcher)?;
    tasks.spawn(async move {
        // Answering SERVFAIL for the whole zone forever would look healthy to a supervisor.
        watcher.await.inspect_err(|_| stop.cancel())
    });
    let mut listeners = listeners;
    if let Some(listener) = listeners.http.take() {
        let endpoints = Http {
            table: table.clone(),
            metrics: metrics.clone(),
            max_stale: config.max_stale,
        };
        let serve = http::serve(listener, endpoints, shutdown.clone());
        tasks.spawn(async move {
            serve.await;
            Ok(())
        });
    }
    if let Some(max) = config.max_stale {
        let guard = guard_staleness(table.clone(), max, shutdown.clone());
        tasks.spawn(async move {
            guard.await;
            Ok(())
        });
    }
    let serve = transport::serve(listeners, router, config.tcp, shutdown);
    tasks.spawn(async move {
        serve.await;
        Ok(())
    });
    Ok(Running {
        table,
        metrics,
        tasks,
    })
}

/// Runs the watcher on a thread and runtime of its own, and returns its outcome; dropping
/// the returned future ends it (as aborting its task did).
///
/// The watcher decodes the whole registry and builds the table from it: on one thread,
/// everything it allocates comes from one malloc arena, where the read's freed buffers are
/// reused by the table. Spread over the runtime's workers, each worker's arena kept its share
/// of them (tens of megabytes at a million instances). Its connections to etcd still do
/// their I/O on the server's runtime (see [`watch::run`]). The query path does not wait on
/// it either way.
fn on_own_thread(
    watcher: impl Future<Output = Result<(), WatchError>> + Send + 'static,
) -> Result<impl Future<Output = Result<(), WatchError>>, StartError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(StartError::Thread)?;
    let (done, outcome) = oneshot::channel();
    std::thread::Builder::new()
        .name("etcd-watch".into())
        .spawn(move || {
            let mut done = done;
            runtime.block_on(async {
                tokio::select! {
                    result = watcher => {
                        let _ = done.send(result);
                    }
                    // Whoever waited for the outcome is gone: stop too.
                    _ = done.closed() => {}
                }
            });
        })
        .map_err(StartError::Thread)?;
    // A watcher that panicked has no outcome to give: the server goes on without it, as it
    // did when the watcher was a task.
    Ok(async move { outcome.await.unwrap_or(Ok(())) })
}

/// Shortest interval between two comparisons of the table's age with `--max-stale`.
const STALE_CHECK_MIN: Duration = Duration::from_millis(100);
/// Longest interval between two comparisons.
const STALE_CHECK_MAX: Duration = Duration::from_secs(1);

/// Marks the table stale (names under the zone answer SERVFAIL) once etcd has not confirmed it
/// for longer than `max`; the watcher unmarks it when etcd confirms it again. Checks a tenth
/// of `max` apart, within [`STALE_CHECK_MIN`]..[`STALE_CHECK_MAX`].
async fn guard_staleness(table: Arc<Table>, max: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval((max / 10).clamp(STALE_CHECK_MIN, STALE_CHECK_MAX));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => table.mark_stale(max),
        }
    }
}
