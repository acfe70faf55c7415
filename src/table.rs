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
    /// The zone's wire name.
    zone_key: NameKey,
    revision: i64,
}

impl Registry {
    /// A registry for `config` holding only the zone file's static records, if any.
    pub fn new(config: Arc<ZoneConfig>) -> Self {
        let mut registry = Self {
            ids: HashMap::default(),
            slab: Vec::new(),
            free: Vec::new(),
            names: Names::default(),
            rejected: BTreeMap::new(),
            rejected_published: Arc::default(),
            dirty: HashSet::new(),
            zone_key: name_key(&config.zone),
            revision: 0,
            config,
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
        for (name, roles) in instance_names(&key, &registration, &self.zone_key) {
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
        for (name, _) in instance_names(&old.key, &old.registration, &self.zone_key) {
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
fn instance_names(key: &ServiceKey, reg: &Registration, zone: &[u8]) -> Vec<(NameKey, Roles)> {
    // Built directly in wire form: this runs for every key of the initial read.
    let mut names: Vec<(Vec<u8>, Roles)> = Vec::with_capacity(6);
    fn add(names: &mut Vec<(Vec<u8>, Roles)>, name: Vec<u8>, set: fn(&mut Roles)) {
        match names.iter_mut().find(|(n, _)| *n == name) {
            Some((_, roles)) => set(roles),
            None => {
                let mut roles = Roles::default();
                set(&mut roles);
                names.push((name, roles));
            }
        }
    }
    let service = wire_name(key.service.split('.'), zone);
    let owner = match &key.instance {
        Some(instance) => wire_name(
            std::iter::once(instance.as_str()).chain(key.service.split('.')),
            zone,
        ),
        None => service.clone(),
    };
    add(&mut names, owner, |r| r.owner = true);
    add(&mut names, service, |r| r.service = true);
    if reg.port.is_some() {
        for proto in ["_tcp", "_udp"] {
            let mut labels = key.service.split('.');
            let first = format!("_{}", labels.next().unwrap_or_default());
            let srv = wire_name(
                std::iter::once(first.as_str()).chain(labels).chain([proto]),
                zone,
            );
            add(&mut names, srv, |r| r.srv = true);
        }
    }
    // The empty non-terminals between each name and the zone (RFC 8020).
    let owners: Vec<Vec<u8>> = names.iter().map(|(n, _)| n.clone()).collect();
    for name in owners {
        let mut at = 0;
        while name.len() - at > zone.len() {
            if at > 0 {
                add(&mut names, name[at..].to_vec(), |_| {});
            }
            at += 1 + name[at] as usize;
        }
    }
    if let Target::Addr(ip) = reg.target {
        add(&mut names, name_key(&Name::from(ip)).into_vec(), |r| {
            r.ptr = true
        });
    }
    names
        .into_iter()
        .map(|(name, roles)| (name.into_boxed_slice(), roles))
        .collect()
}

/// The wire name of `labels` (already lowercase and valid) followed by `zone`.
fn wire_name<'a>(labels: impl Iterator<Item = &'a str>, zone: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(zone.len() + 32);
    for label in labels {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
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
            let service_key =
                parse_key("services/", etcd_key.as_bytes(), &config().zone).expect("key");
            let registration = parse_value(value.as_bytes()).expect("value");
            let mut got: Vec<NameKey> = instance_names(&service_key, &registration, &zone)
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
            snap.names.keys().collect::<Vec<_>>()
        );
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
