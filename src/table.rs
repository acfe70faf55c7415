//! The live record table: a writer-side [`Registry`] that applies etcd events, and immutable
//! [`Snapshot`]s that the query path reads without locks. No I/O here.
//!
//! Every change recomputes only the DNS names the changed key touches, in a persistent hash map
//! (`imbl`) whose clone is O(1), so publishing a new snapshot costs the same at 100 or 100,000
//! instances, and a query never waits on a writer: it loads the current snapshot pointer.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};
use tracing::{debug, warn};

use crate::key::{parse_key, ServiceKey};
use crate::service::{parse_value, Registration, Target};

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

/// Everything served at one DNS name under the zone. Each list is one RRset, sorted so that
/// rotation at query time is the only source of order changes.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct NameEntry {
    /// A records, one per distinct address.
    pub a: Vec<Record>,
    /// AAAA records, one per distinct address.
    pub aaaa: Vec<Record>,
    /// A CNAME, only when the name holds nothing else (RFC 1034 §3.6.2).
    pub cname: Option<Record>,
    /// SRV records, one per instance with a port.
    pub srv: Vec<Record>,
    /// The SRV targets' addresses, for the additional section.
    pub srv_additionals: Vec<Record>,
    /// TXT records, one per distinct string.
    pub txt: Vec<Record>,
    /// PTR records at a reverse name: every instance registered with that address.
    pub ptr: Vec<Record>,
    /// Static records from the zone file other than A/AAAA (which merge into `a`/`aaaa`).
    pub other: Vec<Record>,
}

impl NameEntry {
    /// True when the name exists but holds no records (an empty non-terminal).
    pub fn is_empty(&self) -> bool {
        self.a.is_empty()
            && self.aaaa.is_empty()
            && self.cname.is_none()
            && self.srv.is_empty()
            && self.txt.is_empty()
            && self.ptr.is_empty()
            && self.other.is_empty()
    }

    /// The RRset of `rtype` at this name (live and static records together).
    pub fn rrset(&self, rtype: RecordType) -> Vec<Record> {
        let live: &[Record] = match rtype {
            RecordType::A => &self.a,
            RecordType::AAAA => &self.aaaa,
            RecordType::SRV => &self.srv,
            RecordType::TXT => &self.txt,
            RecordType::PTR => &self.ptr,
            RecordType::CNAME => self.cname.as_slice(),
            _ => &[],
        };
        let mut set = live.to_vec();
        set.extend(
            self.other
                .iter()
                .filter(|r| r.record_type() == rtype)
                .cloned(),
        );
        set
    }

    /// Every record at this name (for zone transfers).
    pub fn all(&self) -> impl Iterator<Item = &Record> {
        self.a
            .iter()
            .chain(&self.aaaa)
            .chain(&self.cname)
            .chain(&self.srv)
            .chain(&self.txt)
            .chain(&self.ptr)
            .chain(&self.other)
    }
}

/// One immutable view of the table, as the query path sees it.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Records by name (lowercase).
    pub names: imbl::HashMap<LowerName, Arc<NameEntry>>,
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
    /// The apex NS set.
    pub ns: Vec<Record>,
    /// When this view was published.
    pub published: Instant,
}

impl Snapshot {
    /// The empty, not-ready view a server starts with.
    pub fn empty(config: &ZoneConfig) -> Self {
        Self {
            names: imbl::HashMap::new(),
            revision: 0,
            ready: false,
            instances: 0,
            rejected: Arc::default(),
            soa: config.soa(0),
            ns: config.ns(),
            published: Instant::now(),
        }
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
    /// Every name this instance touches, with what it contributes there (all false for the
    /// empty non-terminals between its names and the zone).
    names: Vec<(LowerName, Roles)>,
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
    instances: HashMap<String, Instance>,
    /// Which keys contribute to each name, so a change recomputes only its own names.
    contributors: HashMap<LowerName, BTreeSet<String>>,
    names: imbl::HashMap<LowerName, Arc<NameEntry>>,
    rejected: BTreeMap<String, String>,
    /// `Arc` copy of `rejected`, rebuilt only when it changed, so publishing stays O(1).
    rejected_published: Arc<BTreeMap<String, String>>,
    /// Names whose entries are out of date: rebuilt once each at the next snapshot, so a batch
    /// of events (or the initial read) costs O(changes), not O(changes × instances per name).
    dirty: HashSet<LowerName>,
    revision: i64,
}

impl Registry {
    /// A registry for `config` holding only the zone file's static records, if any.
    pub fn new(config: Arc<ZoneConfig>) -> Self {
        let mut registry = Self {
            config,
            instances: HashMap::new(),
            contributors: HashMap::new(),
            names: imbl::HashMap::new(),
            rejected: BTreeMap::new(),
            rejected_published: Arc::default(),
            dirty: HashSet::new(),
            revision: 0,
        };
        let statics = registry.config.statics.clone();
        for name in statics.iter().flat_map(|s| s.names.keys()) {
            let owner: Name = name.into();
            for touched in with_ancestors(owner, &registry.config.zone) {
                let touched = LowerName::new(&touched);
                registry
                    .contributors
                    .entry(touched.clone())
                    .or_default()
                    .insert(STATIC_KEY.to_string());
                registry.dirty.insert(touched);
            }
        }
        registry
    }

    /// Number of valid instances.
    pub fn len(&self) -> usize {
        self.instances.len()
    }

    /// True when no instance is registered.
    pub fn is_empty(&self) -> bool {
        self.instances.is_empty()
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
        Snapshot {
            names: self.names.clone(),
            revision: self.revision,
            ready: true,
            instances: self.instances.len(),
            rejected: self.rejected_published.clone(),
            soa: self.config.soa(self.revision),
            ns: self.config.ns(),
            published: Instant::now(),
        }
    }

    /// Every live instance as `(key, address or host)`, sorted by key: what `register list` and
    /// `/services` show.
    pub fn list(&self) -> Vec<(String, String)> {
        let mut all: Vec<_> = self
            .instances
            .iter()
            .map(|(key, inst)| (key.clone(), target_text(&inst.registration.target)))
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

    fn insert_instance(&mut self, key: String, service_key: ServiceKey, reg: Registration) {
        let names = instance_names(&service_key, &reg, &self.config.zone);
        for (name, _) in &names {
            self.contributors
                .entry(name.clone())
                .or_default()
                .insert(key.clone());
        }
        let touched: Vec<LowerName> = names.iter().map(|(n, _)| n.clone()).collect();
        debug!(key = %key, "registered");
        self.instances.insert(
            key,
            Instance {
                key: service_key,
                registration: reg,
                names,
            },
        );
        self.dirty.extend(touched);
    }

    fn remove_instance(&mut self, key: &str) {
        let Some(old) = self.instances.remove(key) else {
            return;
        };
        for (name, _) in &old.names {
            if let Some(set) = self.contributors.get_mut(name) {
                set.remove(key);
                if set.is_empty() {
                    self.contributors.remove(name);
                }
            }
        }
        self.dirty
            .extend(old.names.into_iter().map(|(name, _)| name));
    }

    /// Rebuilds the entry of one name from the instances that contribute to it.
    fn recompute(&mut self, name: &LowerName) {
        let Some(keys) = self.contributors.get(name) else {
            self.names.remove(name);
            return;
        };
        let owner: Name = name.into();
        let mut builder = EntryBuilder::default();
        if keys.contains(STATIC_KEY) {
            let statics = self.config.statics.as_ref();
            for record in statics
                .and_then(|s| s.names.get(name))
                .into_iter()
                .flatten()
            {
                builder.add_static(record);
            }
        }
        for key in keys {
            let Some(inst) = self.instances.get(key) else {
                continue;
            };
            let roles = inst
                .names
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, r)| *r)
                .unwrap_or_default();
            builder.add(&self.config.zone, inst, roles, self.config.ttl);
        }
        let entry = builder.finish(&owner);
        if self.names.get(name).map(|e| **e != entry).unwrap_or(true) {
            self.names.insert(name.clone(), Arc::new(entry));
        }
    }
}

/// The contributor mark of static records: never a valid registry key (keys are non-empty
/// after the prefix).
const STATIC_KEY: &str = "";

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
                Target::Host(host) if roles.owner => keep_min(&mut self.hosts, host.clone(), ttl),
                Target::Host(_) => {}
            }
            for txt in &reg.txt {
                keep_min(&mut self.txt, txt.clone(), ttl);
            }
        }
        if let (true, Some(port)) = (roles.service || roles.srv, reg.port) {
            let target = match &reg.target {
                Target::Host(host) => host.clone(),
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
fn instance_names(key: &ServiceKey, reg: &Registration, zone: &Name) -> Vec<(LowerName, Roles)> {
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
        .map(|(name, roles)| (LowerName::new(&name), roles))
        .collect()
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
