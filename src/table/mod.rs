//! The live record table: a writer-side [`Registry`] that applies etcd events, and immutable
//! [`Snapshot`]s that the query path reads without locks. State only: no I/O here, and the
//! mapping from registrations to records lives in [`crate::records`].
//!
//! Every change recomputes only the DNS names the changed key touches. The published map is
//! split into [`SHARDS`] flat hash tables in [`GROUPS`] groups, shared between snapshots: a
//! change copies only the shards it touches and the groups that hold them, publishing shares
//! the rest, and a query never waits on a writer: it loads the current snapshot pointer and
//! makes one probe. Each name is one allocation ([`Node`]) holding its wire name and answers.

mod contributors;
pub mod journal;
mod names;
mod registry;
pub mod saved;
mod serials;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use hickory_proto::rr::Record;

pub use names::{FastHash, Names, Node, GROUPS, SHARDS};
pub use registry::{Applied, Registry};

use crate::service::Invalid;
use crate::sources::Live;
use crate::wire::{zone_offset, RRsetRef};
use crate::zone::{Apex, ZoneConfig};

/// Registry keys skipped as invalid, with the reason, sorted by key.
pub type Rejected = BTreeMap<Box<str>, Invalid>;

/// One live zone as a snapshot serves it: its apex and its SOA serial.
#[derive(Debug, Clone)]
pub struct ZoneView {
    /// What every snapshot of this zone shares: its name, SOA fields and NS set.
    pub apex: Arc<Apex>,
    /// The etcd revision of the last change applied to this zone (or of the last full read).
    pub revision: i64,
    /// The SOA serial: the revision, shifted when etcd's revision went backwards so that the
    /// serial never does (RFC 1982).
    pub serial: u32,
    /// The apex SOA with the current serial, as wire bytes after the owner name (for answers
    /// and authority sections).
    pub soa_tail: Box<[u8]>,
    /// The zone's recent changes, for IXFR (shared with the writer, which appends to it).
    pub history: journal::SharedHistory,
}

impl ZoneView {
    fn new(apex: Arc<Apex>, revision: i64, serial: u32, history: journal::SharedHistory) -> Self {
        Self {
            soa_tail: apex.soa_tail(serial),
            apex,
            revision,
            serial,
            history,
        }
    }

    /// The apex SOA at `serial`, as wire bytes after the owner name.
    pub fn soa_tail_at(&self, serial: u32) -> Box<[u8]> {
        self.apex.soa_tail(serial)
    }

    /// The zone's lowercase wire name.
    pub fn name(&self) -> &[u8] {
        &self.apex.zone_name
    }

    /// The apex SOA record with the current serial.
    pub fn soa(&self) -> Record {
        self.apex.soa(self.serial)
    }

    /// The apex NS records.
    pub fn ns(&self) -> &[Record] {
        &self.apex.ns
    }

    /// The apex NS set, encoded.
    pub fn ns_rrset(&self) -> RRsetRef<'_> {
        self.apex.ns_rrset()
    }
}

/// One immutable view of the table, as the query path sees it.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Nodes by lowercase wire name (of every zone, and the reverse names).
    pub names: Names,
    /// The live zones, in [`Live::zones`] order (they never nest).
    pub zones: Box<[ZoneView]>,
    /// The etcd revision this view reflects.
    pub revision: i64,
    /// False until the first full read of the registry completed.
    pub ready: bool,
    /// True while etcd has not confirmed this view for longer than `--max-stale`: names under
    /// the zones then answer SERVFAIL (a copy of the last view marked so; see
    /// [`Table::mark_stale`]).
    pub stale: bool,
    /// Live instances (valid keys).
    pub instances: usize,
    /// Keys skipped as invalid, with the reason.
    pub rejected: Arc<Rejected>,
    /// When this view was published.
    pub published: Instant,
}

impl Snapshot {
    /// The empty, not-ready view a server starts with.
    pub fn empty(live: &Live) -> Self {
        let zones = live
            .zones
            .iter()
            .map(|config| ZoneView::new(Arc::new(Apex::new(config)), 0, 0, Arc::default()))
            .collect();
        Self::new(zones, Names::default(), 0, 0, Arc::default(), false)
    }

    fn new(
        zones: Box<[ZoneView]>,
        names: Names,
        revision: i64,
        instances: usize,
        rejected: Arc<Rejected>,
        ready: bool,
    ) -> Self {
        Self {
            names,
            zones,
            revision,
            ready,
            stale: false,
            instances,
            rejected,
            published: Instant::now(),
        }
    }

    /// The zone `name` (lowercase wire form) lies in, with the offset at which the zone's
    /// name starts in it. A suffix match on a short list: one comparison for one zone.
    #[inline]
    pub fn zone_of(&self, name: &[u8]) -> Option<(usize, &ZoneView)> {
        match &*self.zones {
            // The common case, kept as cheap as a single zone was.
            [one] => zone_offset(name, one.name()).map(|at| (at, one)),
            all => all
                .iter()
                .find_map(|zone| zone_offset(name, zone.name()).map(|at| (at, zone))),
        }
    }

    /// The zone whose name starts at `at` in `name`, as [`Snapshot::zone_of`] found it.
    #[inline]
    pub fn zone_at(&self, name: &[u8], at: usize) -> Option<&ZoneView> {
        match &*self.zones {
            [one] => Some(one),
            all => {
                let suffix = name.get(at..)?;
                all.iter().find(|zone| zone.name() == suffix)
            }
        }
    }
}

/// The shared pointer to the current snapshot: writers swap it, readers load it.
pub struct Table {
    /// `ArcSwap` rather than a lock: a load is a few atomic operations and never blocks, even
    /// while the watcher publishes.
    current: ArcSwap<Snapshot>,
    /// When the table was made: the origin of `confirmed`.
    created: Instant,
    /// Nanoseconds after `created` at which a quorum of etcd last confirmed the table (the
    /// sending time of a linearizable read whose revision the table had reached); [`NEVER`]
    /// before the first read. Written by the
    /// watcher alone, read by `/metrics` and `/ready`: never on the query path.
    confirmed: AtomicU64,
    /// Why the watcher stopped for good (it panicked, or met a failure retrying cannot fix):
    /// nothing will change the table again, so `/ready` fails with this reason.
    failed: OnceLock<Box<str>>,
}

/// `confirmed` before etcd ever confirmed the table.
const NEVER: u64 = u64::MAX;

impl Table {
    /// A table of the one zone `config` (fed by its native registry) holding the empty,
    /// not-ready snapshot.
    pub fn new(config: &ZoneConfig) -> Self {
        Self::for_live(&Live::native(config.clone()))
    }

    /// A table of `live`'s zones holding the empty, not-ready snapshot.
    pub fn for_live(live: &Live) -> Self {
        Self {
            current: ArcSwap::from_pointee(Snapshot::empty(live)),
            created: Instant::now(),
            confirmed: AtomicU64::new(NEVER),
            failed: OnceLock::new(),
        }
    }

    /// Records that the watcher stopped for good, and why (the first reason stays).
    pub fn mark_failed(&self, why: impl Into<Box<str>>) {
        let _ = self.failed.set(why.into());
    }

    /// Why the watcher stopped for good, if it did: the table is frozen.
    pub fn failure(&self) -> Option<&str> {
        self.failed.get().map(|why| &**why)
    }

    /// Records that a quorum of etcd confirmed the table was current at `at`: a linearizable
    /// read sent at `at` answered a revision the table had reached (a view marked stale is
    /// published again unmarked). An older proof than the last one changes nothing. Called by
    /// the watcher, the only writer of new views.
    pub fn confirm_at(&self, at: Instant) {
        let at = at.saturating_duration_since(self.created).as_nanos() as u64;
        let last = self.confirmed.load(Ordering::Relaxed);
        if last == NEVER || at > last {
            self.confirmed.store(at, Ordering::Relaxed);
        }
        let current = self.current.load_full();
        if current.stale {
            let mut fresh = (*current).clone();
            fresh.stale = false;
            self.current.compare_and_swap(&current, Arc::new(fresh));
        }
    }

    /// Marks the current view stale when etcd has not confirmed it for longer than `max`
    /// (`--max-stale`). The swap only happens if no newer view was published meanwhile.
    pub fn mark_stale(&self, max: Duration) {
        let current = self.current.load_full();
        if !current.ready || current.stale || self.age().is_none_or(|age| age <= max) {
            return;
        }
        let mut stale = (*current).clone();
        stale.stale = true;
        self.current.compare_and_swap(&current, Arc::new(stale));
    }

    /// How long ago a quorum of etcd last confirmed the table (see [`Table::confirm_at`]): an
    /// upper bound on how far behind etcd its answers may be; `None` before the first read.
    pub fn age(&self) -> Option<Duration> {
        let confirmed = self.confirmed.load(Ordering::Relaxed);
        (confirmed != NEVER).then(|| {
            self.created
                .elapsed()
                .saturating_sub(Duration::from_nanos(confirmed))
        })
    }

    /// The current snapshot.
    pub fn load(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.current.load()
    }

    /// The current snapshot as an owned pointer (for long-lived readers).
    pub fn load_full(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Replaces the current snapshot at once.
    pub fn store(&self, snapshot: Snapshot) {
        self.current.store(Arc::new(snapshot));
    }
}

#[cfg(test)]
mod tests;
