//! JSON value ⇄ registration: what one etcd value says about one instance (pure).
//!
//! `{"IP":"192.168.1.26"}` is the original format; SkyDNS/CoreDNS-style `host`, plus `port`,
//! `priority`, `weight`, `ttl`, `txt`, `tags` and `zone`, are understood too. Unknown fields
//! are ignored.

use std::net::IpAddr;

use hickory_proto::rr::Name;
use serde_json::Value;
use thiserror::Error;

use crate::key::{parse_key, KeyError, ServiceKey};

mod fields;

pub(crate) use fields::{parse_host, parse_ip, string_field, u16_field, u32_field, zone_field};
use fields::{tags_field, txt_field};

/// SRV priority when the value names none (CoreDNS uses the same).
pub const DEFAULT_PRIORITY: u16 = 10;
/// SRV weight when the value names none (CoreDNS uses the same).
pub const DEFAULT_WEIGHT: u16 = 10;

/// Where an instance can be reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An address: A for IPv4, AAAA for IPv6.
    Addr(IpAddr),
    /// A host name: served as a CNAME, and as the SRV target (boxed: addresses are the common
    /// case and should not pay for a name's size).
    Host(Box<Name>),
    /// Neither: the entry only carries TXT records (a SkyDNS `text` entry).
    None,
}

impl std::fmt::Display for Target {
    /// As `register list` and `/services` show it: the address, or the host name.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Addr(ip) => ip.fmt(f),
            Target::Host(host) => f.write_str(&host.to_ascii()),
            Target::None => f.write_str("-"),
        }
    }
}

/// One instance as its etcd value describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// Address or host name.
    pub target: Target,
    /// Port, which enables SRV.
    pub port: Option<u16>,
    /// SRV priority.
    pub priority: u16,
    /// SRV weight.
    pub weight: u16,
    /// TTL of this instance's records; `None` means the server's `--ttl`.
    pub ttl: Option<u32>,
    /// TXT strings, one TXT record each.
    pub txt: Vec<String>,
    /// Ports by scheme (Kratos endpoints), each published as SRV at
    /// `_<scheme>._tcp.<service>.Z`; empty for the other formats.
    pub endpoints: Vec<Endpoint>,
    /// Tags as written; those that are DNS labels ([`Registration::dns_tags`]) name the
    /// instance's tag lookups `_<service>._<tag>.Z`.
    pub tags: Vec<Box<str>>,
    /// The instance's failure domain (availability zone, rack, site), for locality.
    pub zone: Option<Box<str>>,
}

/// Most tags of one instance that name two-tag lookups (`_<service>._<t1>._<t2>.Z`, every
/// ordered pair: 8 tags make 56 names); further tags name one-tag lookups only.
pub const MAX_PAIRED_TAGS: usize = 8;

/// One named port of an instance: `grpc://10.0.0.7:9000` is scheme `grpc`, port 9000.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The URL scheme, lowercase: the first label of the SRV name.
    pub scheme: Box<str>,
    /// The port.
    pub port: u16,
}

impl Registration {
    /// A registration of `target` with every other field at its default.
    pub fn new(target: Target) -> Self {
        Self {
            target,
            port: None,
            priority: DEFAULT_PRIORITY,
            weight: DEFAULT_WEIGHT,
            ttl: None,
            txt: Vec::new(),
            endpoints: Vec::new(),
            tags: Vec::new(),
            zone: None,
        }
    }

    /// The tags that name tag lookups, lowercase, each once, in the order written: those that
    /// are DNS labels (letters, digits, `-`; at most 62 characters, as `_` goes before them),
    /// except `tcp` and `udp`, whose `_<service>._tcp.Z` names every instance. Other tags
    /// (`env=prod`) are kept, shown and not published.
    pub fn dns_tags(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::with_capacity(self.tags.len());
        for tag in &self.tags {
            let tag = tag.to_ascii_lowercase();
            let label = !tag.is_empty()
                && tag.len() < crate::key::MAX_LABEL_LEN
                && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if label && tag != "tcp" && tag != "udp" && !out.contains(&tag) {
                out.push(tag);
            }
        }
        out
    }

    /// The address of a registration whose records are only that address's A or AAAA (at its
    /// names) and PTR (at its reverse name), at its TTL: the common shape, which the table
    /// builds without [`crate::records::RecordsBuilder`]. `None` for any other shape.
    ///
    /// Every field is named, none with `..`: a field added to `Registration` does not compile
    /// here until it says whether it takes a registration off this path, so the fast path
    /// cannot drop it silently.
    pub fn address_only(&self) -> Option<IpAddr> {
        let Self {
            target,
            port,
            // Without a port there is no SRV record for the priority to shape; the weight
            // shapes the choice among the records of a name with several contributors, and
            // the fast path builds names with one.
            priority: _,
            weight: _,
            // The fast path applies it.
            ttl: _,
            txt,
            endpoints,
            // Tags add names (`crate::records::instance_names`), not records: at a tag name the
            // instance contributes what it does at its service name.
            tags: _,
            // Locality chooses among several contributors; a name with one has nothing to
            // choose.
            zone: _,
        } = self;
        match target {
            Target::Addr(ip) if port.is_none() && txt.is_empty() && endpoints.is_empty() => {
                Some(*ip)
            }
            _ => None,
        }
    }
}

/// Why a value cannot be served.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum ValueError {
    /// Not JSON at all.
    #[error("value is not JSON: {0}")]
    Json(String),
    /// JSON, but not an object.
    #[error("value must be a JSON object like {{\"IP\":\"192.168.1.26\"}}")]
    NotObject,
    /// Neither `IP`/`ip` nor `host`.
    #[error("value has no \"IP\", \"ip\" or \"host\" field")]
    NoTarget,
    /// A field has the wrong type or is out of range.
    #[error("field {field:?}: {why}")]
    Field {
        /// The field's name.
        field: &'static str,
        /// What is wrong with it.
        why: String,
    },
}

/// Why a registry entry (key and value) is skipped.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum Invalid {
    /// The key breaks the key schema.
    #[error("invalid key: {0}")]
    Key(#[from] KeyError),
    /// The value does not parse.
    #[error("invalid value: {0}")]
    Value(#[from] ValueError),
}

/// Parses one registry entry: its key (under `prefix`, names under `zone`) and its value.
pub fn parse_entry<'k>(
    prefix: &str,
    zone: &Name,
    key: &'k [u8],
    value: &[u8],
) -> Result<(ServiceKey<'k>, Registration), Invalid> {
    let key = parse_key(prefix, key, zone)?;
    Ok((key, parse_value(value)?))
}

pub(crate) fn field_error(field: &'static str, why: impl Into<String>) -> ValueError {
    ValueError::Field {
        field,
        why: why.into(),
    }
}

/// Parses one etcd value.
pub fn parse_value(value: &[u8]) -> Result<Registration, ValueError> {
    if let Some(ip) = plain_address(value) {
        return Ok(Registration::new(Target::Addr(ip)));
    }
    parse_json(value)
}

/// [`parse_value`] through a JSON tree: every shape of value.
fn parse_json(value: &[u8]) -> Result<Registration, ValueError> {
    let json: Value = serde_json::from_slice(value).map_err(|e| ValueError::Json(e.to_string()))?;
    let Value::Object(map) = json else {
        return Err(ValueError::NotObject);
    };
    let target = match (string_field(&map, "IP")?, string_field(&map, "ip")?) {
        (Some(ip), _) => Target::Addr(parse_ip("IP", ip)?),
        (None, Some(ip)) => Target::Addr(parse_ip("ip", ip)?),
        (None, None) => match string_field(&map, "host")? {
            Some(host) => parse_host(host)?,
            None => return Err(ValueError::NoTarget),
        },
    };
    Ok(Registration {
        target,
        port: u16_field(&map, "port")?,
        priority: u16_field(&map, "priority")?.unwrap_or(DEFAULT_PRIORITY),
        weight: u16_field(&map, "weight")?.unwrap_or(DEFAULT_WEIGHT),
        ttl: u32_field(&map, "ttl")?,
        txt: txt_field(&map)?,
        endpoints: Vec::new(),
        tags: tags_field(&map)?,
        zone: zone_field(&map, "zone")?,
    })
}

/// The address of a value that is exactly `{"IP":"<address>"}` (or `"ip"`), the shape nearly
/// every instance has, read without building a JSON tree: a million of them are parsed at
/// start-up. Anything else (spaces, more fields, escapes, a bad address) is `None` and goes
/// through the full parser, which gives the same answer for these.
fn plain_address(value: &[u8]) -> Option<IpAddr> {
    let text = value
        .strip_prefix(br#"{"IP":""#)
        .or_else(|| value.strip_prefix(br#"{"ip":""#))?
        .strip_suffix(br#""}"#)?;
    if text.iter().any(|&b| b == b'"' || b == b'\\') {
        return None;
    }
    std::str::from_utf8(text).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests;
