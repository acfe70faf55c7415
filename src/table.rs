//! The live record table: a writer-side [`Registry`] that applies etcd events, and immutable
//! [`Snapshot`]s that the query path reads without locks. No I/O here.
//!
//! Every change recomputes only the DNS names the changed key touches, in a persistent hash map
//! (`imbl`) whose clone is O(1), so publishing a new snapshot costs the same at 100 or 100,000
//! instances, and a query never waits on a writer: it loads the current snapshot pointer.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{LowerName, Name, RData, Record};
use tracing::{debug, warn};

use crate::key::{parse_key, ServiceKey};
use crate::service::{parse_value, Registration, Target};
use crate::wire::{key_name, name_key, rr_tail, NameKey, RRset};

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

/// Everything served at one name, as records: the builder's output, encoded into a [`Node`].
/// Each list is one RRset, sorted so that rotation at query time is the only source of order
/// changes.
#[derive(Debug, Default, Clone, PartialEq)]
struct NameEntry {
    a: Vec<Record>,
    aaaa: Vec<Record>,
    /// Only when the name holds nothing else (RFC 1034 §3.6.2).
    cname: Option<Record>,
    srv: Vec<Record>,
    /// The SRV targets' addresses, for the additional section.
    srv_additionals: Vec<Record>,
    txt: Vec<Record>,
    /// At a reverse name: every instance registered with that address.
    ptr: Vec<Record>,
    /// Static records from the zone file other than A/AAAA (which merge into `a`/`aaaa`).
    other: Vec<Record>,
}

impl NameEntry {
    /// The RRsets in the order ANY picks from: A, AAAA, SRV, TXT, PTR, CNAME, then the zone
    /// file's other types.
    fn into_rrsets(self) -> Box<[RRset]> {
        let mut sets = Vec::new();
        for (records, extra) in [
            (self.a, Vec::new()),
            (self.aaaa, Vec::new()),
            (self.srv, self.srv_additionals),
            (self.txt, Vec::new()),
            (self.ptr, Vec::new()),
            (self.cname.into_iter().collect(), Vec::new()),
        ] {
            if !records.is_empty() {
                sets.push(RRset::encode(&records, &extra));
            }
        }
        let mut other = self.other;
        other.sort_by_key(|r| u16::from(r.record_type()));
        for chunk in other.chunk_by(|a, b| a.record_type() == b.record_type()) {
            sets.push(RRset::encode(chunk, &[]));
        }
        sets.into_boxed_slice()
    }
}

/// The hasher of the live table: foldhash is several times faster than SipHash on short keys
/// and still seeded per process, so query names cannot be chosen to collide.
pub type FastHash = foldhash::fast::RandomState;
/// The live table's map: persistent (O(1) clone), keyed by lowercase wire name.
pub type Names =
    imbl::GenericHashMap<NameKey, Arc<Node>, FastHash, imbl::shared_ptr::DefaultSharedPtr>;

/// One name in the live table: its pre-encoded RRsets (none for an empty non-terminal), and
/// the writer's bookkeeping of who contributes to it.
#[derive(Debug, Clone, Default)]
pub struct Node {
    /// Ids of the instances with records (or implied empty non-terminals) here, sorted, with
    /// what each contributes; readers ignore it. The zone file's static layer is [`STATIC_ID`].
    contributors: Box<[(u32, Roles)]>,
    /// The RRsets, in ANY order.
    pub rrsets: Box<[RRset]>,
}

impl Node {
    /// The RRset of type `rtype`.
    pub fn rrset(&self, rtype: u16) -> Option<&RRset> {
        self.rrsets.iter().find(|s| s.rtype == rtype)
    }
}

/// One immutable view of the table, as the query path sees it.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Nodes by lowercase wire name.
    pub names: Names,
    /// The zone's lowercase wire name.
    pub zone_key: NameKey,
    /// The etcd revision this view reflects.
    pub revision: i64,
    /// False until the first full read of the registry completed.
    pub ready: bool,
    /// Live instances (valid keys).
    pub instances: usize,
    /// Keys skipped as invalid, with the reason.
    pub rejected: Arc<BTreeMap<String, String>>,
    /// The apex SOA with the current serial.
    pub soa: Record,
    /// The same SOA as wire bytes after the owner name (for answers and authority sections).
    pub soa_tail: Box<[u8]>,
    /// The apex NS set.
    pub ns: Vec<Record>,
    /// The apex NS set, encoded.
    pub ns_rrset: RRset,
    /// When this view was published.
    pub published: Instant,
}

impl Snapshot {
    /// The empty, not-ready view a server starts with.
    pub fn empty(config: &ZoneConfig) -> Self {
        Self::new(config, Names::default(), 0, 0, Arc::default(), false)
    }

    fn new(
        config: &ZoneConfig,
        names: Names,
        revision: i64,
        instances: usize,
        rejected: Arc<BTreeMap<String, String>>,
        ready: bool,
    ) -> Self {
        let soa = config.soa(revision);
        let ns = config.ns();
        Self {
            names,
            zone_key: name_key(&config.zone),
            revision,
            ready,
            instances,
            rejected,
            soa_tail: rr_tail(&soa).into_boxed_slice(),
            soa,
            ns_rrset: RRset::encode(&ns, &[]),
            ns,
            published: Instant::now(),
        }
    }

    /// The records at `key`, decoded (for zone transfers: slow, never on the query path).
    pub fn records_at(&self, key: &[u8]) -> Vec<Record> {
        let (Some(node), Some(name)) = (self.names.get(key), key_name(key)) else {
            return Vec::new();
        };
        node.rrsets
            .iter()
            .flat_map(|set| decode_rrs(&name, set.rtype, &set.rrs, set.count))
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

/// What a registered instance contributes at one of its names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Roles {
    /// The name that carries this instance alone (addresses, CNAME, TXT).
    owner: bool,
    /// `<service>.Z`: addresses, SRV, TXT of every instance.
    service: bool,
    /// `_<service>._tcp/_udp.Z`: SRV only.
    srv: bool,
    /// The reverse name of the instance's address: PTR to its owner name.
    ptr: bool,
}

/// One valid registration.
#[derive(Debug, Clone)]
struct Instance {
    key: ServiceKey,
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
    /// Instance ids by etcd key.
    ids: HashMap<Box<str>, u32, FastHash>,
    /// Instances by id (a slab: freed ids are reused), so nodes name contributors in 4 bytes.
    slab: Vec<Option<Instance>>,
    free: Vec<u32>,
    names: Names,
    rejected: BTreeMap<String, String>,
    /// `Arc` copy of `rejected`, rebuilt only when it changed, so publishing stays O(1).
    rejected_published: Arc<BTreeMap<String, String>>,
    /// Names whose entries are out of date: rebuilt once each at the next snapshot, so a batch
    /// of events (or the initial read) costs O(changes), not O(changes × instances per name).
    dirty: HashSet<NameKey>,
    revision: i64,
}

impl Registry {
    /// A registry for `config` holding only the zone file's static records, if any.
    pub fn new(config: Arc<ZoneConfig>) -> Self {
        let mut registry = Self {
            config,
            ids: HashMap::default(),
            slab: Vec::new(),
            free: Vec::new(),
            names: Names::default(),
            rejected: BTreeMap::new(),
            rejected_published: Arc::default(),
            dirty: HashSet::new(),
            revision: 0,
        };
        let statics = registry.config.statics.clone();
        for name in statics.iter().flat_map(|s| s.names.keys()) {
            let owner: Name = name.into();
            for touched in with_ancestors(owner, &registry.config.zone) {
                registry.add_contributor(name_key(&touched), STATIC_ID, Roles::default());
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
            Ok((service_key, registration)) => {
                self.rejected_remove(&key_text);
                self.insert_instance(key_text, service_key, registration);
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

    /// A new immutable view of the current state: rebuilds the names changed since the last
    /// one, then shares the persistent name map (O(1)).
    pub fn snapshot(&mut self) -> Snapshot {
        for name in std::mem::take(&mut self.dirty) {
            self.recompute(&name);
        }
        Snapshot::new(
            &self.config,
            self.names.clone(),
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
            .ids
            .iter()
            .filter_map(|(key, id)| {
                let inst = self.slab.get(*id as usize)?.as_ref()?;
                Some((key.to_string(), target_text(&inst.registration.target)))
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

    fn add_contributor(&mut self, name: NameKey, id: u32, roles: Roles) {
        let mut node = self
            .names
            .get(&name)
            .map(|n| (**n).clone())
            .unwrap_or_default();
        let mut ids = node.contributors.into_vec();
        match ids.binary_search_by_key(&id, |(c, _)| *c) {
            Ok(at) => ids[at].1 = roles,
            Err(at) => ids.insert(at, (id, roles)),
        }
        node.contributors = ids.into_boxed_slice();
        self.names.insert(name.clone(), Arc::new(node));
        self.dirty.insert(name);
    }

    fn remove_contributor(&mut self, name: NameKey, id: u32) {
        let Some(old) = self.names.get(&name) else {
            return;
        };
        let ids: Vec<(u32, Roles)> = old
            .contributors
            .iter()
            .copied()
            .filter(|(c, _)| *c != id)
            .collect();
        if ids.is_empty() {
            self.names.remove(&name);
            self.dirty.remove(&name);
        } else {
            let node = Node {
                contributors: ids.into_boxed_slice(),
                rrsets: old.rrsets.clone(),
            };
            self.names.insert(name.clone(), Arc::new(node));
            self.dirty.insert(name);
        }
    }

    fn insert_instance(&mut self, etcd_key: String, key: ServiceKey, registration: Registration) {
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                self.slab.push(None);
                (self.slab.len() - 1) as u32
            }
        };
        for (name, roles) in instance_names(&key, &registration, &self.config.zone) {
            self.add_contributor(name, id, roles);
        }
        debug!(key = %etcd_key, "registered");
        self.ids.insert(etcd_key.into(), id);
        self.slab[id as usize] = Some(Instance { key, registration });
    }

    fn remove_instance(&mut self, etcd_key: &str) {
        let Some(id) = self.ids.remove(etcd_key) else {
            return;
        };
        let Some(old) = self.slab.get_mut(id as usize).and_then(Option::take) else {
            return;
        };
        self.free.push(id);
        for (name, _) in instance_names(&old.key, &old.registration, &self.config.zone) {
            self.remove_contributor(name, id);
        }
    }

    /// Rebuilds the RRsets of one name from what contributes to it.
    fn recompute(&mut self, name: &NameKey) {
        let Some(node) = self.names.get(name) else {
            return;
        };
        let Some(owner) = key_name(name) else {
            return;
        };
        let mut builder = EntryBuilder::default();
        for &(id, roles) in node.contributors.iter() {
            if id == STATIC_ID {
                let statics = self.config.statics.as_ref();
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
            builder.add(&self.config.zone, inst, roles, self.config.ttl);
        }
        let rrsets = builder.finish(&owner).into_rrsets();
        if rrsets != node.rrsets {
            let node = Node {
                contributors: node.contributors.clone(),
                rrsets,
            };
            self.names.insert(name.clone(), Arc::new(node));
        }
    }
}

/// The contributor id of a zone file's static records (never an instance id).
const STATIC_ID: u32 = u32::MAX;

/// Accumulates one name's records from its contributing instances.
#[derive(Default)]
struct EntryBuilder {
    ptr: BTreeMap<Name, u32>,
    other: Vec<Record>,
    v4: BTreeMap<std::net::Ipv4Addr, u32>,
    v6: BTreeMap<std::net::Ipv6Addr, u32>,
    hosts: BTreeMap<Name, u32>,
    srv: BTreeMap<(u16, u16, u16, Name), u32>,
    additionals: BTreeMap<(Name, IpAddr), u32>,
    txt: BTreeMap<String, u32>,
}

/// Keeps the smallest TTL seen for a value (RFC 2181 §5.2: one TTL per RRset; the smallest is
/// the safe one for a discovery service).
fn keep_min<K: Ord>(map: &mut BTreeMap<K, u32>, key: K, ttl: u32) {
    map.entry(key)
        .and_modify(|t| *t = (*t).min(ttl))
        .or_insert(ttl);
}

impl EntryBuilder {
    fn add_static(&mut self, record: &Record) {
        match &record.data {
            RData::A(a) => keep_min(&mut self.v4, a.0, record.ttl),
            RData::AAAA(a) => keep_min(&mut self.v6, a.0, record.ttl),
            _ => self.other.push(record.clone()),
        }
    }

    fn add(&mut self, zone: &Name, inst: &Instance, roles: Roles, default_ttl: u32) {
        let reg = &inst.registration;
        let ttl = reg.ttl.unwrap_or(default_ttl);
        if roles.ptr {
            keep_min(&mut self.ptr, inst.key.owner_name(zone), ttl);
        }
        if roles.owner || roles.service {
            match &reg.target {
                Target::Addr(IpAddr::V4(ip)) => keep_min(&mut self.v4, *ip, ttl),
                Target::Addr(IpAddr::V6(ip)) => keep_min(&mut self.v6, *ip, ttl),
                Target::Host(host) if roles.owner => {
                    keep_min(&mut self.hosts, (**host).clone(), ttl)
                }
                Target::Host(_) => {}
            }
            for txt in &reg.txt {
                keep_min(&mut self.txt, txt.clone(), ttl);
            }
        }
        if let (true, Some(port)) = (roles.service || roles.srv, reg.port) {
            let target = match &reg.target {
                Target::Host(host) => (**host).clone(),
                Target::Addr(ip) => {
                    let target = inst.key.owner_name(zone);
                    keep_min(&mut self.additionals, (target.clone(), *ip), ttl);
                    target
                }
            };
            keep_min(&mut self.srv, (reg.priority, reg.weight, port, target), ttl);
        }
    }

    fn finish(self, owner: &Name) -> NameEntry {
        let rrset = |items: Vec<(RData, u32)>| -> Vec<Record> {
            let ttl = items.iter().map(|(_, t)| *t).min().unwrap_or_default();
            items
                .into_iter()
                .map(|(data, _)| Record::from_rdata(owner.clone(), ttl, data))
                .collect()
        };
        let a = rrset(
            self.v4
                .into_iter()
                .map(|(ip, t)| (RData::A(A(ip)), t))
                .collect(),
        );
        let aaaa = rrset(
            self.v6
                .into_iter()
                .map(|(ip, t)| (RData::AAAA(AAAA(ip)), t))
                .collect(),
        );
        let srv = rrset(
            self.srv
                .into_iter()
                .map(|((p, w, port, target), t)| (RData::SRV(SRV::new(p, w, port, target)), t))
                .collect(),
        );
        let txt = rrset(
            self.txt
                .into_iter()
                .map(|(s, t)| (RData::TXT(TXT::new(vec![s])), t))
                .collect(),
        );
        let srv_additionals = self
            .additionals
            .into_iter()
            .map(|((name, ip), ttl)| {
                let data = match ip {
                    IpAddr::V4(ip) => RData::A(A(ip)),
                    IpAddr::V6(ip) => RData::AAAA(AAAA(ip)),
                };
                Record::from_rdata(name, ttl, data)
            })
            .collect();
        let ptr = rrset(
            self.ptr
                .into_iter()
                .map(|(target, t)| (RData::PTR(PTR(target)), t))
                .collect(),
        );
        let holds_other = !(a.is_empty()
            && aaaa.is_empty()
            && srv.is_empty()
            && txt.is_empty()
            && self.other.is_empty());
        let cname = match (holds_other, self.hosts.into_iter().next()) {
            (false, Some((host, ttl))) => Some(Record::from_rdata(
                owner.clone(),
                ttl,
                RData::CNAME(CNAME(host)),
            )),
            _ => None,
        };
        NameEntry {
            a,
            aaaa,
            cname,
            srv,
            srv_additionals,
            txt,
            ptr,
            other: self.other,
        }
    }
}

/// Every name an instance touches, with its roles there, plus the empty non-terminals between
/// those names and the zone. SRV names exist only for instances with a port, and the reverse
/// name only for address targets.
fn instance_names(key: &ServiceKey, reg: &Registration, zone: &Name) -> Vec<(NameKey, Roles)> {
    let mut roles: BTreeMap<Name, Roles> = BTreeMap::new();
    roles.entry(key.owner_name(zone)).or_default().owner = true;
    roles.entry(key.service_name(zone)).or_default().service = true;
    if reg.port.is_some() {
        for proto in ["_tcp", "_udp"] {
            roles.entry(key.srv_name(proto, zone)).or_default().srv = true;
        }
    }
    let owners: Vec<Name> = roles.keys().cloned().collect();
    for name in owners {
        for ent in with_ancestors(name, zone).into_iter().skip(1) {
            roles.entry(ent).or_default();
        }
    }
    if let Target::Addr(ip) = reg.target {
        roles.entry(Name::from(ip)).or_default().ptr = true;
    }
    roles
        .into_iter()
        .map(|(name, roles)| (name_key(&name), roles))
        .collect()
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
