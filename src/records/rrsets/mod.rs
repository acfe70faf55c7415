//! The RRsets of one name, built in wire form from what every contributor adds.

use std::collections::BTreeMap;
use std::net::IpAddr;

use hickory_proto::rr::{RData, Record, RecordType};

use super::Roles;
use crate::service::{Registration, Target, DEFAULT_WEIGHT};
use crate::wire::spread::{selection_weight, SpreadInput};
use crate::wire::{rr_tail, wire_name, RRset};
use local::srv_rdata;

/// Accumulates one name's records from its contributing instances. Names are kept in wire
/// form (lowercase, uncompressed) and RDATA is encoded directly: this runs for every name of
/// the initial read.
#[derive(Default)]
pub struct RecordsBuilder<'z> {
    /// The zones locality tells apart (`--locality`): a contributor's zone is its index here.
    localities: &'z [Box<str>],
    /// Owner names of the instances at a reverse name.
    ptr: BTreeMap<Vec<u8>, u32>,
    other: Vec<Record>,
    /// Addresses with their TTL, selection weight and zone.
    v4: BTreeMap<std::net::Ipv4Addr, Addr>,
    v6: BTreeMap<std::net::Ipv6Addr, Addr>,
    hosts: BTreeMap<Vec<u8>, u32>,
    /// SRV records with their TTL and zone.
    srv: BTreeMap<SrvKey, (u32, u16)>,
    additionals: BTreeMap<(Vec<u8>, IpAddr), u32>,
    txt: BTreeMap<String, u32>,
}

/// An SRV record's priority, weight, port and target.
type SrvKey = (u16, u16, u16, Vec<u8>);

/// An address's TTL, selection weight and zone ([`NO_ZONE`] for none).
type Addr = (u32, u16, u16);

/// The zone id of a contributor in no zone locality tells apart.
pub const NO_ZONE: u16 = u16::MAX;

/// The sets of one name, and its local sets: the A, AAAA and SRV records of the instances of
/// one zone, by zone id, for names whose records come from instances of several zones.
pub type Built = (Vec<RRset>, Vec<(u16, RRset)>);

/// Keeps the smallest TTL seen for a value (RFC 2181 §5.2: one TTL per RRset; the smallest is
/// the safe one for a discovery service).
fn keep_min<K: Ord>(map: &mut BTreeMap<K, u32>, key: K, ttl: u32) {
    map.entry(key)
        .and_modify(|t| *t = (*t).min(ttl))
        .or_insert(ttl);
}

/// Keeps the smallest TTL and the largest weight seen for an address (two instances on one
/// address: the address gets the larger share), and the first zone.
fn keep_addr<K: Ord>(map: &mut BTreeMap<K, Addr>, key: K, ttl: u32, weight: u16, zone: u16) {
    map.entry(key)
        .and_modify(|(t, w, z)| {
            *t = (*t).min(ttl);
            *w = (*w).max(weight);
            if *z == NO_ZONE {
                *z = zone;
            }
        })
        .or_insert((ttl, weight, zone));
}

/// The address set of `rtype` from `(address bytes, (TTL, weight, zone))`, its spread
/// weighted.
fn address_set(rtype: RecordType, items: Vec<(Vec<u8>, Addr)>) -> Option<RRset> {
    let weights: Vec<u64> = items
        .iter()
        .map(|(_, (_, w, _))| selection_weight(*w))
        .collect();
    let mut set = wire_set(
        rtype,
        items
            .into_iter()
            .map(|(ip, (ttl, _, _))| (ip, ttl))
            .collect(),
    )?;
    if set.count > 1 {
        set.spread = SpreadInput {
            starts: set.record_starts(),
            weights,
            ..SpreadInput::default()
        }
        .encode();
    }
    Some(set)
}

/// The RRset of `rtype` from `(RDATA, TTL)` pairs at the smallest of their TTLs, if any.
fn wire_set(rtype: RecordType, items: Vec<(Vec<u8>, u32)>) -> Option<RRset> {
    let ttl = items.iter().map(|(_, t)| *t).min()?;
    Some(RRset::from_rdata(
        rtype.into(),
        ttl,
        items.iter().map(|(rdata, _)| rdata.as_slice()),
    ))
}

impl<'z> RecordsBuilder<'z> {
    /// A builder that also keeps the A, AAAA and SRV records of each zone of `localities`
    /// apart ([`RecordsBuilder::finish_local`]).
    pub fn with_localities(localities: &'z [Box<str>]) -> Self {
        Self {
            localities,
            ..Self::default()
        }
    }

    /// Adds a record of the zone file for the live zone.
    pub fn add_static(&mut self, record: &Record) {
        match &record.data {
            RData::A(a) => keep_addr(&mut self.v4, a.0, record.ttl, DEFAULT_WEIGHT, NO_ZONE),
            RData::AAAA(a) => keep_addr(&mut self.v6, a.0, record.ttl, DEFAULT_WEIGHT, NO_ZONE),
            _ => self.other.push(record.clone()),
        }
    }

    /// The id of `reg`'s zone among the localities.
    fn zone_of(&self, reg: &Registration) -> u16 {
        match (&reg.zone, self.localities.is_empty()) {
            (Some(zone), false) => self
                .localities
                .iter()
                .position(|l| **l == **zone)
                .map_or(NO_ZONE, |at| at as u16),
            _ => NO_ZONE,
        }
    }

    /// Adds what `reg` contributes in `roles`; `owner` builds its owner name (wire form) when
    /// a PTR or an SRV target needs it, and `ttl` applies when the value names none.
    pub fn add(&mut self, owner: &dyn Fn() -> Vec<u8>, reg: &Registration, roles: Roles, ttl: u32) {
        let ttl = reg.ttl.unwrap_or(ttl);
        if roles.has(Roles::PTR) {
            keep_min(&mut self.ptr, owner(), ttl);
        }
        let (owner_role, service_role) = (roles.has(Roles::OWNER), roles.has(Roles::SERVICE));
        // Locality chooses among a service's instances, not at an instance's own name.
        let zone = if service_role {
            self.zone_of(reg)
        } else {
            NO_ZONE
        };
        if owner_role || service_role {
            match &reg.target {
                Target::Addr(IpAddr::V4(ip)) => keep_addr(&mut self.v4, *ip, ttl, reg.weight, zone),
                Target::Addr(IpAddr::V6(ip)) => keep_addr(&mut self.v6, *ip, ttl, reg.weight, zone),
                Target::Host(host) if owner_role => {
                    keep_min(&mut self.hosts, wire_name(host).into_vec(), ttl)
                }
                Target::Host(_) | Target::None => {}
            }
            for txt in &reg.txt {
                keep_min(&mut self.txt, txt.clone(), ttl);
            }
        }
        let port = if roles.has(Roles::ENDPOINT) {
            reg.endpoints.get(roles.endpoint_index()).map(|e| e.port)
        } else if service_role || roles.has(Roles::SRV) {
            reg.port
        } else {
            None
        };
        if let Some(port) = port {
            let target = match &reg.target {
                Target::Host(host) => wire_name(host).into_vec(),
                Target::Addr(ip) => {
                    let target = owner();
                    keep_min(&mut self.additionals, (target.clone(), *ip), ttl);
                    target
                }
                // Nothing to point at.
                Target::None => return,
            };
            self.srv
                .entry((reg.priority, reg.weight, port, target))
                .and_modify(|(t, z)| {
                    *t = (*t).min(ttl);
                    if *z == NO_ZONE {
                        *z = zone;
                    }
                })
                .or_insert((ttl, zone));
        }
    }

    /// The RRsets in the order ANY picks from: A, AAAA, SRV, TXT, PTR, CNAME, then the zone
    /// file's other types. A zone file's SRV, TXT or PTR records join the live set of their
    /// type: one RRset per name and type (RFC 2181 §5).
    pub fn finish(self) -> Vec<RRset> {
        self.finish_local().0
    }

    /// [`RecordsBuilder::finish`]'s sets, and for a name whose A, AAAA or SRV set of several
    /// records holds instances of a locality's zone, that zone's records of each such set.
    pub fn finish_local(self) -> Built {
        let local = self.local_sets();
        let mut statics: BTreeMap<u16, Vec<(Vec<u8>, u32)>> = BTreeMap::new();
        for record in &self.other {
            let rdata = rr_tail(record).split_off(RR_TAIL_FIXED);
            statics
                .entry(record.record_type().into())
                .or_default()
                .push((rdata, record.ttl));
        }
        let a = address_set(
            RecordType::A,
            self.v4
                .into_iter()
                .map(|(ip, tw)| (ip.octets().to_vec(), tw))
                .collect(),
        );
        let aaaa = address_set(
            RecordType::AAAA,
            self.v6
                .into_iter()
                .map(|(ip, tw)| (ip.octets().to_vec(), tw))
                .collect(),
        );
        let srv_items = self
            .srv
            .iter()
            .map(|(key, (t, _))| (srv_rdata(key), *t))
            .collect();
        let srv = srv_set(
            merge_statics(&mut statics, RecordType::SRV, srv_items),
            &self.additionals,
        );
        let txt = with_statics(
            &mut statics,
            RecordType::TXT,
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
        let ptr = with_statics(
            &mut statics,
            RecordType::PTR,
            self.ptr.into_iter().collect(),
        );
        let holds_other =
            a.is_some() || aaaa.is_some() || srv.is_some() || txt.is_some() || !statics.is_empty();
        let cname = match (holds_other, self.hosts.into_iter().next()) {
            (false, Some(host)) => wire_set(RecordType::CNAME, vec![host]),
            _ => None,
        };
        let mut sets: Vec<RRset> = [a, aaaa, srv, txt, ptr, cname]
            .into_iter()
            .flatten()
            .collect();
        for (rtype, items) in statics {
            sets.extend(wire_set(rtype.into(), items));
        }
        (sets, local)
    }
}

/// The RRsets of a name whose one contributor is `reg` in `roles`, when that is the common
/// shape — an address alone ([`Registration::address_only`]) at its owner or service name, or
/// the PTR at its reverse name — built without [`RecordsBuilder`]'s maps: the same set (or none)
/// it would give. `None` for any other shape, which the builder handles.
pub fn single_rrsets(
    owner: &dyn Fn() -> Vec<u8>,
    reg: &Registration,
    roles: Roles,
    ttl: u32,
) -> Option<Option<RRset>> {
    let ip = reg.address_only()?;
    let ttl = reg.ttl.unwrap_or(ttl);
    let set = if roles == Roles::PTR {
        RRset::from_rdata(RecordType::PTR.into(), ttl, [owner().as_slice()])
    } else if roles == Roles::default() {
        return Some(None);
    } else if Roles::OWNER.with(Roles::SERVICE).contains(roles) {
        match ip {
            IpAddr::V4(ip) => RRset::from_rdata(RecordType::A.into(), ttl, [&ip.octets()[..]]),
            IpAddr::V6(ip) => RRset::from_rdata(RecordType::AAAA.into(), ttl, [&ip.octets()[..]]),
        }
    } else {
        return None;
    };
    Some(Some(set))
}

/// Bytes of an [`rr_tail`] before the RDATA: type, class, TTL, RDLENGTH.
const RR_TAIL_FIXED: usize = 10;

/// The set of `rtype` from the live `items` and the zone file's records of that type (taken
/// out of `statics`); a record both have is there once, at the smaller TTL.
fn with_statics(
    statics: &mut BTreeMap<u16, Vec<(Vec<u8>, u32)>>,
    rtype: RecordType,
    items: Vec<(Vec<u8>, u32)>,
) -> Option<RRset> {
    wire_set(rtype, merge_statics(statics, rtype, items))
}

/// The live `items` of `rtype` with the zone file's records of that type (taken out of
/// `statics`); a record both have is there once, at the smaller TTL.
fn merge_statics(
    statics: &mut BTreeMap<u16, Vec<(Vec<u8>, u32)>>,
    rtype: RecordType,
    mut items: Vec<(Vec<u8>, u32)>,
) -> Vec<(Vec<u8>, u32)> {
    for (rdata, ttl) in statics.remove(&u16::from(rtype)).unwrap_or_default() {
        match items.iter_mut().find(|(r, _)| *r == rdata) {
            Some((_, t)) => *t = (*t).min(ttl),
            None => items.push((rdata, ttl)),
        }
    }
    items
}

/// The SRV set of `items` (RDATA, TTL), lowest priority first, each record followed in the
/// additional section by its target's addresses (`additionals`: by target, then address;
/// a target named by several records goes with the first), and weighted by its SRV weight.
fn srv_set(
    mut items: Vec<(Vec<u8>, u32)>,
    additionals: &BTreeMap<(Vec<u8>, IpAddr), u32>,
) -> Option<RRset> {
    let field = |rdata: &[u8], at: usize| {
        rdata
            .get(at..at + 2)
            .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]))
    };
    // Stable: records of one priority keep their order.
    items.sort_by_key(|(rdata, _)| field(rdata, 0));
    let priorities: Vec<u16> = items.iter().map(|(r, _)| field(r, 0)).collect();
    let weights: Vec<u64> = items
        .iter()
        .map(|(r, _)| selection_weight(field(r, 2)))
        .collect();
    let targets: Vec<Vec<u8>> = items
        .iter()
        .map(|(r, _)| r.get(6..).unwrap_or_default().to_vec())
        .collect();
    let mut set = wire_set(RecordType::SRV, items)?;
    let mut extra_starts = vec![0u32];
    let mut written: std::collections::HashSet<&[u8]> = std::collections::HashSet::new();
    for target in &targets {
        if written.insert(target.as_slice()) {
            let range = additionals.range((target.clone(), IpAddr::from([0u8; 4]))..);
            for ((owner, ip), ttl) in range.take_while(|((owner, _), _)| owner == target) {
                match ip {
                    IpAddr::V4(ip) => {
                        set.push_extra(owner, RecordType::A.into(), *ttl, &ip.octets())
                    }
                    IpAddr::V6(ip) => {
                        set.push_extra(owner, RecordType::AAAA.into(), *ttl, &ip.octets())
                    }
                }
            }
        }
        extra_starts.push(set.extra.len() as u32);
    }
    if set.count > 1 {
        set.spread = SpreadInput {
            starts: set.record_starts(),
            weights,
            priorities,
            extra_starts,
        }
        .encode();
    }
    Some(set)
}

mod local;

#[cfg(test)]
mod tests;
