//! The paged read of a prefix at one revision: what the watcher loads before it watches, and
//! what `register list` prints.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use etcd_client::{Client, GetOptions, GetResponse, KeyValue};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::warn;

use super::{prefix_end, EtcdConfig, EtcdError, REQUEST_TIMEOUT};

/// Keys asked for in the first page of a read. Later pages are sized from the largest
/// key-value seen so far so that a response stays near [`PAGE_BYTES`]: etcd 3.4 walks its whole
/// remaining index for every page (0.8 s per page at the start of 1,000,000 keys), so few large
/// pages read a big registry many times faster than many small ones.
pub const FIRST_PAGE: i64 = 1_000;
/// Most keys per page.
pub const PAGE_MAX: i64 = 1_000_000;
/// Target size of one page's response, far below [`MESSAGE_MAX`]: every response is decoded
/// into buffers that are freed once its keys are in the table, and the allocator keeps some
/// of them (`register list` and the watcher read the same way). A page that still comes back
/// too large is asked again a quarter as long.
const PAGE_BYTES: usize = 4 << 20;
/// How long a page after the first may take: up to [`PAGE_BYTES`] of values to read and send
/// (the first page, small, has the usual request timeout and shows that the member answers).
const PAGE_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest response the read accepts (etcd-client's default is 4 MiB; etcd sends up to 2 GiB).
const MESSAGE_MAX: usize = 64 << 20;
/// Bytes a key-value takes in a range response beyond its key and value (revisions, version,
/// lease, framing).
const KV_OVERHEAD: usize = 48;
/// How much shorter a page that was too large is asked again.
const PAGE_SHRINK: i64 = 4;

/// Reads every key under `prefix` at one revision, page by page, and hands each page to
/// `apply` while etcd serves the next one. Returns the revision the read reflects.
pub async fn read_prefix(
    client: &Client,
    etcd: &EtcdConfig,
    prefix: &[u8],
    mut apply: impl FnMut(&[KeyValue]),
) -> Result<i64, EtcdError> {
    read_prefix_at(client, etcd, prefix, 0, |kvs, _| apply(kvs)).await
}

/// The first key of the range `prefix` names: the prefix itself, or "\0" for the whole
/// keyspace (etcd refuses an empty key).
pub fn range_start(prefix: &[u8]) -> Vec<u8> {
    if prefix.is_empty() {
        vec![0]
    } else {
        prefix.to_vec()
    }
}

/// [`read_prefix`] at `revision` (0: the current one), so that several prefixes can be read
/// as of one revision. `apply` also gets the number of keys from the page's first to the end
/// of its range (etcd's count): the first page's counts the whole prefix, so that it tells
/// how many keys are coming.
///
/// etcd 3.4 walks its index from a request's first key to the end of its range for every
/// request, however few keys it returns, so a prefix read page after page walks the rest of
/// the prefix again for each page. After a small first page the rest is therefore read as
/// [`split_rest`]'s ranges, each walked only for itself, [`RANGES_IN_FLIGHT`] at once; pages
/// are applied in the order they arrive (each key comes once, at one revision).
pub async fn read_prefix_at(
    client: &Client,
    etcd: &EtcdConfig,
    prefix: &[u8],
    revision: i64,
    mut apply: impl FnMut(&[KeyValue], usize),
) -> Result<i64, EtcdError> {
    let end = prefix_end(prefix);
    let start = range_start(prefix);
    let read = Read {
        client: client.clone(),
        etcd: etcd.clone(),
        revision,
    };
    let first = read.clone().page(start, end.clone(), FIRST_PAGE).await?;
    let read = Read {
        revision: match revision {
            0 => first.header().map(|h| h.revision()).unwrap_or_default(),
            at => at,
        },
        ..read
    };
    let largest = largest_kv(&first, 0);
    let ranges = match (first.more(), first.kvs().first(), first.kvs().last()) {
        (true, Some(head), Some(last)) => split_rest(head.key(), last.key(), &end),
        _ => Vec::new(),
    };
    apply(first.kvs(), first.count().max(0) as usize);
    drop(first);
    let ranges = Arc::new(Mutex::new(VecDeque::from(ranges)));
    let (pages, mut arrived) = mpsc::channel(RANGES_IN_FLIGHT);
    // Dropped on return: an error ends the readers still running.
    let mut readers = JoinSet::new();
    for _ in 0..RANGES_IN_FLIGHT {
        let (read, ranges, pages) = (read.clone(), ranges.clone(), pages.clone());
        readers.spawn(read.ranges(ranges, largest, pages));
    }
    drop(pages);
    while let Some(page) = arrived.recv().await {
        let page = page?;
        apply(page.kvs(), page.count().max(0) as usize);
    }
    Ok(read.revision)
}

/// Key ranges still to read, `[from, to)`, shared by the readers.
type Ranges = VecDeque<(Vec<u8>, Vec<u8>)>;

/// Ranges read at once after the first page: one being applied while the next is read.
const RANGES_IN_FLIGHT: usize = 2;

/// The key ranges after `last` (the first page's last key, `head` its first) up to `end`,
/// split where the keys most likely spread: at each later value of the byte that follows
/// the first page's common stem, within its class (digits, lower- or upper-case letters).
/// `services/n0` … `services/n100993` gives `(n100993, n2)`, `[n2, n3)` … `[n9, end)`.
fn split_rest(head: &[u8], last: &[u8], end: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut after = last.to_vec();
    after.push(0);
    let common = head.iter().zip(last).take_while(|(a, b)| a == b).count();
    let (stem, Some(&byte)) = (&last[..common], last.get(common)) else {
        return vec![(after, end.to_vec())];
    };
    let class = [b'0'..=b'9', b'a'..=b'z', b'A'..=b'Z']
        .into_iter()
        .find(|class| class.contains(&byte));
    let Some(class) = class else {
        return vec![(after, end.to_vec())];
    };
    let mut from = after;
    let mut ranges = Vec::new();
    for next in byte + 1..=*class.end() + 1 {
        let mut to = stem.to_vec();
        to.push(next);
        ranges.push((std::mem::replace(&mut from, to.clone()), to));
    }
    ranges.push((from, end.to_vec()));
    ranges
}

/// The largest key-value in `response`, with its overhead, or `largest` if none is larger.
fn largest_kv(response: &GetResponse, largest: usize) -> usize {
    response
        .kvs()
        .iter()
        .map(|kv| kv.key().len() + kv.value().len() + KV_OVERHEAD)
        .fold(largest, usize::max)
}

/// What every request of one read shares.
#[derive(Clone)]
struct Read {
    client: Client,
    etcd: EtcdConfig,
    /// The revision read at (0 only for the first page: the current one).
    revision: i64,
}

impl Read {
    /// Takes ranges from `ranges` until none is left and sends their pages to `pages`, page
    /// after page: each page is asked for while the last one waits to be applied.
    async fn ranges(
        self,
        ranges: Arc<Mutex<Ranges>>,
        mut largest: usize,
        pages: mpsc::Sender<Result<GetResponse, EtcdError>>,
    ) {
        loop {
            let next = ranges.lock().ok().and_then(|mut queue| queue.pop_front());
            let Some((from, to)) = next else {
                return;
            };
            let limit =
                |largest: usize| (PAGE_BYTES / largest.max(1)).clamp(1, PAGE_MAX as usize) as i64;
            let mut asked = tokio::spawn(self.clone().page(from, to.clone(), limit(largest)));
            loop {
                let response = match asked.await {
                    Ok(response) => response,
                    Err(join) => Err(EtcdError::from(join)),
                };
                let response = match response {
                    Ok(response) => response,
                    Err(error) => {
                        let _ = pages.send(Err(error)).await;
                        return;
                    }
                };
                largest = largest_kv(&response, largest);
                let next = match (response.more(), response.kvs().last()) {
                    (true, Some(last)) => {
                        let mut from = last.key().to_vec();
                        from.push(0);
                        Some(from)
                    }
                    _ => None,
                };
                let Some(from) = next else {
                    if pages.send(Ok(response)).await.is_err() {
                        return;
                    }
                    break;
                };
                asked = tokio::spawn(self.clone().page(from, to.clone(), limit(largest)));
                if pages.send(Ok(response)).await.is_err() {
                    return;
                }
            }
        }
    }

    /// One page: at most `limit` keys from `from`. A response over the client's message
    /// limit is asked again [`PAGE_SHRINK`] times shorter.
    async fn page(
        self,
        from: Vec<u8>,
        end: Vec<u8>,
        mut limit: i64,
    ) -> Result<GetResponse, EtcdError> {
        loop {
            let mut options = GetOptions::new().with_range(end.clone()).with_limit(limit);
            if self.revision > 0 {
                options = options.with_revision(self.revision);
            }
            let mut kv = self
                .client
                .kv_client()
                .max_decoding_message_size(MESSAGE_MAX);
            let timeout = if self.revision > 0 {
                PAGE_TIMEOUT
            } else {
                REQUEST_TIMEOUT
            };
            match self
                .etcd
                .timed_within(timeout, kv.get(from.clone(), Some(options)))
                .await
            {
                Err(error) if limit > 1 && error.is_too_large() => {
                    warn!(limit, %error, "registry page too large; asking for fewer keys");
                    limit = (limit / PAGE_SHRINK).max(1);
                }
                result => return result,
            }
        }
    }
}
