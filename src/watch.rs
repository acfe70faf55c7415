//! etcd → table: read the prefix at revision R, watch from R+1, apply events, publish
//! snapshots; on any break, reconnect with capped jittered backoff, re-read and swap the whole
//! table at once.

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Client, EventType, GetOptions, GetResponse, WatchOptions, WatchResponse};
use futures_util::FutureExt;
use rand::Rng;
use thiserror::Error;
use tokio_util::sync::CancellationToken;
use tracing::{info, info_span, warn, Instrument};

use crate::etcd::{prefix_end, EtcdConfig, EtcdError};
use crate::table::{Registry, Table, ZoneConfig};

/// Keys asked for in the first page of the full read. Later pages are sized from the largest
/// key-value seen so far so that a response stays near [`PAGE_BYTES`]: etcd 3.4 walks its whole
/// remaining index for every page, so few large pages read a big registry several times
/// faster than many small ones.
pub const FIRST_PAGE: i64 = 1_000;
/// Most keys per page.
pub const PAGE_MAX: i64 = 50_000;
/// Target size of one page's response: half of the client's 4 MiB message limit. A page that
/// still comes back too large is asked again a quarter as long.
const PAGE_BYTES: usize = 2 << 20;
/// Bytes a key-value takes in a range response beyond its key and value (revisions, version,
/// lease, framing).
const KV_OVERHEAD: usize = 48;
/// Most watch responses applied together before a snapshot is published: bounds how long a
/// long burst can delay its first changes.
pub const MAX_BATCH: usize = 1_000;
/// First reconnect delay.
pub const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Longest reconnect delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(5);

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

/// Capped exponential backoff with full jitter.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { next: BACKOFF_MIN }
    }
}

impl Backoff {
    /// The delay before the next attempt: uniformly between half and all of the current step,
    /// which then doubles up to [`BACKOFF_MAX`].
    pub fn next_delay(&mut self) -> Duration {
        let step = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        let millis = step.as_millis() as u64;
        Duration::from_millis(rand::rng().random_range(millis / 2..=millis))
    }

    /// Back to the shortest delay, after a success.
    pub fn reset(&mut self) {
        self.next = BACKOFF_MIN;
    }
}

/// Keeps `table` in step with etcd until `shutdown`.
pub async fn run(
    etcd: EtcdConfig,
    config: Arc<ZoneConfig>,
    table: Arc<Table>,
    shutdown: CancellationToken,
) {
    let mut backoff = Backoff::default();
    loop {
        let session = sync(&etcd, &config, &table, &mut backoff)
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

/// Reads every key under the prefix at one revision, page by page. Returns the registry and the
/// revision it reflects. The next page is fetched while the current one is applied and its
/// names are built.
pub async fn read_all(
    client: &mut Client,
    etcd: &EtcdConfig,
    config: &Arc<ZoneConfig>,
) -> Result<(Registry, i64), EtcdError> {
    let prefix = config.prefix.as_bytes();
    let end = prefix_end(prefix);
    let mut registry = Registry::new(config.clone());
    let mut response = page(
        client.clone(),
        etcd.clone(),
        prefix.to_vec(),
        end.clone(),
        0,
        FIRST_PAGE,
    )
    .await?;
    let revision = response.header().map(|h| h.revision()).unwrap_or_default();
    let mut largest = 0;
    loop {
        largest = response
            .kvs()
            .iter()
            .map(|kv| kv.key().len() + kv.value().len() + KV_OVERHEAD)
            .fold(largest, usize::max);
        let next = match (response.more(), response.kvs().last()) {
            (true, Some(last)) => {
                let mut from = last.key().to_vec();
                from.push(0);
                let limit = (PAGE_BYTES / largest.max(1)).clamp(1, PAGE_MAX as usize) as i64;
                Some(tokio::spawn(page(
                    client.clone(),
                    etcd.clone(),
                    from,
                    end.clone(),
                    revision,
                    limit,
                )))
            }
            _ => None,
        };
        for kv in response.kvs() {
            registry.put(kv.key(), kv.value());
        }
        registry.flush();
        match next {
            Some(next) => {
                response = next
                    .await
                    .map_err(|e| EtcdError::Config(format!("page read: {e}")))??;
            }
            None => break,
        }
    }
    registry.set_revision(revision);
    Ok((registry, revision))
}

/// One page of the full read: at most `limit` keys from `from` (at `revision`, or the current
/// one when 0). A response over the client's message limit is asked again a quarter as long.
async fn page(
    mut client: Client,
    etcd: EtcdConfig,
    from: Vec<u8>,
    end: Vec<u8>,
    revision: i64,
    mut limit: i64,
) -> Result<GetResponse, EtcdError> {
    loop {
        let mut options = GetOptions::new().with_range(end.clone()).with_limit(limit);
        if revision > 0 {
            options = options.with_revision(revision);
        }
        match etcd.timed(client.get(from.clone(), Some(options))).await {
            // tonic's decoding limit; the message names it.
            Err(error) if limit > 1 && error.to_string().contains("message length too large") => {
                warn!(limit, %error, "registry page too large; asking for fewer keys");
                limit = (limit / 4).max(1);
            }
            result => return result,
        }
    }
}

/// One session: connect, read, publish, then follow the watch until it breaks.
async fn sync(
    etcd: &EtcdConfig,
    config: &Arc<ZoneConfig>,
    table: &Table,
    backoff: &mut Backoff,
) -> Result<(), WatchError> {
    let mut client = etcd.connect().await?;
    let started = std::time::Instant::now();
    let (mut registry, revision) = read_all(&mut client, etcd, config).await?;
    let read_ms = started.elapsed().as_millis() as u64;
    let options = WatchOptions::new()
        .with_prefix()
        .with_start_revision(revision + 1)
        .with_progress_notify();
    let mut stream = etcd
        .timed(client.watch(config.prefix.as_bytes(), Some(options)))
        .await?;
    // Publish only once the watch is in place: from here on no change can be missed.
    let snapshot = registry.snapshot();
    let built_ms = started.elapsed().as_millis() as u64;
    table.store(snapshot);
    backoff.reset();
    info!(
        revision,
        instances = registry.len(),
        read_ms,
        elapsed_ms = built_ms,
        "registry loaded; watching"
    );
    loop {
        let response = stream
            .message()
            .await
            .map_err(|e| WatchError::Etcd(etcd.client_error(e)))?
            .ok_or(WatchError::Closed)?;
        let mut changed = apply(&mut registry, &response)?;
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
        }
        if changed {
            table.store(registry.snapshot());
        }
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
