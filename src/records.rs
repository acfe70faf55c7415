//! Registration → DNS records (pure): the names an instance touches, with its role at each,
//! and the RRsets of one name built in wire form from everything that contributes to it.

use std::collections::BTreeMap;
use std::net::IpAddr;

use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::key::{ServiceKey, SRV_PROTOCOLS};
use crate::service::{Registration, Target};
use crate::wire::{name_key, reverse_key, NameKey, RRset};

/// What a registered instance contributes at one of its names (a set of the flags below, one
/// byte: the writer keeps one per name and contributor).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Roles(u8);

impl Roles {
    /// The name that carries this instance alone (addresses, CNAME, TXT).
    pub const OWNER: Roles = Roles(1);
    /// `<service>.Z`: addresses, SRV, TXT of every instance.
    pub const SERVICE: Roles = Roles(2);
    /// `_<service>._tcp/_udp.Z`: SRV only.
    pub const SRV: Roles = Roles(4);
    /// The reverse name of the instance's address: PTR to its owner name.
    pub const PTR: Roles = Roles(8);

    /// True when `role` is among these.
    pub fn has(self, role: Roles) -> bool {
        self.0 & role.0 != 0
    }

    fn add(&mut self, other: Roles) {
        self.0 |= other.0;
    }

    /// These roles and `other`.
    pub fn with(self, other: Roles) -> Roles {
        Roles(self.0 | other.0)
    }
}

/// Every name an instance touches, with its roles there, plus the empty non-terminals between
/// those names and the zone. SRV names exist only for instances with a port, and the reverse
/// name only for address targets.
pub fn instance_names(
    key: ServiceKey<'_>,
    reg: &Registration,
    zone: &[u8],
) -> Vec<(NameKey, Roles)> {
    // Built directly in wire form: this runs for every key of the initial read.
    let mut names: Vec<(Vec<u8>, Roles)> = Vec::with_capacity(6);
    fn add(names: &mut Vec<(Vec<u8>, Roles)>, name: Vec<u8>, role: Roles) {
        match names.iter_mut().find(|(n, _)| *n == name) {
            Some((_, roles)) => roles.add(role),
            None => names.push((name, role)),
        }
    }
    add(&mut names, key.owner_name(zone), Roles::OWNER);
    add(&mut names, key.service_name(zone), Roles::SERVICE);
    if reg.port.is_some() {
        for proto in SRV_PROTOCOLS {
            add(&mut names, key.srv_name(proto, zone), Roles::SRV);
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

/// A zone file's owner `name` and its ancestors strictly below `zone` (the empty
/// non-terminals it implies, RFC 8020), in wire form. A name outside the zone comes alone.
pub fn static_names(name: &Name, zone: &Name) -> Vec<NameKey> {
    let mut out = vec![name_key(name)];
    if zone.zone_of(name) {
        let mut parent = name.base_name();
        while parent.num_labels() > zone.num_labels() {
            out.push(name_key(&parent));
            parent = parent.base_name();
        }
    }
    out
}

/// Accumulates one name's records from its contributing instances. Names are kept in wire
/// form (lowercase, uncompressed) and RDATA is encoded directly: this runs for every name of
/// the initial read.
#[derive(Default)]
pub struct RecordsBuilder {
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

/// The RRset of `rtype` from `(RDATA, TTL)` pairs at the smallest of their TTLs, if any.
fn wire_set(rtype: RecordType, items: Vec<(Vec<u8>, u32)>) -> Option<RRset> {
    let ttl = items.iter().map(|(_, t)| *t).min()?;
    Some(RRset::from_rdata(
        rtype.into(),
        ttl,
        items.iter().map(|(rdata, _)| rdata.as_slice()),
    ))
}

impl RecordsBuilder {
    /// Adds a record of the zone file for the live zone.
    pub fn add_static(&mut self, record: &Record) {
        match &record.data {
            RData::A(a) => keep_min(&mut self.v4, a.0, record.ttl),
            RData::AAAA(a) => keep_min(&mut self.v6, a.0, record.ttl),
            _ => self.other.push(record.clone()),
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
    pub fn finish(self) -> Vec<RRset> {
        let a = wire_set(
            RecordType::A,
            self.v4
                .into_iter()
                .map(|(ip, t)| (ip.octets().to_vec(), t))
                .collect(),
        );
        let aaaa = wire_set(
            RecordType::AAAA,
            self.v6
                .into_iter()
                .map(|(ip, t)| (ip.octets().to_vec(), t))
                .collect(),
        );
        let mut srv = wire_set(
            RecordType::SRV,
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
                    IpAddr::V4(ip) => {
                        srv.push_extra(&owner, RecordType::A.into(), ttl, &ip.octets())
                    }
                    IpAddr::V6(ip) => {
                        srv.push_extra(&owner, RecordType::AAAA.into(), ttl, &ip.octets())
                    }
                }
            }
        }
        let txt = wire_set(
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
        let ptr = wire_set(RecordType::PTR, self.ptr.into_iter().collect());
        let holds_other = a.is_some()
            || aaaa.is_some()
            || srv.is_some()
            || txt.is_some()
            || !self.other.is_empty();
        let cname = match (holds_other, self.hosts.into_iter().next()) {
            (false, Some(host)) => wire_set(RecordType::CNAME, vec![host]),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::parse_key;
    use crate::service::parse_value;

    fn zone() -> Name {
        Name::from_ascii("services.local.").expect("zone")
    }

    fn text(wire: &[u8]) -> String {
        crate::wire::key_name(wire).expect("wire name").to_ascii()
    }

    #[test]
    fn names_an_instance_touches() {
        let zone_wire = name_key(&zone());
        // key, value → every name with its roles (O owner, S service, R SRV, P PTR, - none)
        type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);
        let cases: &[Case] = &[
            (
                "services/s-test",
                r#"{"IP":"10.0.0.1"}"#,
                &[
                    ("s-test.services.local.", "OS"),
                    ("1.0.0.10.in-addr.arpa.", "P"),
                ],
            ),
            (
                "services/web/n1",
                r#"{"IP":"10.0.0.2","port":80}"#,
                &[
                    ("n1.web.services.local.", "O"),
                    ("web.services.local.", "S"),
                    ("_web._tcp.services.local.", "R"),
                    ("_web._udp.services.local.", "R"),
                    ("_tcp.services.local.", "-"),
                    ("_udp.services.local.", "-"),
                    ("2.0.0.10.in-addr.arpa.", "P"),
                ],
            ),
            (
                "services/api.v2/N1",
                r#"{"host":"db.example.com"}"#,
                &[
                    ("n1.api.v2.services.local.", "O"),
                    ("api.v2.services.local.", "S"),
                    ("v2.services.local.", "-"),
                ],
            ),
        ];
        let letters = |roles: Roles| {
            let all = [
                (Roles::OWNER, 'O'),
                (Roles::SERVICE, 'S'),
                (Roles::SRV, 'R'),
                (Roles::PTR, 'P'),
            ];
            let s: String = all
                .iter()
                .filter(|(r, _)| roles.has(*r))
                .map(|(_, c)| *c)
                .collect();
            if s.is_empty() {
                "-".to_string()
            } else {
                s
            }
        };
        for (etcd_key, value, want) in cases {
            let key = parse_key("services/", etcd_key.as_bytes(), &zone()).expect("key");
            let registration = parse_value(value.as_bytes()).expect("value");
            let mut got: Vec<(String, String)> = instance_names(key, &registration, &zone_wire)
                .into_iter()
                .map(|(name, roles)| (text(&name), letters(roles)))
                .collect();
            let mut want: Vec<(String, String)> = want
                .iter()
                .map(|(n, r)| (n.to_string(), r.to_string()))
                .collect();
            got.sort();
            want.sort();
            assert_eq!(got, want, "{etcd_key}");
        }
    }

    /// The records of one name built from `(owner, value, roles)` contributions, as text.
    fn build(contributions: &[(&str, &str, Roles)]) -> Vec<String> {
        let mut builder = RecordsBuilder::default();
        for (owner, value, roles) in contributions {
            let owner_wire = name_key(&Name::from_ascii(owner).expect("owner"));
            let registration = parse_value(value.as_bytes()).expect("value");
            builder.add(&|| owner_wire.to_vec(), &registration, *roles, 5);
        }
        let name = Name::from_ascii("x.services.local.").expect("name");
        builder
            .finish()
            .iter()
            .flat_map(|set| {
                let mut lines: Vec<String> = set
                    .as_ref()
                    .records(&name)
                    .iter()
                    .map(|r| format!("{} {} {}", r.ttl, r.record_type(), r.data))
                    .collect();
                lines.sort();
                lines
            })
            .collect()
    }

    #[test]
    fn contributions_become_rrsets() {
        let (owner, service, srv, ptr) = (Roles::OWNER, Roles::SERVICE, Roles::SRV, Roles::PTR);
        let n1 = "n1.web.services.local.";
        let n2 = "n2.web.services.local.";
        type Case<'a> = (&'a [(&'a str, &'a str, Roles)], &'a [&'a str]);
        let cases: &[Case] = &[
            // The original format: one A.
            (
                &[(n1, r#"{"IP":"192.168.1.26"}"#, owner)],
                &["5 A 192.168.1.26"],
            ),
            // One address once; the smallest TTL for the set; SRV in ANY order after A.
            (
                &[
                    (n1, r#"{"IP":"10.0.0.1","port":80,"ttl":30}"#, service),
                    (n2, r#"{"IP":"10.0.0.1","port":81,"txt":["v=1"]}"#, service),
                ],
                &[
                    "5 A 10.0.0.1",
                    "5 SRV 10 10 80 n1.web.services.local.",
                    "5 SRV 10 10 81 n2.web.services.local.",
                    "5 TXT v=1",
                ],
            ),
            // IPv6, priority and weight, value TTL.
            (
                &[(
                    n1,
                    r#"{"ip":"2001:db8::1","port":53,"priority":1,"weight":7,"ttl":30}"#,
                    srv,
                )],
                &["30 SRV 1 7 53 n1.web.services.local."],
            ),
            (
                &[(n1, r#"{"ip":"2001:db8::1","ttl":30}"#, owner)],
                &["30 AAAA 2001:db8::1"],
            ),
            // A host name is a CNAME where nothing else is, and the SRV target.
            (
                &[(n1, r#"{"host":"db.example.com"}"#, owner)],
                &["5 CNAME db.example.com."],
            ),
            (
                &[(
                    n1,
                    r#"{"host":"db.example.com","port":5432}"#,
                    owner.with(service),
                )],
                &["5 SRV 10 10 5432 db.example.com."],
            ),
            // A reverse name points at every instance holding the address.
            (
                &[
                    (n1, r#"{"IP":"10.0.0.1"}"#, ptr),
                    (n2, r#"{"IP":"10.0.0.1"}"#, ptr),
                ],
                &[
                    "5 PTR n1.web.services.local.",
                    "5 PTR n2.web.services.local.",
                ],
            ),
        ];
        for (contributions, want) in cases {
            assert_eq!(build(contributions), *want, "{contributions:?}");
        }
    }
}
