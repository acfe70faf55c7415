//! The live record table: a writer-side [`Registry`] that applies etcd events, and immutable
//! [`Snapshot`]s that the query path reads without locks. No I/O here.
//!
//! Every change recomputes only the DNS names the changed key touches. The published map is
//! split into [`SHARDS`] flat hash tables in [`GROUPS`] groups, shared between snapshots: a
//! change copies only the shards it touches (a few hundred pointers each at 100,000 instances)
//! and the groups that hold them (32 pointers each), publishing shares the
//! rest, and a query never waits on a writer: it loads the current snapshot pointer and makes
//! one probe. Each name is one allocation ([`Node`]) holding its wire name and its answers.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use hickory_proto::rr::rdata::{NS, SOA};
use hickory_proto::rr::{LowerName, Name, RData, Record};
use tracing::{debug, warn};

use crate::key::{key_parts, parse_key, KeyParts};
use crate::service::{parse_value, Registration, Target};
use crate::wire::{key_name, name_key, reverse_key, rr_tail, NameKey, RRset, RRsetRef};
use hashbrown::HashTable;

/// Default TTL of live records (`--ttl`): a lost registration outlives itself in caches by at
/// most this long.
pub const DEFAULT_TTL: u32 = 5;
/// Default negative TTL (`--negative-ttl`): how long caches remember a miss.
pub const DEFAULT_NEGATIVE_TTL: u32 = 5;
/// SOA refresh: secondaries that follow us by AXFR poll this often (seconds).
const SOA_REFRESH: i32 = 60;
/// SOA retry after a failed refresh (seconds).
const SOA_RETRY: i32 = 10;
/// SOA expire: a secondary stops answering after this long without us (seconds).
const SOA_EXPIRE: i32 = 3600;

/// What the table needs to know about the zone it serves.
#[derive(Debug, Clone)]
pub struct ZoneConfig {
    /// The live zone, for example `services.local.`.
    pub zone: Name,
    /// The etcd key prefix, for example `services/`.
    pub prefix: String,
    /// TTL of records whose value names none.
    pub ttl: u32,
    /// TTL of negative answers, and the SOA MINIMUM.
    pub negative_ttl: u32,
    /// Records from a zone file for the live zone itself (`zones/<zone>.zone`), if any.
    pub statics: Option<Arc<StaticRecords>>,
}

/// What a zone file for the live zone contributes: SOA fields, NS set, static records.
#[derive(Debug, Clone, Default)]
pub struct StaticRecords {
    /// The file's SOA: its names and timers are used, the serial becomes the etcd revision.
    pub soa: Option<SOA>,
    /// The file's apex NS records.
    pub ns: Vec<Record>,
    /// Every other record, by owner name.
    pub names: HashMap<LowerName, Vec<Record>>,
}

impl ZoneConfig {
    /// The zone's default NS target, `ns.<zone>`, when no zone file names one.
    pub fn ns_name(&self) -> Name {
        Name::from_ascii("ns")
            .and_then(|ns| ns.append_domain(&self.zone))
            .unwrap_or_else(|_| self.zone.clone())
    }

    /// The SOA record at the apex; the serial is the etcd revision of the last applied change.
    pub fn soa(&self, revision: i64) -> Record {
        let rname = Name::from_ascii("hostmaster")
            .and_then(|n| n.append_domain(&self.zone))
            .unwrap_or_else(|_| self.zone.clone());
        // Serial arithmetic (RFC 1982) wraps at 2^32, so truncation keeps the order.
        let serial = revision as u32;
        let soa = match self.statics.as_ref().and_then(|s| s.soa.as_ref()) {
            Some(file) => SOA::new(
                file.mname.clone(),
                file.rname.clone(),
                serial,
                file.refresh,
                file.retry,
                file.expire,
                self.negative_ttl,
            ),
            None => SOA::new(
                self.ns_name(),
                rname,
                serial,
                SOA_REFRESH,
                SOA_RETRY,
                SOA_EXPIRE,
                self.negative_ttl,
            ),
        };
        Record::from_rdata(self.zone.clone(), self.negative_ttl, RData::SOA(soa))
    }

    /// The NS records at the apex: the zone file's, or `ns.<zone>`.
    pub fn ns(&self) -> Vec<Record> {
        match &self.statics {
            Some(statics) if !statics.ns.is_empty() => statics.ns.clone(),
            _ => vec![Record::from_rdata(
                self.zone.clone(),
                self.ttl,
                RData::NS(NS(self.ns_name())),
            )],
        }
    }
}

/// The hasher of the live table: foldhash is several times faster than SipHash on short keys
/// and still seeded per process, so query names cannot be chosen to collide.
pub type FastHash = foldhash::fast::RandomState;

/// Number of shards of the published map (a power of two). A change copies the shards it
/// touches, so more shards mean cheaper changes at large sizes.
pub const SHARDS: usize = 4096;
/// Shards are held in this many groups of `SHARDS / GROUPS`: publishing a snapshot copies one
/// pointer per group, not per shard, which keeps a change cheap at small sizes too (each shard
/// pointer lives in its own allocation, so copying 1,024 of them costs 2,048 cache misses).
pub const GROUPS: usize = 64;
const PER_GROUP: usize = SHARDS / GROUPS;

/// One shard: a flat table of nodes.
type Shard = HashTable<Node>;
/// A group of shards, shared between snapshots until one of its shards changes.
type Group = Arc<Vec<Arc<Shard>>>;

/// The shard of a name's hash, as (group, shard in group): bits 32.. (hashbrown uses the low
/// bits for the bucket and the top seven for its tag, so these are independent of both).
fn shard_of(hash: u64) -> (usize, usize) {
    let shard = (hash >> 32) as usize & (SHARDS - 1);
    (shard / PER_GROUP, shard % PER_GROUP)
}

/// The published names of one snapshot: groups of shards of nodes, each shared with the
/// snapshots that did not change it.
#[derive(Clone, Default)]
pub struct Names {
    hasher: FastHash,
    groups: Arc<[Group]>,
}

impl std::fmt::Debug for Names {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Names({} nodes)", self.len())
    }
}

impl Names {
    /// The node of `key` (lowercase wire name).
    pub fn get(&self, key: &[u8]) -> Option<&Node> {
        let hash = self.hasher.hash_one(key);
        let (group, shard) = shard_of(hash);
        self.groups
            .get(group)?
            .get(shard)?
            .find(hash, |node| node.key() == key)
    }

    /// True when `key` is a name of the table (with records or an empty non-terminal).
    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// Every node, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Node> {
        self.shards().flat_map(|shard| shard.iter())
    }

    /// Number of names.
    pub fn len(&self) -> usize {
        self.shards().map(|shard| shard.len()).sum()
    }

    /// True when the table holds no name.
    pub fn is_empty(&self) -> bool {
        self.shards().all(|shard| shard.is_empty())
    }

    fn shards(&self) -> impl Iterator<Item = &Shard> {
        self.groups
            .iter()
            .flat_map(|group| group.iter().map(|s| &**s))
    }
}

/// One name of the live table in a single shared allocation: its lowercase wire name, then
/// its pre-encoded RRsets in ANY order (none for an empty non-terminal). Each set is a
/// header — type, count, additional count (u16 each), answer bytes, additional bytes (u32
/// each), little-endian — followed by those bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Node(Arc<[u8]>);

/// Bytes of a set's header inside a [`Node`].
const SET_HEADER: usize = 14;

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = key_name(self.key())
            .map(|n| n.to_ascii())
            .unwrap_or_default();
        let types: Vec<u16> = self.rrsets().map(|s| s.rtype).collect();
        write!(f, "Node({name} {types:?})")
    }
}

impl Node {
    fn new(key: &[u8], sets: &[RRset]) -> Self {
        let size = 1
            + key.len()
            + sets
                .iter()
                .map(|s| SET_HEADER + s.rrs.len() + s.extra.len())
                .sum::<usize>();
        let mut bytes = Vec::with_capacity(size);
        bytes.push(key.len() as u8);
        bytes.extend_from_slice(key);
        for set in sets {
            bytes.extend_from_slice(&set.rtype.to_le_bytes());
            bytes.extend_from_slice(&set.count.to_le_bytes());
            bytes.extend_from_slice(&set.extra_count.to_le_bytes());
            bytes.extend_from_slice(&(set.rrs.len() as u32).to_le_bytes());
            bytes.extend_from_slice(&(set.extra.len() as u32).to_le_bytes());
            bytes.extend_from_slice(&set.rrs);
            bytes.extend_from_slice(&set.extra);
        }
        Self(Arc::from(bytes))
    }

    /// The lowercase wire name.
    pub fn key(&self) -> &[u8] {
        let len = self.0.first().map_or(0, |&l| l as usize);
        self.0.get(1..1 + len).unwrap_or_default()
    }

    /// The RRsets, in ANY order.
    pub fn rrsets(&self) -> impl Iterator<Item = RRsetRef<'_>> {
        let mut rest = self.0.get(1 + self.key().len()..).unwrap_or_default();
        std::iter::from_fn(move || {
            let header = rest.get(..SET_HEADER)?;
            let u16_at = |at: usize| u16::from_le_bytes([header[at], header[at + 1]]);
            let u32_at = |at: usize| {
                u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
                    as usize
            };
            let (rrs_len, extra_len) = (u32_at(6), u32_at(10));
            let rrs = rest.get(SET_HEADER..SET_HEADER + rrs_len)?;
            let extra = rest.get(SET_HEADER + rrs_len..SET_HEADER + rrs_len + extra_len)?;
            let set = RRsetRef {
                rtype: u16_at(0),
                count: u16_at(2),
                rrs,
                extra_count: u16_at(4),
                extra,
            };
            rest = &rest[SET_HEADER + rrs_len + extra_len..];
            Some(set)
        })
    }

    /// The RRset of type `rtype`.
    pub fn rrset(&self, rtype: u16) -> Option<RRsetRef<'_>> {
        self.rrsets().find(|s| s.rtype == rtype)
    }

    /// Where this node lives: the same for every clone of it.
    fn addr(&self) -> usize {
        Arc::as_ptr(&self.0).cast::<u8>() as usize
    }
}

/// One immutable view of the table, as the query path sees it.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Nodes by lowercase wire name.
    pub names: Names,
    /// What every snapshot of this zone shares: its name, SOA fields and NS set.
    pub apex: Arc<Apex>,
    /// The etcd revision this view reflects.
    pub revision: i64,
    /// False until the first full read of the registry completed.
    pub ready: bool,
    /// Live instances (valid keys).
    pub instances: usize,
    /// Keys skipped as invalid, with the reason.
    pub rejected: Arc<BTreeMap<String, String>>,
    /// The apex SOA with the current serial, as wire bytes after the owner name (for answers
    /// and authority sections).
    pub soa_tail: Box<[u8]>,
    /// When this view was published.
    pub published: Instant,
}

/// The zone apex, built once per zone rather than once per snapshot.
#[derive(Debug)]
pub struct Apex {
    /// The zone's lowercase wire name.
    pub zone_key: NameKey,
    /// The SOA with serial 0.
    soa: Record,
    /// The SOA after the owner name, serial 0.
    soa_tail: Box<[u8]>,
    /// The NS set.
    pub ns: Vec<Record>,
    /// The NS set, encoded.
    ns_rrset: RRset,
}

/// The SOA serial sits 20 bytes before the end of its RDATA (serial, refresh, retry, expire,
/// minimum: five 32-bit fields after the two names).
const SOA_SERIAL_FROM_END: usize = 20;

impl Apex {
    /// The apex of `config`'s zone.
    pub fn new(config: &ZoneConfig) -> Self {
        let soa = config.soa(0);
        let ns = config.ns();
        Self {
            zone_key: name_key(&config.zone),
            soa_tail: rr_tail(&soa).into_boxed_slice(),
            soa,
            ns_rrset: RRset::encode(&ns, &[]),
            ns,
        }
    }
}

impl Snapshot {
    /// The empty, not-ready view a server starts with.
    pub fn empty(config: &ZoneConfig) -> Self {
        Self::new(
            Arc::new(Apex::new(config)),
            Names::default(),
            0,
            0,
            Arc::default(),
            false,
        )
    }

    fn new(
        apex: Arc<Apex>,
        names: Names,
        revision: i64,
        instances: usize,
        rejected: Arc<BTreeMap<String, String>>,
        ready: bool,
    ) -> Self {
        let mut soa_tail = apex.soa_tail.clone();
        if let Some(at) = soa_tail.len().checked_sub(SOA_SERIAL_FROM_END) {
            // Serial arithmetic (RFC 1982) wraps at 2^32, so truncation keeps the order.
            soa_tail[at..at + 4].copy_from_slice(&(revision as u32).to_be_bytes());
        }
        Self {
            names,
            apex,
            revision,
            ready,
            instances,
            rejected,
            soa_tail,
            published: Instant::now(),
        }
    }

    /// The zone's lowercase wire name.
    pub fn zone_key(&self) -> &[u8] {
        &self.apex.zone_key
    }

    /// The apex SOA record with the current serial (the serial is the etcd revision).
    pub fn soa(&self) -> Record {
        let mut soa = self.apex.soa.clone();
        if let RData::SOA(data) = &mut soa.data {
            data.serial = self.revision as u32;
        }
        soa
    }

    /// The apex NS records.
    pub fn ns(&self) -> &[Record] {
        &self.apex.ns
    }

    /// The apex NS set, encoded.
    pub fn ns_rrset(&self) -> RRsetRef<'_> {
        self.apex.ns_rrset.as_ref()
    }

    /// The records at `key`, decoded (for zone transfers: slow, never on the query path).
    pub fn records_at(&self, key: &[u8]) -> Vec<Record> {
        let (Some(node), Some(name)) = (self.names.get(key), key_name(key)) else {
            return Vec::new();
        };
        node.rrsets()
            .flat_map(|set| decode_rrs(&name, set.rtype, set.rrs, set.count))
            .collect()
    }
}

/// The shared pointer to the current snapshot: writers swap it, readers load it.
pub struct Table {
    /// `ArcSwap` rather than a lock: a load is a few atomic operations and never blocks, even
    /// while the watcher publishes.
    current: ArcSwap<Snapshot>,
}

impl Table {
    /// A table holding the empty, not-ready snapshot.
    pub fn new(config: &ZoneConfig) -> Self {
        Self {
            current: ArcSwap::from_pointee(Snapshot::empty(config)),
        }
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

/// What a registered instance contributes at one of its names (a set of the flags below, one
/// byte: the writer keeps one per name and contributor).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Roles(u8);

impl Roles {
    /// The name that carries this instance alone (addresses, CNAME, TXT).
    const OWNER: Roles = Roles(1);
    /// `<service>.Z`: addresses, SRV, TXT of every instance.
    const SERVICE: Roles = Roles(2);
    /// `_<service>._tcp/_udp.Z`: SRV only.
    const SRV: Roles = Roles(4);
    /// The reverse name of the instance's address: PTR to its owner name.
    const PTR: Roles = Roles(8);

    fn has(self, role: Roles) -> bool {
        self.0 & role.0 != 0
    }
}

/// One valid registration, under its etcd key as written (its DNS names are derived from the
/// key when needed rather than stored).
#[derive(Debug, Clone)]
struct Instance {
    etcd_key: Box<str>,
    registration: Registration,
}

/// The outcome of applying one etcd event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The key now serves records.
    Registered,
    /// The key's records are gone (or it had none).
    Removed,
    /// The key or value is invalid: skipped, with the reason.
    Rejected(String),
}

/// The writer's side of the table: every instance by key, and the derived records by name.
pub struct Registry {
    config: Arc<ZoneConfig>,
    /// Instance ids, hashed by their etcd key (which the instance holds).
    ids: HashTable<u32>,
    /// Instances by id (a slab: freed ids are reused), so nodes name contributors in 4 bytes.
    slab: Vec<Option<Instance>>,
    free: Vec<u32>,
    /// Every name with its contributors: the writer's own index (the key lives in the node).
    names: HashTable<Entry>,
    /// The published shards by group, shared with the last snapshot until a change copies one.
    groups: Vec<Group>,
    hasher: FastHash,
    rejected: BTreeMap<String, String>,
    /// `Arc` copy of `rejected`, rebuilt only when it changed, so publishing stays O(1).
    rejected_published: Arc<BTreeMap<String, String>>,
    /// Names whose entries are out of date, by their current node (repeats are dropped at the
    /// next snapshot): rebuilt once each then, so a batch of events (or the initial read) costs
    /// O(changes), not O(changes × instances per name).
    dirty: Vec<Node>,
    /// The zone's wire name.
    zone_key: NameKey,
    apex: Arc<Apex>,
    revision: i64,
}

impl Registry {
    /// A registry for `config` holding only the zone file's static records, if any.
    pub fn new(config: Arc<ZoneConfig>) -> Self {
        let mut registry = Self {
            ids: HashTable::new(),
            slab: Vec::new(),
            free: Vec::new(),
            names: HashTable::new(),
            groups: (0..GROUPS)
                .map(|_| Arc::new((0..PER_GROUP).map(|_| Arc::default()).collect()))
                .collect(),
            hasher: FastHash::default(),
            rejected: BTreeMap::new(),
            rejected_published: Arc::default(),
            dirty: Vec::new(),
            zone_key: name_key(&config.zone),
            apex: Arc::new(Apex::new(&config)),
            revision: 0,
            config,
        };
        let statics = registry.config.statics.clone();
        for name in statics.iter().flat_map(|s| s.names.keys()) {
            let owner: Name = name.into();
            for touched in with_ancestors(owner, &registry.config.zone) {
                registry.add_contributor(&name_key(&touched), STATIC_ID, Roles::default());
            }
        }
        registry
    }

    /// Number of valid instances.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when no instance is registered.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Records that the registry now reflects etcd revision `revision`.
    pub fn set_revision(&mut self, revision: i64) {
        self.revision = self.revision.max(revision);
    }

    /// Applies a put of `value` at `key`. An invalid key or value is skipped with a warning
    /// naming the key; an invalid new value removes the key's old records.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> Applied {
        let key_text = String::from_utf8_lossy(key).into_owned();
        let parsed = parse_key(&self.config.prefix, key, &self.config.zone)
            .map_err(|e| format!("invalid key: {e}"))
            .and_then(|k| {
                parse_value(value)
                    .map(|r| (k, r))
                    .map_err(|e| format!("invalid value: {e}"))
            });
        self.remove_instance(&key_text);
        match parsed {
            Ok((_, registration)) => {
                self.rejected_remove(&key_text);
                self.insert_instance(key_text, registration);
                Applied::Registered
            }
            Err(reason) => {
                warn!(key = %key_text, error = %reason, "skipping invalid registration");
                if self.rejected.get(&key_text) != Some(&reason) {
                    self.rejected.insert(key_text, reason.clone());
                    self.rejected_published = Arc::new(self.rejected.clone());
                }
                Applied::Rejected(reason)
            }
        }
    }

    /// Applies a delete of `key`.
    pub fn delete(&mut self, key: &[u8]) -> Applied {
        let key_text = String::from_utf8_lossy(key).into_owned();
        self.rejected_remove(&key_text);
        self.remove_instance(&key_text);
        Applied::Removed
    }

    /// Rebuilds the names changed since the last call and puts them into the shards. Called
    /// by [`Registry::snapshot`]; the initial read also calls it after every page, so that
    /// this work overlaps with etcd serving the next one.
    pub fn flush(&mut self) {
        let mut dirty = std::mem::take(&mut self.dirty);
        // A node stays the same allocation until it is recomputed, so repeats share a pointer.
        dirty.sort_unstable_by_key(Node::addr);
        dirty.dedup_by_key(|node| node.addr());
        for node in dirty {
            self.recompute(node.key());
        }
    }

    /// A new immutable view of the current state: rebuilds the names changed since the last
    /// one, then shares the groups of shards (one pointer copy each).
    pub fn snapshot(&mut self) -> Snapshot {
        self.flush();
        let names = Names {
            hasher: self.hasher.clone(),
            groups: self.groups.iter().cloned().collect(),
        };
        Snapshot::new(
            self.apex.clone(),
            names,
            self.revision,
            self.ids.len(),
            self.rejected_published.clone(),
            true,
        )
    }

    /// Every live instance as `(key, address or host)`, sorted by key: what `register list` and
    /// `/services` show.
    pub fn list(&self) -> Vec<(String, String)> {
        let mut all: Vec<_> = self
            .slab
            .iter()
            .flatten()
            .map(|inst| {
                (
                    inst.etcd_key.to_string(),
                    target_text(&inst.registration.target),
                )
            })
            .collect();
        all.sort();
        all
    }

    /// Keys skipped as invalid, with the reason, sorted by key.
    pub fn rejected(&self) -> Vec<(String, String)> {
        self.rejected
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn rejected_remove(&mut self, key: &str) {
        if self.rejected.remove(key).is_some() {
            self.rejected_published = Arc::new(self.rejected.clone());
        }
    }

    fn add_contributor(&mut self, name: &[u8], id: u32, roles: Roles) {
        let hash = self.hasher.hash_one(name);
        let entry = match self.names.find_mut(hash, |e| e.node.key() == name) {
            Some(entry) => entry,
            None => {
                let entry = Entry {
                    node: Node::new(name, &[]),
                    contributors: Contributors::default(),
                };
                let hasher = &self.hasher;
                self.names
                    .insert_unique(hash, entry, |e| hasher.hash_one(e.node.key()))
                    .into_mut()
            }
        };
        entry.contributors.insert(id, roles);
        self.dirty.push(entry.node.clone());
    }

    fn remove_contributor(&mut self, name: &[u8], id: u32) {
        let hash = self.hasher.hash_one(name);
        if let Some(entry) = self.names.find_mut(hash, |e| e.node.key() == name) {
            entry.contributors.remove(id);
            self.dirty.push(entry.node.clone());
        }
    }

    fn insert_instance(&mut self, etcd_key: String, registration: Registration) {
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                self.slab.push(None);
                (self.slab.len() - 1) as u32
            }
        };
        let parts = key_parts(&self.config.prefix, &etcd_key);
        for (name, roles) in instance_names(parts, &registration, &self.zone_key) {
            self.add_contributor(&name, id, roles);
        }
        debug!(key = %etcd_key, "registered");
        let hash = self.hasher.hash_one(etcd_key.as_str());
        self.slab[id as usize] = Some(Instance {
            etcd_key: etcd_key.into(),
            registration,
        });
        let (slab, hasher) = (&self.slab, &self.hasher);
        self.ids
            .insert_unique(hash, id, |&id| hasher.hash_one(etcd_key_of(slab, id)));
    }

    fn remove_instance(&mut self, etcd_key: &str) {
        let hash = self.hasher.hash_one(etcd_key);
        let slab = &self.slab;
        let Ok(found) = self
            .ids
            .find_entry(hash, |&id| etcd_key_of(slab, id) == etcd_key)
        else {
            return;
        };
        let (id, _) = found.remove();
        let Some(old) = self.slab.get_mut(id as usize).and_then(Option::take) else {
            return;
        };
        self.free.push(id);
        let parts = key_parts(&self.config.prefix, &old.etcd_key);
        for (name, _) in instance_names(parts, &old.registration, &self.zone_key) {
            self.remove_contributor(&name, id);
        }
    }

    /// Rebuilds the RRsets of one name from what contributes to it, and publishes the node
    /// (or its removal, when nothing contributes any more) if it changed.
    fn recompute(&mut self, name: &[u8]) {
        let hash = self.hasher.hash_one(name);
        let Ok(found) = self.names.find_entry(hash, |e| e.node.key() == name) else {
            return;
        };
        if found.get().contributors.is_empty() {
            found.remove();
            self.publish(hash, name, None);
            return;
        }
        let entry = found.into_mut();
        let mut builder = EntryBuilder::default();
        for (id, roles) in entry.contributors.iter() {
            if id == STATIC_ID {
                let statics = self.config.statics.as_ref();
                let Some(owner) = key_name(name) else {
                    continue;
                };
                let lower = LowerName::new(&owner);
                for record in statics
                    .and_then(|s| s.names.get(&lower))
                    .into_iter()
                    .flatten()
                {
                    builder.add_static(record);
                }
                continue;
            }
            let Some(inst) = self.slab.get(id as usize).and_then(Option::as_ref) else {
                continue;
            };
            let (prefix, zone) = (&self.config.prefix, &self.zone_key);
            let owner = || owner_wire(key_parts(prefix, &inst.etcd_key), zone);
            builder.add(&owner, &inst.registration, roles, self.config.ttl);
        }
        let node = Node::new(name, &builder.finish());
        entry.node = node.clone();
        self.publish(hash, name, Some(node));
    }

    /// Puts `node` (or, with `None`, the absence of `name`) into the published shard, copying
    /// the shard if the last snapshot still shares it. An unchanged node is left alone.
    fn publish(&mut self, hash: u64, name: &[u8], node: Option<Node>) {
        let (group, shard) = shard_of(hash);
        let Some(group) = self.groups.get_mut(group) else {
            return;
        };
        let published = group
            .get(shard)
            .and_then(|s| s.find(hash, |n| n.key() == name));
        if published == node.as_ref() {
            return;
        }
        let Some(shard) = Arc::make_mut(group).get_mut(shard) else {
            return;
        };
        let shard = Arc::make_mut(shard);
        let hasher = &self.hasher;
        match (shard.find_entry(hash, |n| n.key() == name), node) {
            (Ok(mut found), Some(node)) => *found.get_mut() = node,
            (Ok(found), None) => {
                found.remove();
            }
            (Err(_), Some(node)) => {
                shard.insert_unique(hash, node, |n| hasher.hash_one(n.key()));
            }
            (Err(_), None) => {}
        }
    }
}

/// The writer's record of one name: its current node and who contributes to it (32 bytes).
struct Entry {
    node: Node,
    contributors: Contributors,
}

/// The contributors of one name, sorted by id: most names have exactly one, kept inline
/// (16 bytes).
#[derive(Debug, Default)]
enum Contributors {
    #[default]
    None,
    One(u32, Roles),
    // Boxed so that the common single-contributor case keeps the entry at 32 bytes.
    #[allow(clippy::box_collection)]
    Many(Box<Vec<(u32, Roles)>>),
}

impl Contributors {
    fn is_empty(&self) -> bool {
        matches!(self, Contributors::None)
    }

    fn insert(&mut self, id: u32, roles: Roles) {
        match self {
            Contributors::None => *self = Contributors::One(id, roles),
            Contributors::One(one, r) if *one == id => *r = roles,
            Contributors::One(one, r) => {
                let mut all = vec![(*one, *r), (id, roles)];
                all.sort_by_key(|(c, _)| *c);
                *self = Contributors::Many(Box::new(all));
            }
            // Ids mostly grow, so this is usually an append.
            Contributors::Many(all) => match all.binary_search_by_key(&id, |(c, _)| *c) {
                Ok(at) => all[at].1 = roles,
                Err(at) => all.insert(at, (id, roles)),
            },
        }
    }

    fn remove(&mut self, id: u32) {
        match self {
            Contributors::One(one, _) if *one == id => *self = Contributors::None,
            Contributors::Many(all) => {
                if let Ok(at) = all.binary_search_by_key(&id, |(c, _)| *c) {
                    all.remove(at);
                }
                match all.as_slice() {
                    [] => *self = Contributors::None,
                    &[(one, roles)] => *self = Contributors::One(one, roles),
                    _ => {}
                }
            }
            _ => {}
        }
    }

    fn iter(&self) -> impl Iterator<Item = (u32, Roles)> + '_ {
        let one = match self {
            Contributors::One(id, roles) => Some((*id, *roles)),
            _ => None,
        };
        let many = match self {
            Contributors::Many(all) => all.as_slice(),
            _ => &[],
        };
        one.into_iter().chain(many.iter().copied())
    }
}

/// The etcd key of instance `id` ("" for a free slot).
fn etcd_key_of(slab: &[Option<Instance>], id: u32) -> &str {
    slab.get(id as usize)
        .and_then(Option::as_ref)
        .map_or("", |inst| &inst.etcd_key)
}

/// The contributor id of a zone file's static records (never an instance id).
const STATIC_ID: u32 = u32::MAX;

/// Accumulates one name's records from its contributing instances. Names are kept in wire
/// form (lowercase, uncompressed) and RDATA is encoded directly: this runs for every name of
/// the initial read.
#[derive(Default)]
struct EntryBuilder {
    /// Owner names of the instances at a reverse name.
    ptr: BTreeMap<Vec<u8>, u32>,
    other: Vec<Record>,
    v4: BTreeMap<std::net::Ipv4Addr, u32>,
    v6: BTreeMap<std::net::Ipv6Addr, u32>,
    hosts: BTreeMap<Vec<u8>, u32>,
    srv: BTreeMap<(u16, u16, u16, Vec<u8>), u32>,
    additionals: BTreeMap<(Vec<u8>, IpAddr), u32>,
    txt: BTreeMap<String, u32>,
}

/// Keeps the smallest TTL seen for a value (RFC 2181 §5.2: one TTL per RRset; the smallest is
/// the safe one for a discovery service).
fn keep_min<K: Ord>(map: &mut BTreeMap<K, u32>, key: K, ttl: u32) {
    map.entry(key)
        .and_modify(|t| *t = (*t).min(ttl))
        .or_insert(ttl);
}

const TYPE_A: u16 = 1;
const TYPE_CNAME: u16 = 5;
const TYPE_PTR: u16 = 12;
const TYPE_TXT: u16 = 16;
const TYPE_AAAA: u16 = 28;
const TYPE_SRV: u16 = 33;

/// The RRset of `rtype` from `(RDATA, TTL)` pairs at the smallest of their TTLs, if any.
fn wire_set(rtype: u16, items: Vec<(Vec<u8>, u32)>) -> Option<RRset> {
    let ttl = items.iter().map(|(_, t)| *t).min()?;
    Some(RRset::from_rdata(
        rtype,
        ttl,
        items.iter().map(|(rdata, _)| rdata.as_slice()),
    ))
}

impl EntryBuilder {
    fn add_static(&mut self, record: &Record) {
        match &record.data {
            RData::A(a) => keep_min(&mut self.v4, a.0, record.ttl),
            RData::AAAA(a) => keep_min(&mut self.v6, a.0, record.ttl),
            _ => self.other.push(record.clone()),
        }
    }

    fn add(&mut self, owner: &dyn Fn() -> Vec<u8>, reg: &Registration, roles: Roles, ttl: u32) {
        let ttl = reg.ttl.unwrap_or(ttl);
        if roles.has(Roles::PTR) {
            keep_min(&mut self.ptr, owner(), ttl);
        }
        let (owner_role, service_role) = (roles.has(Roles::OWNER), roles.has(Roles::SERVICE));
        if owner_role || service_role {
            match &reg.target {
                Target::Addr(IpAddr::V4(ip)) => keep_min(&mut self.v4, *ip, ttl),
                Target::Addr(IpAddr::V6(ip)) => keep_min(&mut self.v6, *ip, ttl),
                Target::Host(host) if owner_role => {
                    keep_min(&mut self.hosts, name_key(host).into_vec(), ttl)
                }
                Target::Host(_) => {}
            }
            for txt in &reg.txt {
                keep_min(&mut self.txt, txt.clone(), ttl);
            }
        }
        if let (true, Some(port)) = (service_role || roles.has(Roles::SRV), reg.port) {
            let target = match &reg.target {
                Target::Host(host) => name_key(host).into_vec(),
                Target::Addr(ip) => {
                    let target = owner();
                    keep_min(&mut self.additionals, (target.clone(), *ip), ttl);
                    target
                }
            };
            keep_min(&mut self.srv, (reg.priority, reg.weight, port, target), ttl);
        }
    }

    /// The RRsets in the order ANY picks from: A, AAAA, SRV, TXT, PTR, CNAME, then the zone
    /// file's other types.
    fn finish(self) -> Vec<RRset> {
        let a = wire_set(
            TYPE_A,
            self.v4
                .into_iter()
                .map(|(ip, t)| (ip.octets().to_vec(), t))
                .collect(),
        );
        let aaaa = wire_set(
            TYPE_AAAA,
            self.v6
                .into_iter()
                .map(|(ip, t)| (ip.octets().to_vec(), t))
                .collect(),
        );
        let mut srv = wire_set(
            TYPE_SRV,
            self.srv
                .into_iter()
                .map(|((priority, weight, port, target), t)| {
                    let mut rdata = Vec::with_capacity(6 + target.len());
                    for field in [priority, weight, port] {
                        rdata.extend_from_slice(&field.to_be_bytes());
                    }
                    rdata.extend_from_slice(&target);
                    (rdata, t)
                })
                .collect(),
        );
        if let Some(srv) = &mut srv {
            for ((owner, ip), ttl) in self.additionals {
                match ip {
                    IpAddr::V4(ip) => srv.push_extra(&owner, TYPE_A, ttl, &ip.octets()),
                    IpAddr::V6(ip) => srv.push_extra(&owner, TYPE_AAAA, ttl, &ip.octets()),
                }
            }
        }
        let txt = wire_set(
            TYPE_TXT,
            self.txt
                .into_iter()
                .map(|(text, t)| {
                    let mut rdata = Vec::with_capacity(1 + text.len());
                    rdata.push(text.len().min(255) as u8);
                    rdata.extend_from_slice(&text.as_bytes()[..text.len().min(255)]);
                    (rdata, t)
                })
                .collect(),
        );
        let ptr = wire_set(TYPE_PTR, self.ptr.into_iter().collect());
        let holds_other = a.is_some()
            || aaaa.is_some()
            || srv.is_some()
            || txt.is_some()
            || !self.other.is_empty();
        let cname = match (holds_other, self.hosts.into_iter().next()) {
            (false, Some(host)) => wire_set(TYPE_CNAME, vec![host]),
            _ => None,
        };
        let mut sets: Vec<RRset> = [a, aaaa, srv, txt, ptr, cname]
            .into_iter()
            .flatten()
            .collect();
        let mut other = self.other;
        other.sort_by_key(|r| u16::from(r.record_type()));
        for chunk in other.chunk_by(|a, b| a.record_type() == b.record_type()) {
            sets.push(RRset::encode(chunk, &[]));
        }
        sets
    }
}

/// Every name an instance touches, with its roles there, plus the empty non-terminals between
/// those names and the zone. SRV names exist only for instances with a port, and the reverse
/// name only for address targets.
fn instance_names(key: KeyParts<'_>, reg: &Registration, zone: &[u8]) -> Vec<(NameKey, Roles)> {
    // Built directly in wire form: this runs for every key of the initial read.
    let mut names: Vec<(Vec<u8>, Roles)> = Vec::with_capacity(6);
    fn add(names: &mut Vec<(Vec<u8>, Roles)>, name: Vec<u8>, role: Roles) {
        match names.iter_mut().find(|(n, _)| *n == name) {
            Some((_, roles)) => roles.0 |= role.0,
            None => names.push((name, role)),
        }
    }
    let service = wire_name(key.service.split('.'), zone);
    add(&mut names, owner_wire(key, zone), Roles::OWNER);
    add(&mut names, service, Roles::SERVICE);
    if reg.port.is_some() {
        for proto in ["_tcp", "_udp"] {
            let mut labels = key.service.split('.');
            let first = format!("_{}", labels.next().unwrap_or_default());
            let srv = wire_name(
                std::iter::once(first.as_str()).chain(labels).chain([proto]),
                zone,
            );
            add(&mut names, srv, Roles::SRV);
        }
    }
    // The empty non-terminals between each name and the zone (RFC 8020).
    let owners: Vec<Vec<u8>> = names.iter().map(|(n, _)| n.clone()).collect();
    for name in owners {
        let mut at = 0;
        while name.len() - at > zone.len() {
            if at > 0 {
                add(&mut names, name[at..].to_vec(), Roles::default());
            }
            at += 1 + name[at] as usize;
        }
    }
    if let Target::Addr(ip) = reg.target {
        add(&mut names, reverse_key(ip).into_vec(), Roles::PTR);
    }
    names
        .into_iter()
        .map(|(name, roles)| (name.into_boxed_slice(), roles))
        .collect()
}

/// The name that carries an instance alone, `<instance>.<service>.Z` or `<service>.Z`, in
/// lowercase wire form.
fn owner_wire(key: KeyParts<'_>, zone: &[u8]) -> Vec<u8> {
    wire_name(key.instance.into_iter().chain(key.service.split('.')), zone)
}

/// The wire name of `labels` (already valid), lowercased, followed by `zone`.
fn wire_name<'a>(labels: impl Iterator<Item = &'a str>, zone: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(zone.len() + 32);
    for label in labels {
        out.push(label.len() as u8);
        out.extend(label.bytes().map(|b| b.to_ascii_lowercase()));
    }
    out.extend_from_slice(zone);
    out
}

/// Decodes pointer-owned records by placing them after a question for `name`.
fn decode_rrs(name: &Name, rtype: u16, rrs: &[u8], count: u16) -> Vec<Record> {
    let mut message = vec![0u8; 12];
    message[5] = 1; // QDCOUNT
    message[6..8].copy_from_slice(&count.to_be_bytes());
    message.extend_from_slice(&name_key(name));
    message.extend_from_slice(&rtype.to_be_bytes());
    message.extend_from_slice(&1u16.to_be_bytes());
    message.extend_from_slice(rrs);
    hickory_proto::op::Message::from_vec(&message)
        .map(|m| m.answers)
        .unwrap_or_default()
}

/// `name` followed by its ancestors strictly below `zone` (the empty non-terminals a name
/// implies, RFC 8020). A name outside the zone comes back alone.
fn with_ancestors(name: Name, zone: &Name) -> Vec<Name> {
    let mut out = vec![name.clone()];
    if zone.zone_of(&name) {
        let mut parent = name.base_name();
        while parent.num_labels() > zone.num_labels() {
            out.push(parent.clone());
            parent = parent.base_name();
        }
    }
    out
}

/// How `register list` and `/services` show a target.
pub fn target_text(target: &Target) -> String {
    match target {
        Target::Addr(ip) => ip.to_string(),
        Target::Host(host) => host.to_ascii(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::RecordType;

    fn config() -> Arc<ZoneConfig> {
        Arc::new(ZoneConfig {
            zone: Name::from_ascii("services.local.").expect("zone"),
            prefix: "services/".into(),
            ttl: 5,
            negative_ttl: 5,
            statics: None,
        })
    }

    fn key(text: &str) -> NameKey {
        name_key(&Name::from_ascii(text).expect("name"))
    }

    /// The records at `name` of type `rtype`, as text.
    fn records(snapshot: &Snapshot, name: &str, rtype: RecordType) -> Vec<String> {
        let mut out: Vec<String> = snapshot
            .records_at(&key(name))
            .iter()
            .filter(|r| r.record_type() == rtype)
            .map(|r| format!("{} {}", r.ttl, r.data))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn names_an_instance_touches() {
        let zone = key("services.local.");
        let cases: &[(&str, &str, &[&str])] = &[
            (
                "services/s-test",
                r#"{"IP":"10.0.0.1"}"#,
                &["s-test.services.local.", "1.0.0.10.in-addr.arpa."],
            ),
            (
                "services/web/n1",
                r#"{"IP":"10.0.0.2","port":80}"#,
                &[
                    "n1.web.services.local.",
                    "web.services.local.",
                    "_web._tcp.services.local.",
                    "_web._udp.services.local.",
                    "_tcp.services.local.",
                    "_udp.services.local.",
                    "2.0.0.10.in-addr.arpa.",
                ],
            ),
            (
                "services/api.v2/n1",
                r#"{"host":"db.example.com"}"#,
                &[
                    "n1.api.v2.services.local.",
                    "api.v2.services.local.",
                    "v2.services.local.",
                ],
            ),
        ];
        for (etcd_key, value, want) in cases {
            parse_key("services/", etcd_key.as_bytes(), &config().zone).expect("key");
            let registration = parse_value(value.as_bytes()).expect("value");
            let parts = key_parts("services/", etcd_key);
            let mut got: Vec<NameKey> = instance_names(parts, &registration, &zone)
                .into_iter()
                .map(|(n, _)| n)
                .collect();
            let mut want: Vec<NameKey> = want.iter().map(|n| key(n)).collect();
            got.sort();
            want.sort();
            assert_eq!(got, want, "{etcd_key}");
        }
    }

    #[test]
    fn registry_builds_rrsets_and_forgets_removed_keys() {
        let mut registry = Registry::new(config());
        registry.put(
            b"services/web/n1",
            br#"{"IP":"10.0.0.1","port":80,"ttl":30}"#,
        );
        registry.put(
            b"services/web/n2",
            br#"{"IP":"10.0.0.2","port":81,"txt":["v=1"]}"#,
        );
        registry.put(b"services/web/n3", br#"{"IP":"10.0.0.2"}"#);
        let snap = registry.snapshot();
        assert_eq!(snap.instances, 3);
        // One address once, one TTL per RRset (the smallest).
        assert_eq!(
            records(&snap, "web.services.local.", RecordType::A),
            vec!["5 10.0.0.1", "5 10.0.0.2"]
        );
        assert_eq!(
            records(&snap, "_web._tcp.services.local.", RecordType::SRV),
            vec![
                "5 10 10 80 n1.web.services.local.",
                "5 10 10 81 n2.web.services.local."
            ]
        );
        assert_eq!(
            records(&snap, "n1.web.services.local.", RecordType::A),
            vec!["30 10.0.0.1"]
        );
        assert_eq!(
            records(&snap, "web.services.local.", RecordType::TXT),
            vec!["5 v=1"]
        );
        assert_eq!(
            records(&snap, "2.0.0.10.in-addr.arpa.", RecordType::PTR),
            vec!["5 n2.web.services.local.", "5 n3.web.services.local."]
        );

        // An invalid new value removes the old records and is listed as rejected.
        let applied = registry.put(b"services/web/n1", b"{broken");
        assert!(matches!(applied, Applied::Rejected(_)));
        registry.delete(b"services/web/n2");
        let snap = registry.snapshot();
        assert!(snap.names.get(&key("n1.web.services.local.")).is_none());
        assert!(snap.names.get(&key("1.0.0.10.in-addr.arpa.")).is_none());
        assert!(
            snap.names.get(&key("_web._tcp.services.local.")).is_none(),
            "no port left"
        );
        assert_eq!(
            records(&snap, "web.services.local.", RecordType::A),
            vec!["5 10.0.0.2"]
        );
        assert_eq!(
            snap.rejected.keys().collect::<Vec<_>>(),
            vec!["services/web/n1"]
        );
        registry.delete(b"services/web/n3");
        let snap = registry.snapshot();
        assert_eq!(snap.instances, 0);
        assert!(
            snap.names.is_empty(),
            "nothing left behind: {:?}",
            snap.names.iter().collect::<Vec<_>>()
        );
    }

    #[test]
    fn the_soa_serial_is_the_revision() {
        let config = config();
        let mut registry = Registry::new(config.clone());
        registry.put(b"services/a", br#"{"IP":"10.0.0.1"}"#);
        for revision in [7, 1 << 33] {
            registry.set_revision(revision);
            let snap = registry.snapshot();
            let want = config.soa(revision);
            assert_eq!(snap.soa(), want);
            assert_eq!(&*snap.soa_tail, rr_tail(&want).as_slice(), "{revision}");
        }
    }

    #[test]
    fn host_targets_are_cnames_only_where_nothing_else_is() {
        let mut registry = Registry::new(config());
        registry.put(b"services/db", br#"{"host":"db.example.com","port":5432}"#);
        registry.put(b"services/cache/n1", br#"{"host":"cache.example.com"}"#);
        let snap = registry.snapshot();
        // SRV at the one-instance name: no CNAME beside it; the host is the SRV target.
        assert!(records(&snap, "db.services.local.", RecordType::CNAME).is_empty());
        assert_eq!(
            records(&snap, "db.services.local.", RecordType::SRV),
            vec!["5 10 10 5432 db.example.com."]
        );
        assert_eq!(
            records(&snap, "n1.cache.services.local.", RecordType::CNAME),
            vec!["5 cache.example.com."]
        );
    }
}
