//! The etcd-dns server assembled: watcher + table + DNS, sharing one shutdown token.

use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use thiserror::Error;
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::dns::locality::Locality;
use crate::dns::notify::{self, NotifyStats};
use crate::dns::rrl::{RateLimiter, RrlConfig};
use crate::dns::tcp::TcpLimits;
use crate::dns::tls::{self, Certificates};
use crate::dns::tsig::{self, TsigStats};
use crate::dns::zones::{self, ZoneFile};
use crate::dns::{self, transport, CatalogConfig, CatalogError, Listeners};
use crate::dnssec::Dnssec;
use crate::etcd::EtcdConfig;
use crate::http::{self, Http};
use crate::metrics::Metrics;
use crate::sources::{Live, RegistrySpec, SourceError};
use crate::table::saved;
use crate::table::Table;
use crate::watch::{self, WatchError};
use crate::zone::ZoneConfig;

/// Everything the server needs besides its sockets.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The live zones and the registries feeding them (see [`live_zones`]).
    pub live: Live,
    /// How to reach etcd.
    pub etcd: EtcdConfig,
    /// Static zones (the zone files no live zone took), forwarding, zone transfers.
    pub catalog: CatalogConfig,
    /// `--max-stale`: how long the table may go unconfirmed by an etcd quorum before names under the
    /// zone answer SERVFAIL and `/ready` fails.
    pub max_stale: Option<Duration>,
    /// Response rate limiting of UDP replies (`--rrl-*`); `None` is off.
    pub rate_limit: Option<RrlConfig>,
    /// How many TCP clients at once, and their timeouts.
    pub tcp: TcpLimits,
    /// `--max-answers`: most A, AAAA, SRV or PTR records in one answer, chosen per query by
    /// weight; `None` for as many as fit the transport.
    pub max_answers: Option<u16>,
    /// `--locality`: client networks by zone, when answers prefer nearby instances.
    pub locality: Option<Locality>,
    /// `--notify`: secondaries told of every change of a live zone.
    pub notify: Vec<SocketAddr>,
    /// `--ixfr-history`: changes kept per zone for IXFR.
    pub ixfr_history: usize,
    /// `--tsig-key`: keys that sign transfers, NOTIFY and secondaries' queries.
    pub tsig_keys: Vec<tsig::Key>,
    /// `--notify-key`: the key NOTIFYs are signed with.
    pub notify_key: Option<tsig::Key>,
    /// `--tls-cert`, `--tls-key`: the certificate of the encrypted listeners, reloaded on
    /// SIGHUP and when its files change.
    pub tls: Option<Arc<Certificates>>,
    /// `--serial-file`: where the served serials are saved (read into `live` before start).
    pub serial_file: Option<std::path::PathBuf>,
    /// `--dnssec-key`: the live zones signed online, with their keys.
    pub dnssec: Option<Arc<Dnssec>>,
}

/// A started server: its table (for inspection) and its tasks.
pub struct Running {
    /// The live table the DNS answers from.
    pub table: Arc<Table>,
    /// Query and watch counters.
    pub metrics: Arc<Metrics>,
    tasks: JoinSet<Result<(), RunError>>,
}

impl Running {
    /// Waits until every task has stopped: after the shutdown token fired, or after the
    /// watcher stopped on its own — a permanent failure before its first read (wrong
    /// credentials, missing permission, a certificate that does not verify), or a panic —
    /// which fires the token itself and is returned.
    pub async fn wait(mut self) -> Result<(), RunError> {
        let mut result = Ok(());
        while let Some(joined) = self.tasks.join_next().await {
            match joined {
                Ok(Err(error)) => result = Err(error),
                // Only the watcher's task is supervised; the others catch nothing, and a
                // panic in one of them is a bug that must not go unnoticed either.
                Err(error) if error.is_panic() => {
                    result = Err(RunError::TaskPanicked(error.to_string()));
                }
                _ => {}
            }
        }
        result
    }
}

/// Why a running server stopped on its own: the process should exit non-zero, so that a
/// supervisor restarts it, rather than serve a table that can no longer change.
#[derive(Debug, Error)]
pub enum RunError {
    /// A failure retrying cannot fix, before the registry was first read.
    #[error(transparent)]
    Watch(#[from] WatchError),
    /// The watcher ended while the server was running (a panic: a bug).
    #[error("the etcd watcher stopped: {0}")]
    WatcherStopped(String),
    /// Another of the server's tasks panicked (a bug).
    #[error("a server task panicked: {0}")]
    TaskPanicked(String),
}

/// Why the server cannot start.
#[derive(Debug, Error)]
pub enum StartError {
    /// A static zone file or the forwarder.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The watcher's thread or runtime could not be started.
    #[error("cannot start the etcd watcher's thread: {0}")]
    Thread(std::io::Error),
    /// The encrypted listeners' TLS configuration.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
}

/// The live zones that `registries` feed (none: the native registry `services/` feeding
/// `main.zone`), all with `main`'s TTLs, and the zone files they leave: a file for a live zone
/// serves that zone's static records (SOA and NS fields, static names), every other file is a
/// static zone of its own.
pub fn live_zones(
    main: ZoneConfig,
    registries: &[RegistrySpec],
    files: Vec<ZoneFile>,
) -> Result<(Live, Vec<ZoneFile>), SourceError> {
    let mut files = files;
    let live = Live::new(main, registries, |zone| {
        let (statics, others) = zones::split_live(std::mem::take(&mut files), zone);
        files = others;
        statics.map(Arc::new)
    })?;
    Ok((live, files))
}

/// Starts the watcher, the DNS server on `listeners` and, when `listeners.http` is bound, the
/// HTTP endpoints; they run until `shutdown`.
pub fn start(
    config: ServerConfig,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> Result<Running, StartError> {
    let mut live = config.live;
    live.ixfr_history = config.ixfr_history;
    if let Some(locality) = &config.locality {
        live.localities = locality.zones().to_vec();
    }
    let zone = Arc::new(live);
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
    if let Some(max) = config.max_answers {
        info!(
            max,
            "answers carry at most this many records, chosen per query by weight"
        );
        router = router.with_max_answers(max);
    }
    if !config.tsig_keys.is_empty() {
        let names: Vec<String> = config
            .tsig_keys
            .iter()
            .map(|k| k.name().to_ascii())
            .collect();
        info!(keys = ?names, "TSIG keys loaded: signed requests are verified, their replies signed");
    }
    let tsig_stats = Arc::new(TsigStats::default());
    metrics.add_report(tsig_stats.clone());
    router = router.with_tsig(config.tsig_keys.clone(), tsig_stats);
    if let Some(dnssec) = &config.dnssec {
        dnssec.announce(!config.notify.is_empty() || !config.catalog.allow_transfer.is_empty());
        metrics.add_report(dnssec.clone());
        router = router.with_dnssec(dnssec.clone());
    }
    if let Some(locality) = config.locality.clone() {
        info!(
            zones = ?locality.zones(),
            min = locality.min,
            "answers prefer the instances of the client's zone"
        );
        router = router.with_locality(locality);
    }
    let router = Arc::new(router);
    let mut tasks = JoinSet::new();
    if let Some(dnssec) = config.dnssec.clone() {
        tasks.spawn(dnssec.keep_swept(shutdown.clone()));
    }
    let (prefetcher, stop) = (router.clone(), shutdown.clone());
    tasks.spawn(async move {
        tokio::select! {
            () = prefetcher.prefetch() => {}
            () = stop.cancelled() => {}
        }
        Ok(())
    });
    // Exported without targets too (zeros), so that dashboards need no special case.
    let stats = Arc::new(NotifyStats::default());
    metrics.add_report(stats.clone());
    if !config.notify.is_empty() {
        info!(targets = ?config.notify, "secondaries are notified of every change");
        let notifier = notify::run(
            table.clone(),
            config.notify.clone(),
            config.notify_key.clone(),
            stats,
            shutdown.clone(),
        );
        tasks.spawn(async move {
            notifier.await;
            Ok(())
        });
    }
    if let Some(path) = config.serial_file.clone() {
        let (table, shutdown) = (table.clone(), shutdown.clone());
        tasks.spawn(async move {
            saved::keep(path, table, shutdown).await;
            Ok(())
        });
    }
    let watcher = watch::run(
        tokio::runtime::Handle::current(),
        config.etcd,
        zone.clone(),
        table.clone(),
        metrics.clone(),
        shutdown.clone(),
    );
    let watcher = on_own_thread(watcher)?;
    tasks.spawn(supervise(watcher, table.clone(), shutdown.clone()));
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
        let guard = stale::guard_staleness(table.clone(), max, shutdown.clone());
        tasks.spawn(async move {
            guard.await;
            Ok(())
        });
    }
    let encrypted = match &config.tls {
        Some(certificates) => {
            // RFC 7858 asks no ALPN; "dot" is the registered identifier. DoH: HTTP/2 first.
            let dot = certificates.server_config(&[b"dot"])?;
            let doh = certificates.server_config(&[b"h2", b"http/1.1"])?;
            let fresh = tls::keep_fresh(certificates.clone(), shutdown.clone());
            tasks.spawn(async move {
                fresh.await;
                Ok(())
            });
            Some(transport::Encrypted {
                dot: dot.into(),
                doh: doh.into(),
                certificates: certificates.clone(),
            })
        }
        None => None,
    };
    let serve = transport::serve(listeners, router, config.tcp, encrypted, shutdown);
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
) -> Result<impl Future<Output = Result<(), RunError>>, StartError> {
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
                    result = AssertUnwindSafe(watcher).catch_unwind() => {
                        let _ = done.send(result.map_err(|panic| panic_message(&*panic)));
                    }
                    // Whoever waited for the outcome is gone: stop too.
                    _ = done.closed() => {}
                }
            });
        })
        .map_err(StartError::Thread)?;
    Ok(async move {
        match outcome.await {
            Ok(Ok(result)) => result.map_err(RunError::from),
            Ok(Err(panic)) => Err(RunError::WatcherStopped(format!("it panicked: {panic}"))),
            Err(_) => Err(RunError::WatcherStopped("its thread ended".into())),
        }
    })
}

/// The text of a panic's payload (`panic!("…")` gives a `&str` or a `String`).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    match (
        payload.downcast_ref::<&str>(),
        payload.downcast_ref::<String>(),
    ) {
        (Some(text), _) => (*text).to_string(),
        (_, Some(text)) => text.clone(),
        _ => "(no message)".into(),
    }
}

/// Awaits the watcher. One that stops on its own — a permanent failure before the first
/// read, a panic, or a return without a shutdown — leaves a table that will never change
/// again: `/ready` fails with the reason and the whole server stops, so that the process
/// exits non-zero and its supervisor restarts it. (Answering from a frozen table, or SERVFAIL
/// for the whole zone, forever would look healthy to a supervisor.)
async fn supervise(
    watcher: impl Future<Output = Result<(), RunError>>,
    table: Arc<Table>,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    let result = match watcher.await {
        Ok(()) if !shutdown.is_cancelled() => Err(RunError::WatcherStopped(
            "it returned while the server was running".into(),
        )),
        result => result,
    };
    if let Err(error) = &result {
        table.mark_failed(error.to_string());
        shutdown.cancel();
    }
    result
}

mod stale;
#[cfg(test)]
mod tests;
