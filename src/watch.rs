//! etcd → table: read the prefix at revision R, watch from R+1, apply events, publish
//! snapshots; on any break, reconnect with capped jittered backoff, re-read and swap the whole
//! table at once.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Client, EventType, WatchOptions, WatchResponse};
use futures_util::FutureExt;
use thiserror::Error;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tracing::{info, info_span, warn, Instrument};

use crate::backoff::Backoff;
use crate::etcd::{read_prefix, EtcdConfig, EtcdError};
use crate::metrics::Metrics;
use crate::table::{Registry, Table};
use crate::zone::ZoneConfig;

/// Most watch responses applied together before a snapshot is published: bounds how long a
/// long burst can delay its first changes.
pub const MAX_BATCH: usize = 1_000;
/// How often the watcher asks etcd to confirm that the table is current (a progress request),
/// which keeps the table's age (`/metrics`, `/ready`) accurate when nothing changes.
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

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
}

/// Keeps `table` in step with etcd until `shutdown`.
pub async fn run(
    etcd: EtcdConfig,
    config: Arc<ZoneConfig>,
    table: Arc<Table>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let mut backoff = Backoff::default();
    loop {
        let session = sync(&etcd, &config, &table, &metrics, &mut backoff)
            .instrument(info_span!("watch", etcd = %etcd.endpoints_text()));
        let result = tokio::select! {
            _ = shutdown.cancelled() => return,
            result = session => result,
        };
        let delay = backoff.next_delay();
        if let Err(error) = result {
            let age = table.load().published.elapsed().as_secs();
            warn!(%error, retry_in_ms = delay.as_millis() as u64, serving_table_age_s = age,
                "etcd sync interrupted; serving the last table");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// Reads the registry at one revision into a new [`Registry`]; each page's names are built
/// while etcd serves the next.
async fn read_registry(
    client: &Client,
    etcd: &EtcdConfig,
    config: &Arc<ZoneConfig>,
) -> Result<(Registry, i64), EtcdError> {
    let mut registry = Registry::new(config.clone());
    let revision = read_prefix(client, etcd, config.prefix.as_bytes(), |kvs| {
        for kv in kvs {
            registry.put(kv.key(), kv.value());
        }
        registry.flush();
    })
    .await?;
    registry.set_revision(revision);
    Ok((registry, revision))
}

/// One session: connect, read, publish, then follow the watch until it breaks.
async fn sync(
    etcd: &EtcdConfig,
    config: &Arc<ZoneConfig>,
    table: &Table,
    metrics: &Metrics,
    backoff: &mut Backoff,
) -> Result<(), WatchError> {
    let mut client = etcd.connect().await?;
    let started = std::time::Instant::now();
    let (mut registry, revision) = read_registry(&client, etcd, config).await?;
    let read_ms = started.elapsed().as_millis() as u64;
    let options = WatchOptions::new()
        .with_prefix()
        .with_start_revision(revision + 1)
        .with_progress_notify();
    let (mut requests, mut stream) = etcd
        .timed(client.watch(config.prefix.as_bytes(), Some(options)))
        .await?
        .split();
    // Publish only once the watch is in place: from here on no change can be missed.
    let snapshot = registry.snapshot();
    let built_ms = started.elapsed().as_millis() as u64;
    if table.load().ready {
        metrics.resyncs.fetch_add(1, Ordering::Relaxed);
    }
    table.store(snapshot);
    table.confirm();
    backoff.reset();
    info!(
        revision,
        instances = registry.len(),
        read_ms,
        elapsed_ms = built_ms,
        "registry loaded; watching"
    );
    let mut progress = tokio::time::interval(PROGRESS_INTERVAL);
    progress.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let response = tokio::select! {
            response = stream.message() => response,
            _ = progress.tick() => {
                // etcd answers with an empty response at its current revision: proof that
                // the table is current even when nothing changes.
                etcd.timed(requests.request_progress()).await?;
                continue;
            }
        };
        let response = response
            .map_err(|e| WatchError::Etcd(etcd.client_error(e)))?
            .ok_or(WatchError::Closed)?;
        let mut changed = apply(&mut registry, &response)?;
        let mut events = response.events().len();
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
            changed |= apply(&mut registry, &next)?;
            events += next.events().len();
        }
        if changed {
            table.store(registry.snapshot());
        }
        table.confirm();
        metrics
            .watch_events
            .fetch_add(events as u64, Ordering::Relaxed);
    }
}

/// Applies one watch response; true when it carried events.
fn apply(registry: &mut Registry, response: &WatchResponse) -> Result<bool, WatchError> {
    if response.canceled() {
        return Err(WatchError::Cancelled {
            compact: response.compact_revision(),
            reason: response.cancel_reason().to_string(),
        });
    }
    for event in response.events() {
        let Some(kv) = event.kv() else { continue };
        match event.event_type() {
            EventType::Put => registry.put(kv.key(), kv.value()),
            EventType::Delete => registry.delete(kv.key()),
        };
        registry.set_revision(kv.mod_revision());
    }
    Ok(!response.events().is_empty())
}
