//! Registration → DNS records (pure): the names an instance touches, with its role at each
//! (here), and the RRsets of one name built in wire form from everything that contributes to
//! it ([`rrsets`]).

mod placement;
mod rrsets;

pub use placement::{Placement, Shape};
pub use rrsets::{single_rrsets, Built, RecordsBuilder, NO_ZONE};

use hickory_proto::rr::Name;

use crate::key::SRV_PROTOCOLS;
use crate::service::{Registration, Target, MAX_PAIRED_TAGS};
use crate::wire::{reverse_name, wire_name, WireName};

/// What a registered instance contributes at one of its names (a set of the flags below, and
/// for [`Roles::endpoint`] the endpoint's index in the high byte; the writer keeps one per name
/// and contributor).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Roles(u16);

impl Roles {
    /// The name that carries this instance alone (addresses, CNAME, TXT).
    pub const OWNER: Roles = Roles(1);
    /// `<service>.Z`: addresses, SRV, TXT of every instance.
    pub const SERVICE: Roles = Roles(2);
    /// `_<service>._tcp/_udp.Z`: SRV only.
    pub const SRV: Roles = Roles(4);
    /// The reverse name of the instance's address: PTR to its owner name.
    pub const PTR: Roles = Roles(8);
    /// `_<scheme>._tcp.<service>.Z`: the SRV of one endpoint (see [`Roles::endpoint`]).
    pub const ENDPOINT: Roles = Roles(16);

    /// The SRV of endpoint `index` of the registration (at most 255 endpoints are named).
    pub fn endpoint(index: u8) -> Roles {
        Roles(Self::ENDPOINT.0 | u16::from(index) << 8)
    }

    /// The endpoint index of [`Roles::endpoint`].
    pub fn endpoint_index(self) -> usize {
        usize::from(self.0 >> 8)
    }

    /// True when `role` is among these.
    pub fn has(self, role: Roles) -> bool {
        self.0 & role.0 != 0
    }

    /// True when every role of `other` is among these.
    pub fn contains(self, other: Roles) -> bool {
        self.0 & other.0 == other.0
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
    key: &Placement<'_>,
    reg: &Registration,
    zone: &[u8],
) -> Vec<(Vec<u8>, Roles)> {
    // Built directly in wire form: this runs for every key of the initial read.
    let mut names: Vec<(Vec<u8>, Roles)> = Vec::with_capacity(8);
    fn add(names: &mut Vec<(Vec<u8>, Roles)>, name: Vec<u8>, role: Roles) {
        match names.iter_mut().find(|(n, _)| *n == name) {
            Some((_, roles)) => roles.add(role),
            None => names.push((name, role)),
        }
    }
    match key.instance {
        Some(_) => {
            add(&mut names, key.owner_name(zone), Roles::OWNER);
            add(&mut names, key.service_name(zone), Roles::SERVICE);
        }
        // Without an instance label the service name is the owner name.
        None => add(
            &mut names,
            key.owner_name(zone),
            Roles::OWNER.with(Roles::SERVICE),
        ),
    }
    match key.shape {
        Shape::Service if reg.port.is_some() => {
            for proto in SRV_PROTOCOLS {
                add(&mut names, key.srv_name(proto, zone), Roles::SRV);
            }
        }
        Shape::Service => {}
        Shape::Endpoints => {
            for (index, endpoint) in reg.endpoints.iter().enumerate().take(256) {
                let name = key.endpoint_name(&endpoint.scheme, zone);
                add(&mut names, name, Roles::endpoint(index as u8));
            }
        }
        // The entry's own name answers for it in full, SRV included.
        Shape::Tree => add(&mut names, key.owner_name(zone), Roles::SERVICE),
    }
    // Tag lookups answer as the service name does, for the instances carrying the tags.
    if key.shape != Shape::Tree && !reg.tags.is_empty() {
        let tags = reg.dns_tags();
        let mut tag_names = Vec::with_capacity(tags.len());
        for (i, first) in tags.iter().enumerate() {
            tag_names.push(key.tag_name(&[first], zone));
            if i >= MAX_PAIRED_TAGS {
                continue;
            }
            for second in tags.iter().take(MAX_PAIRED_TAGS) {
                if second != first {
                    tag_names.push(key.tag_name(&[first, second], zone));
                }
            }
        }
        // A name past 255 bytes (a long service and long tags) is left out.
        for name in tag_names.into_iter().filter(|n| n.len() <= 255) {
            add(&mut names, name, Roles::SERVICE);
        }
    }
    // Every name between each name and the zone: an empty non-terminal (RFC 8020), or in a
    // tree one that answers for the whole subtree.
    let above = match key.shape {
        Shape::Tree => Roles::SERVICE,
        _ => Roles::default(),
    };
    for index in 0..names.len() {
        let mut at = 0;
        loop {
            let name = &names[index].0;
            if name.len() - at <= zone.len() {
                break;
            }
            let next = at + 1 + name[at] as usize;
            if at > 0 {
                let parent = name[at..].to_vec();
                add(&mut names, parent, above);
            }
            at = next;
        }
    }
    if let Target::Addr(ip) = reg.target {
        add(&mut names, reverse_name(ip).into_vec(), Roles::PTR);
    }
    names
}

/// A zone file's owner `name` and its ancestors strictly below `zone` (the empty
/// non-terminals it implies, RFC 8020), in wire form. A name outside the zone comes alone.
pub fn static_names(name: &Name, zone: &Name) -> Vec<WireName> {
    let mut out = vec![wire_name(name)];
    if zone.zone_of(name) {
        let mut parent = name.base_name();
        while parent.num_labels() > zone.num_labels() {
            out.push(wire_name(&parent));
            parent = parent.base_name();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::parse_key;
    use crate::service::parse_value;
    use crate::testing::{letters, text, zone};

    #[test]
    fn names_an_instance_touches() {
        let zone_wire = wire_name(&zone());
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
            (
                "services/web/n3",
                r#"{"IP":"10.0.0.3","tags":["Canary","v2","env=prod","tcp"]}"#,
                &[
                    ("n3.web.services.local.", "O"),
                    ("web.services.local.", "S"),
                    ("_web._canary.services.local.", "S"),
                    ("_web._v2.services.local.", "S"),
                    ("_web._canary._v2.services.local.", "S"),
                    ("_web._v2._canary.services.local.", "S"),
                    ("_canary.services.local.", "-"),
                    ("_v2.services.local.", "-"),
                    ("_canary._v2.services.local.", "-"),
                    ("_v2._canary.services.local.", "-"),
                    ("3.0.0.10.in-addr.arpa.", "P"),
                ],
            ),
        ];
        for (etcd_key, value, want) in cases {
            let key = parse_key("services/", etcd_key.as_bytes(), &zone()).expect("key");
            let registration = parse_value(value.as_bytes()).expect("value");
            let mut got: Vec<(String, String)> =
                instance_names(&key.into(), &registration, &zone_wire)
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
}
