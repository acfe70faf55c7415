//! The paged read of a prefix at one revision: what the watcher loads before it watches, and
//! what `register list` prints.

use etcd_client::{Client, GetOptions, GetResponse, KeyValue};
use tracing::warn;

use std::time::Duration;

use super::{prefix_end, EtcdConfig, EtcdError, REQUEST_TIMEOUT};

/// Keys asked for in the first page of a read. Later pages are sized from the largest
/// key-value seen so far so that a response stays near [`PAGE_BYTES`]: etcd 3.4 walks its whole
/// remaining index for every page (0.8 s per page at the start of 1,000,000 keys), so few large
/// pages read a big registry many times faster than many small ones.
pub const FIRST_PAGE: i64 = 1_000;
/// Most keys per page.
pub const PAGE_MAX: i64 = 1_000_000;
/// Target size of one page's response: a quarter of [`MESSAGE_MAX`]. A page that still comes
/// back too large is asked again a quarter as long.
const PAGE_BYTES: usize = 16 << 20;
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

/// [`read_prefix`] at `revision` (0: the current one), so that several prefixes can be read
/// as of one revision. `apply` also gets the number of keys from the page's first to the end
/// of the prefix (etcd's count), so that the first page tells how many are coming.
pub async fn read_prefix_at(
    client: &Client,
    etcd: &EtcdConfig,
    prefix: &[u8],
    revision: i64,
    mut apply: impl FnMut(&[KeyValue], usize),
) -> Result<i64, EtcdError> {
    let end = prefix_end(prefix);
    // etcd wants a key: the whole keyspace starts at "\0".
    let start = if prefix.is_empty() {
        vec![0]
    } else {
        prefix.to_vec()
    };
    let first = page(
        client.clone(),
        etcd.clone(),
        start,
        end.clone(),
        revision,
        FIRST_PAGE,
    );
    let mut response = first.await?;
    let revision = match revision {
        0 => response.header().map(|h| h.revision()).unwrap_or_default(),
        at => at,
    };
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
                let next = page(
                    client.clone(),
                    etcd.clone(),
                    from,
                    end.clone(),
                    revision,
                    limit,
                );
                Some(tokio::spawn(next))
            }
            _ => None,
        };
        apply(response.kvs(), response.count().max(0) as usize);
        match next {
            Some(next) => response = next.await??,
            None => return Ok(revision),
        }
    }
}

/// One page: at most `limit` keys from `from` (at `revision`, or the current one when 0). A
/// response over the client's message limit is asked again [`PAGE_SHRINK`] times shorter.
async fn page(
    client: Client,
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
        let mut kv = client.kv_client().max_decoding_message_size(MESSAGE_MAX);
        let timeout = if revision > 0 {
            PAGE_TIMEOUT
        } else {
            REQUEST_TIMEOUT
        };
        match etcd
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
