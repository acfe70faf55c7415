//! One request in, one reply out. Every request is parsed once — by the strict wire parser
//! when it is a plain IN query, by hickory's otherwise — and placed by one decision, [`Route`]:
//! the live zone is answered synchronously from the current snapshot (no task, no lock, no
//! etcd), a zone transfer is written from the snapshot, static zones and forwarding go to
//! hickory's catalog, and errors are answered here.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use hickory_server::net::xfer::Protocol;
use hickory_server::proto::op::{Message, ResponseCode};
use hickory_server::proto::rr::RecordType;
use hickory_server::zone_handler::Catalog;
use tracing::{debug, error};

mod events;
mod message;
mod route;

use events::{count_events, may_send};
pub use route::{Answer, Pending, Route};

use super::acl::Acl;
use super::cache::AnswerCache;
use super::live::{Body, NearClient, Room};
use super::locality::Locality;
use super::reply::{
    error_reply, fit, form_error, server_failure, Limit, EDNS_PAYLOAD, REPLY_CAPACITY,
};
use super::rrl::RateLimiter;
use super::statics::StaticZones;
use super::tsig::{self, TsigStats};
use super::{catalog, live, transfer};
use crate::logging::LogLimit;
use crate::metrics::{Metrics, QueryStats, ThreadStats, Writer};
use crate::records::NO_ZONE;
use crate::table::{Snapshot, Table};
use crate::wire::pick::{Cut, Picks};
use crate::wire::{self, Near, ReplyBody, WireQuery, HEADER_LEN, OPT_LEN, RCODE_BITS};

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
        }
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

    /// Answers one request received over TCP: its reply, or a zone transfer's messages.
    pub async fn answer_tcp(&self, bytes: &[u8], src: SocketAddr) -> Vec<Vec<u8>> {
        let stats = self.metrics.shared();
        let out = Vec::with_capacity(REPLY_CAPACITY);
        match self.answer_now(bytes, src, Protocol::Tcp, out, stats) {
            Answer::Reply(reply) => vec![reply],
            Answer::Drop => Vec::new(),
            Answer::Later(pending) if pending.route == Route::Transfer => {
                let messages = self.transfer(bytes, src, Protocol::Tcp);
                if let Some(first) = messages.first() {
                    stats.answered(
                        pending.route.path(),
                        pending.qtype,
                        first,
                        Some(pending.received.elapsed()),
                    );
                }
                messages
            }
            Answer::Later(pending) => self
                .answer_later(bytes, src, Protocol::Tcp, pending)
                .await
                .into_iter()
                .collect(),
        }
    }

    /// A zone transfer's messages (one error message when it cannot be made), signed when the
    /// request was; REFUSED unsigned when `--allow-transfer` names keys and none signed it.
    fn transfer(&self, bytes: &[u8], src: SocketAddr, protocol: Protocol) -> Vec<Vec<u8>> {
        let Ok(request) = Message::from_vec(bytes) else {
            return form_error(bytes).into_iter().collect();
        };
        let limit = Limit::new(request.edns.as_ref(), protocol);
        let verified = match tsig::verify(&self.tsig, bytes, &request) {
            Ok(verified) => verified,
            Err(refusal) => {
                self.tsig_stats.count(Some(refusal));
                let mut reply = error_reply(&request, ResponseCode::NotAuth, limit);
                tsig::append_error(&mut reply, &request, refusal);
                return vec![reply];
            }
        };
        let required = self.allow_transfer.keys();
        let signed_by = verified.as_ref().map(|v| v.key.name().to_ascii());
        if !required.is_empty() && !signed_by.is_some_and(|name| required.contains(&name)) {
            self.tsig_stats.count(None);
            if let Some(suppressed) = TRANSFERS_REFUSED.allow() {
                debug!(%src, suppressed, "zone transfer refused: not signed by an allowed key");
            }
            return vec![error_reply(&request, ResponseCode::Refused, limit)];
        }
        let (mut messages, kind) = transfer::axfr(bytes, &request, &self.table.load(), src, limit);
        if let Some(kind) = kind {
            self.metrics.transfers[kind as usize].fetch_add(1, Ordering::Relaxed);
        }
        if let Some(verified) = &verified {
            tsig::sign_all(verified, &mut messages);
        }
        messages
    }

    /// A request carrying a TSIG record: verified before it is answered (NOTAUTH, with the
    /// TSIG error, when it does not verify), its reply signed. Transfers verify and sign in
    /// their task.
    fn answer_signed(
        &self,
        snapshot: &Snapshot,
        bytes: &[u8],
        message: &Message,
        src: SocketAddr,
        protocol: Protocol,
        out: Vec<u8>,
    ) -> (Answer, Route, u16, Shaped) {
        let qtype = message.queries.first().map_or(0, |q| q.query_type().into());
        match tsig::verify(&self.tsig, bytes, message) {
            Ok(Some(verified)) => {
                let (answer, route, qtype, shaped) =
                    self.answer_message(snapshot, bytes, message, src, protocol, out);
                let answer = match answer {
                    Answer::Reply(mut reply) => {
                        tsig::sign_all(&verified, std::slice::from_mut(&mut reply));
                        Answer::Reply(reply)
                    }
                    other => other,
                };
                (answer, route, qtype, shaped)
            }
            Ok(None) => self.answer_message(snapshot, bytes, message, src, protocol, out),
            Err(refusal) => {
                self.tsig_stats.count(Some(refusal));
                let limit = Limit::new(message.edns.as_ref(), protocol);
                let mut reply = error_reply(message, ResponseCode::NotAuth, limit);
                tsig::append_error(&mut reply, message, refusal);
                let route = Route::Error(ResponseCode::NotAuth);
                (Answer::Reply(reply), route, qtype, Shaped::default())
            }
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

    /// The route of one question. Types and classes are compared as numbers: converting the
    /// query's to hickory's enums would cost a lookup per query.
    fn place(&self, snapshot: &Snapshot, query: &WireQuery<'_>, src: SocketAddr) -> Route {
        let name = query.name();
        let qtype = query.qtype;
        // QCLASS ANY (RFC 1035 §3.2.5) is answered like IN in the live zone, as Knot does.
        let class_ok = query.qclass == CLASS_IN || query.qclass == CLASS_ANY;
        match live::in_zone(snapshot, name) {
            // Other classes are not ours.
            Some(_) if !class_ok => Route::Error(ResponseCode::Refused),
            Some(_)
                if qtype == u16::from(RecordType::AXFR) || qtype == u16::from(RecordType::IXFR) =>
            {
                if self.allow_transfer.contains(src.ip()) {
                    Route::Transfer
                } else {
                    if let Some(suppressed) = TRANSFERS_REFUSED.allow() {
                        debug!(%src, suppressed, "zone transfer refused");
                    }
                    Route::Error(ResponseCode::Refused)
                }
            }
            Some(zone_at) => Route::Live(zone_at),
            None if class_ok && qtype == u16::from(RecordType::PTR) && has_ptr(snapshot, name) => {
                Route::Reverse
            }
            None => match self.statics.find(name) {
                // As for the live zone: other classes are not ours, and no transfers.
                Some(_)
                    if !class_ok
                        || qtype == u16::from(RecordType::AXFR)
                        || qtype == u16::from(RecordType::IXFR) =>
                {
                    Route::Error(ResponseCode::Refused)
                }
                Some((zone, zone_at)) => Route::Static { zone, zone_at },
                None if self.forwarding => Route::Forward,
                None => Route::Error(ResponseCode::Refused),
            },
        }
    }
}

/// True when the table holds PTR records at `name`.
fn has_ptr(snapshot: &Snapshot, name: &[u8]) -> bool {
    snapshot
        .names
        .get(name)
        .is_some_and(|node| node.rrset(RecordType::PTR.into()).is_some())
}

/// Where the client of `query` from `src` is for `locality`, and whether its Client Subnet
/// was read (then echoed with `scope`).
#[derive(Debug, Clone, Copy)]
struct NearQuery {
    client: NearClient,
    ecs: bool,
    scope: u8,
}

/// The client of `query` from `src` as `locality` sees it.
fn near_client(locality: &Locality, query: &WireQuery<'_>, src: SocketAddr) -> NearQuery {
    let (ip, ecs) = locality.client_address(src.ip(), query.edns.and_then(|e| e.ecs));
    let client = locality.client(ip);
    NearQuery {
        client: NearClient {
            zone: client.zone.unwrap_or(NO_ZONE),
            min: locality.min,
        },
        ecs,
        scope: client.scope,
    }
}

/// Writes the reply to `query` on `route` into `out`, or says who else must answer; with
/// whether records of a large set were left out, and why, and what locality (`near`) made of
/// it. `max_answers` caps the records of one answer.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn answer_query(
    snapshot: &Snapshot,
    statics: &StaticZones,
    query: &WireQuery<'_>,
    route: Route,
    protocol: Protocol,
    max_answers: usize,
    near: Option<NearQuery>,
    mut out: Vec<u8>,
) -> (Answer, Shaped) {
    let limit = Limit::from_wire(query.edns, protocol);
    let ecs = match near {
        Some(near) if near.ecs => wire::ecs_len(query),
        _ => 0,
    };
    let opt = if query.edns.is_some() {
        OPT_LEN + ecs
    } else {
        0
    };
    let room = Room {
        bytes: limit
            .size
            .saturating_sub(HEADER_LEN + query.question.len() + opt),
        records: max_answers,
    };
    let rotate = next_rotation();
    let mut body = match route {
        Route::Live(zone_at) => live::live_body(
            snapshot,
            query.name(),
            query.qtype,
            zone_at,
            rotate,
            room,
            near.map(|n| n.client),
        ),
        // `place` saw the PTR set in this same snapshot, so it is there.
        Route::Reverse => {
            live::ptr_body(snapshot, query.name(), rotate, room).unwrap_or_else(|| {
                Body::Ready(ReplyBody {
                    rcode: ResponseCode::ServFail.low(),
                    ..ReplyBody::default()
                })
            })
        }
        Route::Static { zone, zone_at } => {
            Body::Ready(statics.body(zone, query.name(), query.qtype, zone_at))
        }
        Route::Error(code) => Body::Ready(ReplyBody {
            rcode: code.low(),
            ..ReplyBody::default()
        }),
        Route::Drop => return (Answer::Drop, Shaped::default()),
        // The caller fills in what the task needs.
        Route::Transfer | Route::Forward => return (later(route, query), Shaped::default()),
    };
    let near = match near {
        Some(near) => {
            let head = body.head_mut();
            if near.ecs {
                // RFC 7871 §7.2.1: the scope of an answer locality did not shape is 0.
                let shaped = head.near != Near::Unshaped;
                head.ecs_scope = Some(if shaped { near.scope } else { 0 });
            }
            head.near
        }
        None => Near::Unshaped,
    };
    let write = |out: &mut Vec<u8>, body: &ReplyBody<'_>| {
        wire::write_reply(out, query, body, EDNS_PAYLOAD, limit.size, limit.stream);
        body.cut
    };
    // Written from where it lies: moving a body costs a live answer more than writing it.
    let cut = if let Body::Ready(body) = &body {
        write(&mut out, body)
    } else {
        PICKS.with_borrow_mut(|picks| write(&mut out, &body.finish(rotate, room, picks)))
    };
    (Answer::Reply(out), Shaped { cut, near })
}

/// The request on `route` left to [`Router::answer_later`].
fn later(route: Route, query: &WireQuery<'_>) -> Answer {
    Answer::Later(Pending {
        route,
        qtype: query.qtype,
        received: Instant::now(),
    })
}

#[cfg(test)]
mod tests;
