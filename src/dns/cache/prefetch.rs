//! Prefetch (unbound's `prefetch: yes`): a hit in the last tenth of an answer's lifetime is
//! answered from the cache as usual and queues the request; a task asks it upstream again and
//! stores the new answer before the old one expires, so a popular name never goes missing
//! from the cache and no client waits for its refresh.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures_util::future::join_all;
use hickory_server::net::xfer::Protocol;
use hickory_server::zone_handler::Catalog;
use tokio::sync::{watch, Notify};

use super::{catalog, AnswerCache, Key, Lead, RCODE_BITS, SERVFAIL};

/// Most requests waiting for a refresh; beyond it they are dropped (such an answer expires
/// and is asked again by the next client, as without prefetch).
const QUEUE_MAX: usize = 1024;
/// The source the forwarder sees for a refresh (it only logs it).
const SOURCE: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

/// True when an answer stored at `stored` and expiring at `expires` (milliseconds) is in the
/// last tenth of its lifetime at `now`.
pub(super) fn due(now: u64, stored: u64, expires: u64) -> bool {
    expires.saturating_sub(now) * 10 < expires.saturating_sub(stored)
}

/// Requests due for a refresh, and the wake-up of the task that refreshes them.
#[derive(Debug, Default)]
pub(super) struct Prefetch {
    queue: Mutex<Vec<Box<[u8]>>>,
    wake: Notify,
}

impl Prefetch {
    /// Queues the request `bytes` (from the UDP thread: no await).
    pub(super) fn push(&self, bytes: &[u8]) {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        if queue.len() < QUEUE_MAX {
            queue.push(bytes.into());
            drop(queue);
            self.wake.notify_one();
        }
    }

    /// The requests queued since the last call, waiting until there is one.
    async fn next_batch(&self) -> Vec<Box<[u8]>> {
        loop {
            let batch = std::mem::take(&mut *self.queue.lock().unwrap_or_else(|e| e.into_inner()));
            if !batch.is_empty() {
                return batch;
            }
            // A push between the take and here leaves a permit: this returns at once.
            self.wake.notified().await;
        }
    }
}

impl AnswerCache {
    /// Refreshes the answers hits queue, through `catalog`, for as long as it runs.
    pub async fn prefetch(&self, catalog: &Catalog) {
        loop {
            let batch = self.prefetch.next_batch().await;
            join_all(batch.iter().map(|bytes| self.refresh(catalog, bytes))).await;
        }
    }

    /// Asks the question of `bytes` upstream and keeps the answer, unless the question is
    /// being asked already. Clients that miss meanwhile wait for this answer, as for a
    /// client's own.
    async fn refresh(&self, catalog: &Catalog, bytes: &[u8]) {
        let Some(query) = crate::wire::parse_query(bytes) else {
            return;
        };
        let Some(key) = Key::of(&query) else {
            return;
        };
        let tx = {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            if in_flight.contains_key(key.as_slice()) {
                return;
            }
            let (tx, rx) = watch::channel(None);
            in_flight.insert(key.as_slice().into(), rx);
            tx
        };
        let _lead = Lead {
            cache: self,
            key: key.as_slice().into(),
        };
        let reply = catalog::ask_whole(catalog, bytes, SOURCE, Protocol::Udp).await;
        let answered = reply
            .as_deref()
            .filter(|r| r.get(3).is_some_and(|b| b & RCODE_BITS != SERVFAIL));
        if let Some(kept) = answered.and_then(|r| self.keep(&key, &query, r)) {
            tx.send_replace(Some(Some(Arc::from(kept))));
            return;
        }
        // The upstreams failed. Clients wait here only when the answer has expired meanwhile
        // (a fresh one would have answered them): they get it stale, as from a miss of their
        // own. With none waiting the cached answer is left to expire as it would have.
        if tx.receiver_count() > 1 {
            if let Some(stale) = self.stale(&key, &query) {
                tx.send_replace(Some(Some(Arc::from(stale))));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::due;

    #[test]
    fn due_in_the_last_tenth_of_the_lifetime() {
        // Stored at 1,000 ms for 10 s: due from 10,000 ms on (less than 1,000 ms left).
        assert!(!due(1_000, 1_000, 11_000));
        assert!(!due(10_000, 1_000, 11_000));
        assert!(due(10_001, 1_000, 11_000));
        assert!(due(10_999, 1_000, 11_000));
        // A lifetime of 0 never is (nothing to refresh before).
        assert!(!due(5, 5, 5));
    }
}
