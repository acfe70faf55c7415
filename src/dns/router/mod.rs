//! One request in, one reply out. Every request is parsed once — by the strict wire parser
//! when it is a plain IN query, by hickory's otherwise — and placed by one decision, [`Route`]:
//! the live zone is answered synchronously from the current snapshot (no task, no lock, no
//! etcd), a zone transfer is written from the snapshot, static zones and forwarding go to
//! hickory's catalog, and errors are answered here.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use hickory_server::net::xfer::Protocol;
use hickory_server::proto::op::{Message, ResponseCode};
use hickory_server::zone_handler::Catalog;
use tracing::{debug, error};

mod answer;
mod events;
mod message;
mod route;
mod signed;

use answer::{answer_query, near_client};
use events::{count_events, may_send};
pub use route::{Answer, Pending, Route};

use super::acl::Acl;
use super::cache::AnswerCache;
use super::catalog;
use super::locality::Locality;
use super::reply::{fit, form_error, server_failure, Limit, REPLY_CAPACITY};
use super::rrl::RateLimiter;
use super::statics::StaticZones;
use super::tsig::{self, TsigStats};
use crate::dnssec::Dnssec;
use crate::logging::LogLimit;
use crate::metrics::{Metrics, QueryStats, ThreadStats, Writer};
use crate::table::Table;
use crate::wire::pick::{Cut, Picks};
use crate::wire::{self, Near, RCODE_BITS};

/// Answers requests: owns the one routing decision and the paths it leads to.
pub struct Router {
    table: Arc<Table>,
    /// Query counters; tasks count into its shared set.
    metrics: Arc<Metrics>,
    catalog: Catalog,
    /// The static zone files, compiled.
    statics: StaticZones,
    /// True when names outside our zones are forwarded (else REFUSED).
    forwarding: bool,
    /// Who may transfer the live zone.
    allow_transfer: Acl,
    /// Response rate limiting of UDP replies, when on.
    rate_limit: Option<RateLimiter>,
    /// The answer cache for forwarded names, when on.
    cache: Option<Arc<AnswerCache>>,
    /// Most records in one answer (`--max-answers`); `usize::MAX` for as many as fit.
    max_answers: usize,
    /// Client networks by zone, when answers prefer nearby instances (`--locality`).
    locality: Option<Locality>,
    /// TSIG keys (`--tsig-key`), and the count of refused signatures.
    tsig: Vec<tsig::Key>,
    tsig_stats: Arc<TsigStats>,
    /// Online signing of the live zones that have a key (`--dnssec-key`).
    dnssec: Option<Arc<Dnssec>>,
}

/// What shaped an answer besides its name, for the counters.
#[derive(Debug, Clone, Copy, Default)]
struct Shaped {
    /// Records of a large set left out, and why.
    cut: Cut,
    /// What locality made of it.
    near: Near,
}

/// QCLASS IN as a number. hickory's `u16::from(DNSClass)` is not inlined: a call per query.
const CLASS_IN: u16 = 1;
/// QCLASS ANY (RFC 1035 §3.2.5), as a number for the same reason.
const CLASS_ANY: u16 = 255;

/// Requests the router could not answer, logged at most once per interval.
static UNANSWERED: LogLimit = LogLimit::new();
/// Requests that do not parse (counted as [`ClientEvent::Malformed`]).
static MALFORMED: LogLimit = LogLimit::new();
/// Transfers asked from outside `--allow-transfer` ([`ClientEvent::TransferRefused`]).
static TRANSFERS_REFUSED: LogLimit = LogLimit::new();

thread_local! {
    /// This thread's scratch for answers chosen from large or weighted sets, and its random
    /// source: nothing allocated per answer, nothing shared between cores.
    static PICKS: std::cell::RefCell<Picks> = std::cell::RefCell::new(Picks::new(seed()));
    /// Where the next multi-record answer starts. Per thread rather than one shared atomic:
    /// it only spreads clients over instances, and a shared counter would bounce one cache
    /// line between the cores on every answer.
    static ROTATION: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// A seed that differs between threads and runs: the clock and the thread's stack address.
fn seed() -> u64 {
    let local = 0u8;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (std::ptr::addr_of!(local) as u64).rotate_left(32)
}

fn next_rotation() -> usize {
    ROTATION.with(|r| {
        let start = r.get();
        r.set(start.wrapping_add(1));
        start
    })
}

impl Router {
    /// A router over `table` with the static zones (`statics`, compiled; `catalog` answers
    /// what they leave to it) and, when `forwarding`, every other name.
    pub fn new(
        table: Arc<Table>,
        metrics: Arc<Metrics>,
        catalog: Catalog,
        statics: StaticZones,
        forwarding: bool,
        allow_transfer: Acl,
    ) -> Self {
        Self {
            table,
            metrics,
            catalog,
            statics,
            forwarding,
            allow_transfer,
            rate_limit: None,
            cache: None,
            max_answers: usize::MAX,
            locality: None,
            tsig: Vec::new(),
            tsig_stats: Arc::default(),
            dnssec: None,
        }
    }

    /// The same router signing the answers of the live zones `dnssec` has keys for.
    pub fn with_dnssec(mut self, dnssec: Arc<Dnssec>) -> Self {
        self.dnssec = Some(dnssec);
        self
    }

    /// The same router verifying signed requests with `keys`, and signing its replies to them;
    /// refusals counted in `stats`.
    pub fn with_tsig(mut self, keys: Vec<tsig::Key>, stats: Arc<TsigStats>) -> Self {
        self.tsig = keys;
        self.tsig_stats = stats;
        self
    }

    /// The same router answering with the instances of the client's zone (`--locality`).
    pub fn with_locality(mut self, locality: Locality) -> Self {
        self.locality = Some(locality);
        self
    }

    /// The same router with forwarded answers cached in `cache`.
    pub fn with_cache(mut self, cache: Arc<AnswerCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// The same router with UDP replies rate-limited by `limiter`.
    pub fn with_rate_limit(mut self, limiter: RateLimiter) -> Self {
        self.rate_limit = Some(limiter);
        self
    }

    /// Answers A, AAAA, SRV and PTR with at most `max` records each (`--max-answers`), chosen
    /// per query by weight.
    pub fn with_max_answers(mut self, max: u16) -> Self {
        self.max_answers = usize::from(max.max(1));
        self
    }

    /// Refreshes cached answers shortly before they expire, for as long as it runs (never
    /// returns; pending when there is no cache).
    pub async fn prefetch(&self) {
        match &self.cache {
            Some(cache) => cache.prefetch(&self.catalog).await,
            None => std::future::pending().await,
        }
    }

    /// Its counters: the transport counts connection events into them.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Counters for a thread that alone answers with them (a UDP socket's thread).
    pub fn exclusive_stats(&self) -> ThreadStats {
        self.metrics.exclusive()
    }

    /// Answers one request, synchronously where it can and in this task where it cannot.
    pub async fn answer(
        &self,
        bytes: &[u8],
        src: SocketAddr,
        protocol: Protocol,
    ) -> Option<Vec<u8>> {
        let stats = self.metrics.shared();
        match self.answer_now(
            bytes,
            src,
            protocol,
            Vec::with_capacity(REPLY_CAPACITY),
            stats,
        ) {
            Answer::Reply(reply) => Some(reply),
            Answer::Drop => None,
            Answer::Later(pending) => self.answer_later(bytes, src, protocol, pending).await,
        }
    }

    /// The synchronous step: parse, place, and answer everything that needs neither the
    /// catalog nor a transfer, writing into `out` (emptied first) so that a loop can hand the
    /// same buffers back query after query instead of allocating one each time. Counts into
    /// `stats` (the caller's own, or the shared set).
    pub fn answer_now<W: Writer>(
        &self,
        bytes: &[u8],
        src: SocketAddr,
        protocol: Protocol,
        out: Vec<u8>,
        stats: &QueryStats<W>,
    ) -> Answer {
        let received = stats.time_this_one().then(Instant::now);
        let (answer, route, qtype, shaped) = self.place_and_answer(bytes, src, protocol, out);
        count_events(route, qtype, stats);
        if shaped.cut != Cut::None {
            stats.cut(shaped.cut);
        }
        if shaped.near != Near::Unshaped {
            stats.near(shaped.near);
        }
        match answer {
            Answer::Reply(mut reply) => {
                if let Some(limiter) = &self.rate_limit {
                    if matches!(protocol, Protocol::Udp)
                        && !may_send(limiter, &mut reply, route, src, stats)
                    {
                        return Answer::Drop;
                    }
                }
                let elapsed = received.map(|r| r.elapsed());
                stats.answered(route.path(), qtype, &reply, elapsed);
                Answer::Reply(reply)
            }
            Answer::Drop => {
                stats.dropped();
                Answer::Drop
            }
            // Timed from when it was placed, in `answer_later`.
            later => later,
        }
    }

    /// [`Router::answer_now`] without the counting: the answer, its route and its QTYPE.
    /// Inlined into each of `answer_now`'s two instances (a thread's counters, the shared
    /// ones): called, it costs a live answer ~30 instructions more (callgrind, query_cost).
    #[inline(always)]
    fn place_and_answer(
        &self,
        bytes: &[u8],
        src: SocketAddr,
        protocol: Protocol,
        mut out: Vec<u8>,
    ) -> (Answer, Route, u16, Shaped) {
        let snapshot = self.table.load();
        // A plain IN query of EDNS version 0 (the common case) is read by the strict wire
        // parser and matched where it was parsed; anything else is read by hickory's parser.
        match wire::parse_query(bytes) {
            Some(query)
                if query.edns.is_none_or(|e| e.version == 0) && query.qclass == CLASS_IN =>
            {
                let route = self.place(&snapshot, &query, src);
                // A forwarded name in the cache is answered here, like the live zone.
                if route == Route::Forward
                    && self
                        .cache
                        .as_ref()
                        .is_some_and(|c| c.answer(&query, bytes, protocol, &mut out))
                {
                    return (Answer::Reply(out), route, query.qtype, Shaped::default());
                }
                let near = match (&self.locality, route) {
                    (Some(locality), Route::Live(_)) => Some(near_client(locality, &query, src)),
                    _ => None,
                };
                let (answer, shaped) = answer_query(
                    &snapshot,
                    &self.statics,
                    self.dnssec.as_deref(),
                    &query,
                    route,
                    protocol,
                    self.max_answers,
                    near,
                    out,
                );
                return (answer, route, query.qtype, shaped);
            }
            _ => {}
        }
        match Message::from_vec(bytes) {
            Ok(message) if message.signature().is_some() => {
                self.answer_signed(&snapshot, bytes, &message, src, protocol, out)
            }
            Ok(message) => self.answer_message(&snapshot, bytes, &message, src, protocol, out),
            Err(error) => {
                if let Some(suppressed) = MALFORMED.allow() {
                    debug!(%error, %src, suppressed, "malformed query");
                }
                let answer = form_error(bytes).map_or(Answer::Drop, Answer::Reply);
                (
                    answer,
                    Route::Error(ResponseCode::FormErr),
                    0,
                    Shaped::default(),
                )
            }
        }
    }

    /// The step that runs in a task: the catalog (static zones, forwarding) and transfers.
    pub async fn answer_later(
        &self,
        bytes: &[u8],
        src: SocketAddr,
        protocol: Protocol,
        pending: Pending,
    ) -> Option<Vec<u8>> {
        let route = pending.route;
        let reply = match route {
            Route::Forward => match &self.cache {
                Some(cache) => cache.resolve(&self.catalog, bytes, src, protocol).await,
                None => catalog::ask(&self.catalog, bytes, src, protocol).await,
            },
            // Over TCP a transfer goes through `answer_tcp`, in as many messages as it needs;
            // over UDP it is one error message.
            Route::Transfer => self.transfer(bytes, src, protocol).into_iter().next(),
            Route::Live(_)
            | Route::Reverse
            | Route::Static { .. }
            | Route::Error(_)
            | Route::Drop => None,
        };
        let reply = reply.unwrap_or_else(|| {
            if let Some(suppressed) = UNANSWERED.allow() {
                error!(?route, %src, suppressed, "bug: a routed request got no answer; sending SERVFAIL");
            }
            fit(server_failure(bytes.to_vec()), Limit::new(None, protocol))
        });
        let stats = self.metrics.shared();
        let mut reply = reply;
        if let Some(limiter) = &self.rate_limit {
            if matches!(protocol, Protocol::Udp)
                && !may_send(limiter, &mut reply, route, src, stats)
            {
                return None;
            }
        }
        let servfail = reply
            .get(3)
            .is_some_and(|b| b & RCODE_BITS == ResponseCode::ServFail.low());
        if route == Route::Forward && servfail {
            stats.upstream_failed();
        }
        stats.answered(
            route.path(),
            pending.qtype,
            &reply,
            Some(pending.received.elapsed()),
        );
        Some(reply)
    }
}

#[cfg(test)]
mod tests;
