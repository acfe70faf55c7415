//! Query counters: what one writer counts, and the labels they are reported under.
//!
//! A UDP thread owns its [`ThreadStats`] and is their only writer: a load and a store per
//! count, no locked instruction. Tasks share one [`QueryStats<Shared>`] with atomic adds. The
//! choice is the type's, so the hot path has no branch on it, and a thread's counters cannot
//! be handed to a second writer ([`ThreadStats`] is neither `Clone` nor `Sync`).

use std::cell::Cell;
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::events::{ClientEvent, CLIENT_EVENTS};
use crate::wire::pick::Cut;
use crate::wire::Near;

/// How a request was answered: the `path` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// The live table.
    Live,
    /// A zone transfer.
    Transfer,
    /// A static zone file.
    Static,
    /// Forwarded upstream (or the answer cache).
    Forward,
    /// An error the router answered itself, or nothing sent.
    Error,
}

impl Path {
    /// Every path, each at its own index (`path as usize`).
    pub const ALL: [Path; 5] = [
        Path::Live,
        Path::Transfer,
        Path::Static,
        Path::Forward,
        Path::Error,
    ];

    /// Its label.
    pub fn label(self) -> &'static str {
        match self {
            Path::Live => "live",
            Path::Transfer => "transfer",
            Path::Static => "static",
            Path::Forward => "forward",
            Path::Error => "error",
        }
    }
}

// `ALL` lists each path at its index: counters are found by `path as usize`.
const _: () = {
    let mut i = 0;
    while i < Path::ALL.len() {
        assert!(Path::ALL[i] as usize == i);
        i += 1;
    }
};

/// Query types with a label of their own; every other type counts as "other". Their slots
/// are looked up in [`QTYPE_SLOTS`], built from this list.
pub(super) const QTYPES: [(u16, &str); 11] = [
    (1, "A"),
    (2, "NS"),
    (5, "CNAME"),
    (6, "SOA"),
    (12, "PTR"),
    (16, "TXT"),
    (28, "AAAA"),
    (33, "SRV"),
    (251, "IXFR"),
    (252, "AXFR"),
    (255, "ANY"),
];
/// The counter slot of every QTYPE below 256: its place in [`QTYPES`], else the "other" slot
/// (`QTYPES.len()`). One load instead of a search per answer.
const QTYPE_SLOTS: [u8; 256] = {
    let mut slots = [QTYPES.len() as u8; 256];
    let mut i = 0;
    while i < QTYPES.len() {
        assert!(QTYPES[i].0 < 256, "QTYPES with a label must be below 256");
        slots[QTYPES[i].0 as usize] = i as u8;
        i += 1;
    }
    slots
};
/// RCODE names by value (the low four bits of the header); every other one is "other".
pub(super) const RCODES: [&str; 6] = [
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
];
/// The `reason` labels of partial answers, by slot: `--max-answers`, the transport's size.
pub(super) const CUTS: [&str; 2] = ["max_answers", "size"];
/// The `answer` labels of answers locality shaped, by slot: the client's zone, every instance.
pub(super) const NEARS: [&str; 2] = ["local", "fallback"];
/// Upper bounds of the latency histogram's buckets, in seconds: from a live answer (a few µs)
/// to a forwarded one that waited on every upstream (seconds).
pub const LATENCY_BUCKETS: [f64; 14] = [
    5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 0.25, 1.0, 5.0,
];
/// One in this many answers made on the spot is timed.
pub const TIMING_SAMPLE: u64 = 16;
/// Counters per (path, qtype, rcode).
pub(super) const QUERY_COUNTERS: usize = Path::ALL.len() * (QTYPES.len() + 1) * (RCODES.len() + 1);
/// Buckets per path, the last one above every bound.
pub(super) const BUCKETS: usize = LATENCY_BUCKETS.len() + 1;

/// The counter slot of a QTYPE: its place in [`QTYPES`], or the "other" slot.
fn qtype_slot(qtype: u16) -> usize {
    QTYPE_SLOTS
        .get(usize::from(qtype))
        .map_or(QTYPES.len(), |slot| usize::from(*slot))
}

/// The index of a (path, qtype slot, rcode slot) counter.
pub(super) fn query_counter(path: usize, qtype_slot: usize, rcode: usize) -> usize {
    (path * (QTYPES.len() + 1) + qtype_slot) * (RCODES.len() + 1) + rcode
}

/// How a set of counters is written.
pub trait Writer: std::fmt::Debug + Send + Sync + 'static {
    /// Adds `n` to `counter`.
    fn bump(counter: &AtomicU64, n: u64);
}

/// Written by one thread alone ([`ThreadStats`]): a load and a store are enough.
#[derive(Debug)]
pub struct Exclusive;

impl Writer for Exclusive {
    #[inline]
    fn bump(counter: &AtomicU64, n: u64) {
        counter.store(
            counter.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }
}

/// Written by any task: an atomic add.
#[derive(Debug)]
pub struct Shared;

impl Writer for Shared {
    #[inline]
    fn bump(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// One writer's query counters; `W` says how they are written. A scrape reads them all.
#[derive(Debug)]
pub struct QueryStats<W: Writer = Shared> {
    pub(super) queries: Box<[AtomicU64]>,
    pub(super) latency: Box<[AtomicU64]>,
    pub(super) latency_ns: [AtomicU64; Path::ALL.len()],
    pub(super) dropped: AtomicU64,
    pub(super) upstream_failures: AtomicU64,
    /// Answers that left records of a large set out: by `--max-answers`, by the transport's
    /// size ([`CUTS`]).
    pub(super) cuts: [AtomicU64; 2],
    /// Answers locality shaped: local, fallback ([`NEARS`]).
    pub(super) nears: [AtomicU64; 2],
    /// Per [`ClientEvent`].
    pub(super) events: [AtomicU64; CLIENT_EVENTS.len()],
    /// Answers seen, for choosing which to time.
    ticks: AtomicU64,
    writer: PhantomData<W>,
}

impl<W: Writer> Default for QueryStats<W> {
    fn default() -> Self {
        let zeros = |n| (0..n).map(|_| AtomicU64::new(0)).collect();
        Self {
            queries: zeros(QUERY_COUNTERS),
            latency: zeros(Path::ALL.len() * BUCKETS),
            latency_ns: Default::default(),
            dropped: AtomicU64::new(0),
            upstream_failures: AtomicU64::new(0),
            cuts: Default::default(),
            nears: Default::default(),
            events: Default::default(),
            ticks: AtomicU64::new(0),
            writer: PhantomData,
        }
    }
}

impl<W: Writer> QueryStats<W> {
    /// True for one call in [`TIMING_SAMPLE`]: time this answer.
    pub fn time_this_one(&self) -> bool {
        let tick = self.ticks.load(Ordering::Relaxed);
        W::bump(&self.ticks, 1);
        tick.is_multiple_of(TIMING_SAMPLE)
    }

    /// Counts one answered request: its `path`, QTYPE, the RCODE of `reply` and, when it was
    /// timed, how long it took.
    pub fn answered(&self, path: Path, qtype: u16, reply: &[u8], elapsed: Option<Duration>) {
        let rcode = reply.get(3).map_or(RCODES.len(), |b| (b & 0x0f) as usize);
        let at = query_counter(path as usize, qtype_slot(qtype), rcode.min(RCODES.len()));
        if let Some(counter) = self.queries.get(at) {
            W::bump(counter, 1);
        }
        if let Some(elapsed) = elapsed {
            self.timed(path as usize, elapsed);
        }
    }

    fn timed(&self, path: usize, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let bucket = LATENCY_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(LATENCY_BUCKETS.len());
        if let Some(counter) = self.latency.get(path * BUCKETS + bucket) {
            W::bump(counter, 1);
        }
        if let Some(total) = self.latency_ns.get(path) {
            W::bump(total, elapsed.as_nanos() as u64);
        }
    }

    /// Counts a request that got no reply (a response, or bytes too short to answer).
    pub fn dropped(&self) {
        W::bump(&self.dropped, 1);
    }

    /// Counts a forwarded query that no upstream answered (SERVFAIL to the client).
    pub fn upstream_failed(&self) {
        W::bump(&self.upstream_failures, 1);
    }

    /// Counts an answer that left records of its set out, and why.
    pub fn cut(&self, cut: Cut) {
        let slot = match cut {
            Cut::None => return,
            Cut::Cap => 0,
            Cut::Size => 1,
        };
        W::bump(&self.cuts[slot], 1);
    }

    /// Counts an answer locality shaped.
    pub fn near(&self, near: Near) {
        let slot = match near {
            Near::Unshaped => return,
            Near::Local => 0,
            Near::Fallback => 1,
        };
        W::bump(&self.nears[slot], 1);
    }

    /// Counts one thing a client made happen.
    pub fn event(&self, event: ClientEvent) {
        if let Some(counter) = self.events.get(event as usize) {
            W::bump(counter, 1);
        }
    }
}

/// The counters of one thread, which alone writes them (a UDP socket's thread); the scrape
/// holds the other reference and only reads. Neither `Clone` nor `Sync`: it cannot reach a
/// second writer.
#[derive(Debug)]
pub struct ThreadStats {
    stats: Arc<QueryStats<Exclusive>>,
    /// Makes the handle `!Sync` (it stays `Send`: the thread that owns it may be new).
    not_sync: PhantomData<Cell<()>>,
}

impl ThreadStats {
    /// The handle of `stats`, whose only other reference must be the scrape's.
    pub(super) fn new(stats: Arc<QueryStats<Exclusive>>) -> Self {
        Self {
            stats,
            not_sync: PhantomData,
        }
    }
}

impl Deref for ThreadStats {
    type Target = QueryStats<Exclusive>;

    fn deref(&self) -> &Self::Target {
        &self.stats
    }
}
