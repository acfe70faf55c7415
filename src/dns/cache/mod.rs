//! The answer cache for forwarded names, in wire form. A hit is answered inside
//! [`Router::answer_now`](super::router::Router::answer_now) on the UDP thread: one hash, one
//! shard lock, one copy of the stored reply with the client's ID, flags and question case put
//! in and every TTL counted down (as unbound does) — no task, no catalog, no hickory.
//!
//! A miss goes to the router's task, which asks the catalog (hickory-resolver towards the
//! upstreams) once per question however many clients ask it at the same time, and keeps the
//! reply when it is complete: NOERROR with answers for their smallest TTL, NXDOMAIN and NODATA
//! for the SOA's negative TTL (RFC 2308). When the upstreams fail (SERVFAIL), an expired answer
//! up to [`STALE_MAX`] old is served with TTL 30 instead (RFC 8767). A hit in the last tenth
//! of an answer's lifetime also asks upstream again, in the background, once (prefetch, as
//! unbound's `prefetch: yes`): popular names are refreshed before they expire, and no client
//! waits for them.
//!
//! Keys: the lowercase question name, type, class, and whether the query had EDNS, DO and CD
//! (each changes the reply's bytes or what the upstream may answer). Only queries with RD
//! (which the forwarder needs) and in the strict parser's plain shape use the cache.

mod entry;
mod prefetch;
mod report;
mod store;

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_server::net::xfer::Protocol;
use hickory_server::zone_handler::Catalog;
use tokio::sync::watch;

pub use entry::{max_age, Entry, MAX_NEGATIVE_TTL, MAX_REPLY, MAX_TTL, STALE_TTL};
use prefetch::Prefetch;
use store::Store;

use super::catalog;
use super::reply::{Limit, TCP_MESSAGE_MAX};
use crate::table::FastHash;
use crate::wire::{WireQuery, FLAG_CD, FLAG_RD, HEADER_LEN, MAX_NAME_WIRE, RCODE_BITS};

/// Default `--cache-size`, MiB.
pub const DEFAULT_CACHE_MIB: usize = 64;
/// How long after it expired an answer may still be served stale when every upstream fails
/// (RFC 8767 §5 suggests one to three days).
pub const STALE_MAX: Duration = Duration::from_secs(86_400);
/// Key bit: the query had EDNS (the reply carries OPT).
const KEY_EDNS: u8 = 1;
/// Key bit: DO.
const KEY_DO: u8 = 2;
/// Key bit: CD (a validating upstream answers it differently).
const KEY_CD: u8 = 4;
/// RCODE SERVFAIL: the upstreams failed.
const SERVFAIL: u8 = 2;
/// Longest key: name, type, class, flag bits.
const KEY_MAX: usize = MAX_NAME_WIRE + 5;
/// No size limit: the whole reply, as the leader of a shared upstream query hands it on.
const WHOLE: Limit = Limit {
    size: TCP_MESSAGE_MAX,
    stream: true,
};

/// A reply shared by the queries that waited for one upstream answer (`None`: the catalog
/// sent nothing).
type Shared = Option<Arc<[u8]>>;
/// Where later askers of a question wait for its leader's reply (`None` until it is there).
type Waiting = watch::Receiver<Option<Shared>>;

/// Cached answers for forwarded names, and the upstream queries in flight.
#[derive(Debug)]
pub struct AnswerCache {
    store: Store,
    hasher: FastHash,
    /// Zero of the cache's millisecond clock.
    epoch: Instant,
    /// Questions being asked upstream now: later askers wait for the same reply. A `std`
    /// mutex held only to look up, add or remove one key, never across an await.
    in_flight: Mutex<HashMap<Box<[u8]>, Waiting>>,
    /// Questions that went upstream (the slow path: shared atomics are cheap enough).
    misses: AtomicU64,
    /// Queries that waited for a question already asked upstream.
    coalesced: AtomicU64,
    /// Requests whose answers are due for a refresh.
    prefetch: Prefetch,
}

/// The cache key of one question.
struct Key {
    bytes: [u8; KEY_MAX],
    len: usize,
}

impl Key {
    /// The key of `query`, or `None` when it does not use the cache (no RD).
    fn of(query: &WireQuery<'_>) -> Option<Self> {
        if query.head[2] & FLAG_RD == 0 {
            return None;
        }
        let name = query.name();
        let mut bytes = [0u8; KEY_MAX];
        bytes[..name.len()].copy_from_slice(name);
        let mut len = name.len();
        bytes[len..len + 2].copy_from_slice(&query.qtype.to_be_bytes());
        bytes[len + 2..len + 4].copy_from_slice(&query.qclass.to_be_bytes());
        let edns = query
            .edns
            .map_or(0, |e| KEY_EDNS | if e.dnssec_ok { KEY_DO } else { 0 });
        let cd = if query.head[3] & FLAG_CD != 0 {
            KEY_CD
        } else {
            0
        };
        bytes[len + 4] = edns | cd;
        len += 5;
        Some(Self { bytes, len })
    }

    fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl AnswerCache {
    /// A cache that keeps at most about `budget` bytes of answers.
    pub fn new(budget: usize) -> Self {
        Self {
            store: Store::new(budget),
            hasher: FastHash::default(),
            epoch: Instant::now(),
            in_flight: Mutex::new(HashMap::new()),
            misses: AtomicU64::new(0),
            coalesced: AtomicU64::new(0),
            prefetch: Prefetch::default(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// The hot path: writes the cached answer to `query` (the request `bytes`) into `out` and
    /// returns true, or returns false (a miss, an expired answer, a query that does not use
    /// the cache). An answer in the last tenth of its lifetime queues `bytes` for a refresh.
    pub fn answer(
        &self,
        query: &WireQuery<'_>,
        bytes: &[u8],
        protocol: Protocol,
        out: &mut Vec<u8>,
    ) -> bool {
        let Some(key) = Key::of(query) else {
            return false;
        };
        let limit = Limit::from_wire(query.edns, protocol);
        match self.fresh(&key, query, limit, out) {
            Some(refresh) => {
                if refresh {
                    self.prefetch.push(bytes);
                }
                true
            }
            None => false,
        }
    }

    /// Writes the unexpired answer at `key`, if any, for `query`: `None` when there is none,
    /// else whether it is due for a refresh (asked for once per stored answer).
    fn fresh(
        &self,
        key: &Key,
        query: &WireQuery<'_>,
        limit: Limit,
        out: &mut Vec<u8>,
    ) -> Option<bool> {
        let hash = self.hasher.hash_one(key.as_slice());
        let now = self.now_ms();
        let mut shard = self.store.shard(hash);
        let slot = shard.get(hash, key.as_slice())?;
        let expires = slot.expires();
        if now >= expires {
            return None;
        }
        let elapsed = ((now - slot.stored) / 1000) as u32;
        if !slot
            .entry
            .write(out, query.head, query.question, elapsed, limit)
        {
            return None;
        }
        let stale = slot.entry.stale;
        let refresh = !stale && !slot.prefetched && prefetch::due(now, slot.stored, expires);
        slot.prefetched |= refresh;
        if refresh {
            shard.prefetches += 1;
        }
        if stale {
            shard.stale += 1;
        } else {
            shard.hits += 1;
        }
        Some(refresh)
    }

    /// The slow path for a forwarded request: the cache again (it may have been filled since),
    /// else the catalog, asked once for all who ask the same question meanwhile; keeps what
    /// it may and serves stale when the upstreams fail.
    pub async fn resolve(
        &self,
        catalog: &Catalog,
        bytes: &[u8],
        src: SocketAddr,
        protocol: Protocol,
    ) -> Option<Vec<u8>> {
        let parsed = crate::wire::parse_query(bytes);
        let Some((query, key)) = parsed.and_then(|q| Key::of(&q).map(|k| (q, k))) else {
            return catalog::ask(catalog, bytes, src, protocol).await;
        };
        let limit = Limit::from_wire(query.edns, protocol);
        let waiting = {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            match in_flight.get(key.as_slice()) {
                Some(waiting) => Err(waiting.clone()),
                None => {
                    let (tx, rx) = watch::channel(None);
                    in_flight.insert(key.as_slice().into(), rx);
                    Ok(tx)
                }
            }
        };
        let tx = match waiting {
            Ok(tx) => tx,
            Err(mut rx) => {
                self.coalesced.fetch_add(1, Ordering::Relaxed);
                // The leader dropped without an answer: ask on our own.
                let shared = rx
                    .wait_for(Option::is_some)
                    .await
                    .ok()
                    .and_then(|s| s.clone());
                if let Some(shared) = shared {
                    let shared = shared?;
                    if let Some(reply) = copy_for(&shared, &query) {
                        return Some(catalog::fit_reply(reply, limit));
                    }
                }
                return catalog::ask(catalog, bytes, src, protocol).await;
            }
        };
        // Removes the question from `in_flight` however this ends.
        let _lead = Lead {
            cache: self,
            key: key.as_slice().into(),
        };
        let whole = self.lead(catalog, bytes, src, protocol, &query, &key).await;
        tx.send_replace(Some(whole.as_deref().map(Arc::from)));
        Some(catalog::fit_reply(whole?, limit))
    }

    /// The leader's work: the whole reply to its own request.
    async fn lead(
        &self,
        catalog: &Catalog,
        bytes: &[u8],
        src: SocketAddr,
        protocol: Protocol,
        query: &WireQuery<'_>,
        key: &Key,
    ) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        if self.fresh(key, query, WHOLE, &mut out).is_some() {
            return Some(out);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let reply = catalog::ask_whole(catalog, bytes, src, protocol).await;
        let failed = reply
            .as_ref()
            .is_none_or(|r| r.get(3).is_some_and(|b| b & RCODE_BITS == SERVFAIL));
        if failed {
            if let Some(stale) = self.stale(key, query) {
                return Some(stale);
            }
        } else if let Some(kept) = reply.as_deref().and_then(|r| self.keep(key, query, r)) {
            return Some(kept);
        }
        reply
    }

    /// Keeps `reply` to `query` at `key` if it is worth keeping ([`Entry::parse`]), and
    /// returns it as the cache will send it (TTLs capped, a negative answer's SOA TTL
    /// lowered to its MINIMUM), so that the first answer reads as every later one.
    fn keep(&self, key: &Key, query: &WireQuery<'_>, reply: &[u8]) -> Option<Vec<u8>> {
        if !same_question(reply, query) {
            return None;
        }
        let entry = Entry::parse(reply, query.question.len())?;
        let mut out = Vec::with_capacity(reply.len());
        if !entry.write(&mut out, query.head, query.question, 0, WHOLE) {
            return None;
        }
        let hash = self.hasher.hash_one(key.as_slice());
        let now = self.now_ms();
        let expires = now + u64::from(entry.lifetime) * 1000;
        let stale_until = expires + STALE_MAX.as_millis() as u64;
        self.store
            .shard(hash)
            .insert(hash, key.as_slice(), entry, now, stale_until);
        Some(out)
    }

    /// An expired answer still young enough to serve stale, written whole for `query`; it
    /// stays in the cache as a stale answer for [`STALE_TTL`] (RFC 8767 §4), so the clients
    /// after it are answered at once rather than after another upstream timeout.
    fn stale(&self, key: &Key, query: &WireQuery<'_>) -> Option<Vec<u8>> {
        let hash = self.hasher.hash_one(key.as_slice());
        let now = self.now_ms();
        let mut shard = self.store.shard(hash);
        let slot = shard.get(hash, key.as_slice())?;
        if now >= slot.stale_until {
            return None;
        }
        let staled = slot.entry.staled();
        let stale_until = slot.stale_until;
        let mut out = Vec::new();
        if !staled.write(&mut out, query.head, query.question, 0, WHOLE) {
            return None;
        }
        shard.stale += 1;
        shard.insert(hash, key.as_slice(), staled, now, stale_until);
        Some(out)
    }
}

/// Takes a question out of the in-flight map when its leader is done (or dropped).
struct Lead<'a> {
    cache: &'a AnswerCache,
    key: Box<[u8]>,
}

impl Drop for Lead<'_> {
    fn drop(&mut self) {
        let mut in_flight = self
            .cache
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        in_flight.remove(&self.key);
    }
}

/// True when `reply` answers `query`'s question (in any case).
fn same_question(reply: &[u8], query: &WireQuery<'_>) -> bool {
    let question = query.question;
    let Some(theirs) = reply.get(HEADER_LEN..HEADER_LEN + question.len()) else {
        return false;
    };
    let name_len = question.len().saturating_sub(4);
    reply.get(4..6) == Some(&[0, 1])
        && theirs[..name_len].eq_ignore_ascii_case(&question[..name_len])
        && theirs[name_len..] == question[name_len..]
}

/// `reply` (to the same question in any case) as a reply to `query`: its ID, RD, CD and
/// question as asked. `None` when the reply's question is not the query's.
fn copy_for(reply: &[u8], query: &WireQuery<'_>) -> Option<Vec<u8>> {
    if !same_question(reply, query) {
        return None;
    }
    let mut out = reply.to_vec();
    out[..2].copy_from_slice(&query.head[..2]);
    out[2] = (out[2] & !FLAG_RD) | (query.head[2] & FLAG_RD);
    out[3] = (out[3] & !FLAG_CD) | (query.head[3] & FLAG_CD);
    out[HEADER_LEN..HEADER_LEN + query.question.len()].copy_from_slice(query.question);
    Some(out)
}

#[cfg(test)]
mod tests;
