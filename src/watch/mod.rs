//! etcd → table: read every registry's prefix at one revision R, watch them all from R+1 (one
//! watch stream, one watch per prefix), apply events, publish snapshots; on any break,
//! reconnect with capped jittered backoff, re-read every prefix and swap the whole table at
//! once. What retrying cannot fix (credentials, permission, TLS) before the first read ends
//! the watcher with an error; an outage is logged once, then summarised.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod apply;
mod quorum;

use etcd_client::{Client, WatchOptions, WatchResponse};
use futures_util::FutureExt;
use thiserror::Error;
use tokio::runtime::Handle;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, info_span, warn, Instrument};

use crate::backoff::{Report, Retry};
use crate::etcd::{range_start, read_prefix_at, EtcdConfig, EtcdError};
use crate::metrics::Metrics;
use crate::sources::Live;
use crate::table::{Registry, Table};
use apply::{apply, Watches};
use quorum::Quorum;
pub use quorum::{PROBE_INTERVAL, PROBE_TIMEOUT};

/// Most watch responses applied together before a snapshot is published: bounds how long a
/// long burst can delay its first changes.
pub const MAX_BATCH: usize = 1_000;
/// A watch that has answered nothing, not even a progress request (sent with every quorum
/// probe), for this long is on a stalled member (frozen, overloaded): the session ends and the
/// next endpoint is tried. The quorum probe ([`PROBE_TIMEOUT`]) usually notices first.
pub const WATCH_STALL: Duration = Duration::from_millis(1500);

/// Why one sync session ended.
#[derive(Debug, Error)]
pub enum WatchError {
    /// Connecting or a request failed.
    #[error(transparent)]
    Etcd(#[from] EtcdError),
    /// etcd cancelled the watch (compaction, lost leader).
    #[error("watch cancelled by etcd (compact revision {compact}): {reason}")]
    Cancelled {
        /// The compaction revision, if that was the cause.
        compact: i64,
        /// etcd's reason.
        reason: String,
    },
    /// The watch stream closed.
    #[error("watch stream closed")]
    Closed,
    /// The member answered nothing for [`WATCH_STALL`].
    #[error("etcd answered no watch progress request for {0:?}: leaving this endpoint")]
    Stalled(Duration),
    /// The member could not prove for [`PROBE_TIMEOUT`] that it is part of the quorum.
    #[error(
        "etcd member answered no linearizable read for {0:?} and its watch brought nothing \
         newer: cut off from its cluster (partitioned, leaderless or frozen); leaving this endpoint"
    )]
    CutOff(Duration),
    /// Events came for a watch this session did not create.
    #[error("events for unknown watch {0}")]
    UnknownWatch(i64),
}

impl WatchError {
    /// True for what retrying cannot fix (see [`EtcdError::is_permanent`]).
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Etcd(e) if e.is_permanent())
    }

    /// True when the member answers but cannot speak for a quorum (no leader, cut off,
    /// stalled): the next member is tried at once rather than after a growing backoff.
    pub fn is_quorum_lost(&self) -> bool {
        match self {
            Self::CutOff(_) | Self::Stalled(_) => true,
            Self::Etcd(e) => e.is_leaderless(),
            _ => false,
        }
    }
}

/// Longest wait before the next member after one that could not speak for a quorum, during the
/// first [`QUICK_RETRY_FOR`] of an outage: an election ends within a few seconds, and the
/// table's age grows meanwhile.
const QUICK_RETRY: Duration = Duration::from_millis(200);
/// How long an outage of quorum-lost failures is retried quickly before the usual backoff.
const QUICK_RETRY_FOR: Duration = Duration::from_secs(10);

/// Keeps `table` in step with etcd until `shutdown`. Returns an error only for a permanent
/// failure (see [`WatchError::is_permanent`]) before the registry was first read: after that,
/// every failure is retried and the last table served meanwhile. The connections to etcd do
/// their I/O on the runtime `io`, so that etcd's replies keep arriving while the table is
/// built (the watcher may run on a thread of its own).
pub async fn run(
    io: Handle,
    etcd: EtcdConfig,
    config: Arc<Live>,
    table: Arc<Table>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> Result<(), WatchError> {
    let mut retry = Retry::default();
    // One endpoint per session, the first that proves a quorum, the next one in turn first and
    // the one that just failed last: a frozen member that still holds its connections open is
    // left, not picked again by the client's balancer.
    let mut next = 0;
    let mut failed = None;
    // The key the quorum reads ask for (count only): where the first registry's range starts.
    let key = range_start(
        config
            .sources
            .first()
            .map_or(&b""[..], |s| s.range.as_bytes()),
    );
    loop {
        let chosen = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            chosen = quorum::connect_proven(&io, &etcd, next, failed, &key) => chosen,
        };
        let result = match chosen {
            Ok((index, one, client)) => {
                next = index + 1;
                failed = Some(index);
                let session = sync(&one, client, &key, &config, &table, &metrics, &mut retry)
                    .instrument(info_span!("watch", etcd = %one.endpoints_text()));
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    result = session => result,
                }
            }
            Err(error) => {
                failed = None;
                Err(error)
            }
        };
        let Err(error) = result;
        if error.is_permanent() && !retry.has_succeeded() {
            return Err(error);
        }
        let (mut delay, report) = retry.failed();
        if error.is_quorum_lost() && retry.outage() < QUICK_RETRY_FOR {
            delay = delay.min(QUICK_RETRY);
        }
        log_failure(&table, &error, report, delay);
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// Logs a failed session as `report` says: the first of a run, then a summary per interval.
/// A permanent failure (after a first success: a changed password, a revoked role) is an error.
fn log_failure(table: &Table, error: &WatchError, report: Report, delay: std::time::Duration) {
    let (first, serving, age) = if table.load().ready {
        // The same age as the metric's and /ready's: since a quorum last confirmed the table.
        let age = table.age().unwrap_or_default().as_secs();
        ("etcd sync interrupted", "serving the last table", Some(age))
    } else {
        let serving = "no table loaded yet: names under the zone answer SERVFAIL";
        ("etcd sync failed", serving, None)
    };
    let Some(what) = report.line(first) else {
        return;
    };
    let retry_in_ms = delay.as_millis() as u64;
    if error.is_permanent() {
        error!(%error, retry_in_ms, serving_table_age_s = age, "{what}; {serving}");
    } else {
        warn!(%error, retry_in_ms, serving_table_age_s = age, "{what}; {serving}");
    }
}

/// Reads every registry at one revision (the first read's) into a new [`Registry`]; each
/// page's names are built while etcd serves the next.
async fn read_registry(
    client: &Client,
    etcd: &EtcdConfig,
    config: &Arc<Live>,
    table: &Table,
) -> Result<(Registry, i64), EtcdError> {
    // Keys the last table already rejected for the same reason are not logged again.
    let mut registry =
        Registry::for_live(config.clone()).with_known_rejected(table.load().rejected.clone());
    let mut revision = 0;
    for (source, feed) in config.sources.iter().enumerate() {
        revision = read_prefix_at(
            client,
            etcd,
            feed.range.as_bytes(),
            revision,
            |kvs, left| {
                // Sized once for the whole read (a no-op after the first page).
                registry.reserve(left);
                for kv in kvs {
                    registry.put_from(source, kv.key(), kv.value());
                }
                registry.flush();
            },
        )
        .await?;
    }
    registry.set_revision(revision);
    let last = table.load();
    if last.ready {
        registry.continue_serials(&last);
    } else {
        registry.continue_saved();
    }
    Ok((registry, revision))
}

/// One session on a member that proved a quorum: read, publish, then follow the watch until it
/// breaks (a session only ends with an error).
async fn sync(
    etcd: &EtcdConfig,
    mut client: Client,
    key: &[u8],
    config: &Arc<Live>,
    table: &Table,
    metrics: &Metrics,
    retry: &mut Retry,
) -> Result<Infallible, WatchError> {
    // The read is linearizable: once published, the table was current when it was sent.
    let started = Instant::now();
    let (mut registry, revision) = read_registry(&client, etcd, config, table).await?;
    let read_ms = started.elapsed().as_millis() as u64;
    let options = WatchOptions::new()
        .with_prefix()
        .with_start_revision(revision + 1)
        .with_progress_notify();
    let ranges: Vec<&[u8]> = config.sources.iter().map(|s| s.range.as_bytes()).collect();
    let (mut requests, mut stream) = etcd
        .timed(client.watch(
            ranges.first().copied().unwrap_or_default(),
            Some(options.clone()),
        ))
        .await?
        .split();
    // The other prefixes on the same stream, from the same revision: one stream to read.
    for range in ranges.iter().skip(1) {
        etcd.timed(requests.watch(*range, Some(options.clone())))
            .await?;
    }
    let mut watches = Watches::new(ranges.len());
    // Publish only once the watch is in place: from here on no change can be missed.
    let snapshot = registry.snapshot();
    let built_ms = started.elapsed().as_millis() as u64;
    if table.load().ready {
        metrics.resyncs.fetch_add(1, Ordering::Relaxed);
    }
    table.store(snapshot);
    table.confirm_at(started);
    if let Some(outage) = retry.succeeded() {
        info!(
            attempts = outage.attempts,
            over_s = outage.over.as_secs(),
            "etcd reachable again"
        );
    }
    info!(
        revision,
        instances = registry.len(),
        read_ms,
        elapsed_ms = built_ms,
        "registry loaded; watching"
    );
    let mut quorum = Quorum::new(client.kv_client(), key, revision);
    let mut tick = tokio::time::interval(PROBE_INTERVAL);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut heard = Instant::now();
    loop {
        let check_at = quorum.check_at();
        let response = tokio::select! {
            response = stream.message() => response,
            (sent, result) = quorum.answered() => {
                let revision = result.map_err(|e| WatchError::Etcd(etcd.client_error(e)))?;
                quorum.proved(table, sent, revision);
                continue;
            }
            () = sleep_until(check_at) => {
                if let Some(waited) = quorum.overdue() {
                    return Err(WatchError::CutOff(waited));
                }
                continue;
            }
            _ = tick.tick() => {
                let silent = heard.elapsed();
                if silent > WATCH_STALL {
                    return Err(WatchError::Stalled(silent));
                }
                quorum.tick();
                // etcd answers with an empty response at its current revision: the watch
                // has delivered everything up to it, which a probe's revision is compared with.
                etcd.timed(requests.request_progress()).await?;
                continue;
            }
        };
        heard = Instant::now();
        let response = response
            .map_err(|e| WatchError::Etcd(etcd.client_error(e)))?
            .ok_or(WatchError::Closed)?;
        let mut changed = apply(&mut registry, &mut watches, &response)?;
        let mut events = response.events().len();
        let mut delivered = delivered_through(&response);
        // A burst (a deployment registering many instances) arrives as many responses: apply
        // what is already buffered before publishing, so a burst costs one rebuild per name
        // instead of one per event. A lone change is published at once.
        for _ in 0..MAX_BATCH {
            let Some(next) = stream.message().now_or_never() else {
                break;
            };
            let next = next
                .map_err(|e| WatchError::Etcd(etcd.client_error(e)))?
                .ok_or(WatchError::Closed)?;
            changed |= apply(&mut registry, &mut watches, &next)?;
            events += next.events().len();
            delivered = delivered.max(delivered_through(&next));
        }
        if changed {
            table.store(registry.snapshot());
        }
        quorum.delivered(table, delivered);
        metrics
            .watch_events
            .fetch_add(events as u64, Ordering::Relaxed);
    }
}

/// Waits until `at`, or forever without one.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The revision up to which `response` proves every event delivered: its header's, except for
/// a watch's creation, which etcd may confirm before sending the events it must catch up on.
fn delivered_through(response: &WatchResponse) -> i64 {
    if response.created() || response.canceled() {
        return 0;
    }
    response.header().map_or(0, |h| h.revision())
}
