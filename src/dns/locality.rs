//! Locality: which failure domain a client is in (`--locality CIDR=ZONE,…`), read from its
//! source address or, when it comes through a forwarder trusted with `--trust-ecs`, from the
//! EDNS Client Subnet the forwarder passes on (RFC 7871); and for how wide a network that
//! answer holds (the ECS scope a reply carries, so that the forwarder's cache keeps it for the
//! right clients only).

use std::net::IpAddr;

use thiserror::Error;

use super::acl::{Acl, AclError};
use crate::flags::split_list;
use crate::wire::ClientSubnet;

/// A bad `--locality` or `--trust-ecs` item.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum LocalityError {
    /// Not `CIDR=ZONE`.
    #[error("{0:?} is not CIDR=ZONE (10.1.0.0/16=eu-west-1a)")]
    Item(String),
    /// The network part does not parse.
    #[error("{0}")]
    Network(#[from] AclError),
    /// The same network twice.
    #[error("network {0} is mapped twice")]
    Twice(String),
    /// More zones than a table can tell apart.
    #[error("at most {max} zones, got {got}")]
    TooMany {
        /// The most.
        max: usize,
        /// How many were given.
        got: usize,
    },
}

/// Most distinct zones in `--locality` (zone ids are `u16`, one value marks "none").
pub const MAX_ZONES: usize = 1024;

/// One `--locality` network.
#[derive(Debug, Clone, Copy)]
struct Net {
    /// The network's address, IPv4 in the top 32 bits.
    bits: u128,
    v4: bool,
    /// Prefix length (of 32 for IPv4).
    len: u8,
    /// Index of its zone in [`Locality::zones`].
    zone: u16,
}

/// The client networks of each zone, who may speak for its clients, and how many local
/// instances an answer needs to stay local.
#[derive(Debug, Clone)]
pub struct Locality {
    /// Longest prefix first, so that the first match is the most specific.
    nets: Vec<Net>,
    zones: Vec<Box<str>>,
    trust_ecs: Acl,
    /// Fewest instances of the client's zone that make an answer local (`--locality-min`).
    pub min: u16,
}

/// What locality makes of one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    /// Its zone, an index into [`Locality::zones`], if a network maps it.
    pub zone: Option<u16>,
    /// How many leading bits of its address decided that: the ECS scope of a reply shaped by
    /// it (every address sharing them is answered alike).
    pub scope: u8,
}

/// IPv4 in the top 32 bits of a `u128`, IPv4-mapped IPv6 as IPv4.
fn bits(ip: IpAddr) -> (u128, bool) {
    match ip {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)) << 96, true),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => (u128::from(u32::from(v4)) << 96, true),
            None => (u128::from(v6), false),
        },
    }
}

impl Locality {
    /// Parses `--locality` (`CIDR=ZONE,…`), `--trust-ecs` (`CIDR,…`) and `--locality-min`.
    pub fn parse(locality: &str, trust_ecs: &str, min: u16) -> Result<Self, LocalityError> {
        let mut nets: Vec<Net> = Vec::new();
        let mut zones: Vec<Box<str>> = Vec::new();
        for item in split_list(locality) {
            let (net, zone) = item
                .split_once('=')
                .map(|(n, z)| (n.trim(), z.trim()))
                .filter(|(n, z)| !n.is_empty() && !z.is_empty())
                .ok_or_else(|| LocalityError::Item(item.clone()))?;
            let (ip, len) = Acl::parse_one(net)?;
            let (bits, v4) = bits(ip);
            let mask = mask(len);
            if nets
                .iter()
                .any(|n| n.v4 == v4 && n.len == len && n.bits == bits & mask)
            {
                return Err(LocalityError::Twice(net.to_string()));
            }
            let zone = match zones.iter().position(|z| **z == *zone) {
                Some(at) => at,
                None => {
                    zones.push(zone.into());
                    zones.len() - 1
                }
            };
            if zones.len() > MAX_ZONES {
                return Err(LocalityError::TooMany {
                    max: MAX_ZONES,
                    got: zones.len(),
                });
            }
            nets.push(Net {
                bits: bits & mask,
                v4,
                len,
                zone: zone as u16,
            });
        }
        nets.sort_by_key(|n| std::cmp::Reverse(n.len));
        Ok(Self {
            nets,
            zones,
            trust_ecs: Acl::parse(trust_ecs)?,
            min: min.max(1),
        })
    }

    /// The zones named, in the order first named: a zone's index is its id in the table.
    pub fn zones(&self) -> &[Box<str>] {
        &self.zones
    }

    /// The address locality reads for a query from `src` carrying `ecs`: the Client Subnet's
    /// when `src` is a trusted forwarder, else `src`'s own. The second value says whether the
    /// Client Subnet was used (and must be echoed).
    pub fn client_address(&self, src: IpAddr, ecs: Option<ClientSubnet>) -> (IpAddr, bool) {
        match ecs {
            Some(ecs) if self.trust_ecs.contains(src) => (ecs.ip(), true),
            _ => (src, false),
        }
    }

    /// The zone of `ip`, by the most specific network holding it, and the scope of that
    /// answer: the network's prefix length; for an address no network holds, the fewest
    /// leading bits that tell it apart from every network of its family.
    pub fn client(&self, ip: IpAddr) -> Client {
        let (ip, v4) = bits(ip);
        let mut scope = 0u8;
        for net in self.nets.iter().filter(|n| n.v4 == v4) {
            // Both addresses start at the top bit (IPv4 too): the first bit that differs.
            let differs = (ip ^ net.bits).leading_zeros();
            if differs >= u32::from(net.len) {
                return Client {
                    zone: Some(net.zone),
                    scope: net.len,
                };
            }
            scope = scope.max(differs as u8 + 1);
        }
        Client { zone: None, scope }
    }
}

/// The mask of a prefix of `len` bits of the family's own address (IPv4: of 32).
fn mask(len: u8) -> u128 {
    // `Acl::parse_one` checked `len` against the family: IPv4 ≤ 32 sits in the top bits.
    match len {
        0 => 0,
        len => u128::MAX << (128 - u32::from(len)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn the_most_specific_network_decides_and_scopes_the_answer() {
        let locality = Locality::parse(
            "10.1.0.0/16=a, 10.1.2.0/24=b, 10.2.0.0/16=b, fd00::/8=c",
            "",
            0,
        )
        .expect("valid");
        assert_eq!(
            locality.zones(),
            ["a".into(), "b".into(), "c".into()] as [Box<str>; 3]
        );
        let zone = |text: &str| locality.client(ip(text));
        assert_eq!(
            zone("10.1.2.3"),
            Client {
                zone: Some(1),
                scope: 24
            }
        );
        assert_eq!(
            zone("10.1.9.3"),
            Client {
                zone: Some(0),
                scope: 16
            }
        );
        assert_eq!(
            zone("10.2.0.1"),
            Client {
                zone: Some(1),
                scope: 16
            }
        );
        assert_eq!(
            zone("::ffff:10.2.0.1"),
            Client {
                zone: Some(1),
                scope: 16
            }
        );
        assert_eq!(
            zone("fd12::1"),
            Client {
                zone: Some(2),
                scope: 8
            }
        );
        // 10.3.x first differs from 10.1.0.0/16 at bit 15 and from 10.2.0.0/16 at bit 16:
        // 16 bits tell it apart from both (10.2.0.0/15 would hold zone b's network).
        assert_eq!(
            zone("10.3.0.1"),
            Client {
                zone: None,
                scope: 16
            }
        );
        // 192.x differs from all at the first bit.
        assert_eq!(
            zone("192.168.0.1"),
            Client {
                zone: None,
                scope: 1
            }
        );
        assert_eq!(
            zone("2001:db8::1"),
            Client {
                zone: None,
                scope: 1
            }
        );
        assert_eq!(locality.min, 1, "at least one instance");
    }

    #[test]
    fn ecs_counts_only_from_trusted_forwarders() {
        let locality = Locality::parse("10.1.0.0/16=a", "127.0.0.1, 192.0.2.0/24", 2).expect("ok");
        let ecs = ClientSubnet::parse(&[0, 1, 24, 0, 10, 1, 7]).expect("ECS");
        assert_eq!(
            locality.client_address(ip("192.0.2.53"), Some(ecs)),
            (ip("10.1.7.0"), true)
        );
        assert_eq!(
            locality.client_address(ip("198.51.100.1"), Some(ecs)),
            (ip("198.51.100.1"), false)
        );
        assert_eq!(
            locality.client_address(ip("127.0.0.1"), None),
            (ip("127.0.0.1"), false)
        );
    }

    #[test]
    fn bad_items_are_named() {
        for (text, needle) in [
            ("10.0.0.0/8", "CIDR=ZONE"),
            ("10.0.0.0/8=", "CIDR=ZONE"),
            ("10.0.0.0/33=a", "prefix length"),
            ("ten=a", "not IP"),
            ("10.0.0.0/8=a,10.0.0.0/8=b", "mapped twice"),
        ] {
            let error = Locality::parse(text, "", 1).expect_err(text).to_string();
            assert!(error.contains(needle), "{text}: {error}");
        }
        let error = Locality::parse("", "nope", 1)
            .expect_err("trust")
            .to_string();
        assert!(error.contains("not IP"), "{error}");
    }
}
