//! Registry formats (pure): how each framework's etcd key and value become an instance.
//!
//! One module per format maps `(key, value)` to a [`Placement`] (the instance's names under
//! its zone) and a [`Registration`] (its records), or to nothing for a key the framework
//! writes that is no instance (a marker key, a disabled instance), or to the reason it is
//! invalid. `place` derives the same placement again from an accepted key alone, so that the
//! table keeps only the key.

mod common;
mod dubbo;
mod etcd_naming;
mod go_micro;
mod go_zero;
mod kratos;
mod rpcx;
mod skydns;

use std::fmt;
use std::str::FromStr;

use hickory_proto::rr::Name;

use crate::key::ServiceKey;
use crate::records::{Placement, Shape};
use crate::service::{parse_entry, Invalid, Registration};

/// What one registry entry is: an instance, nothing to answer (`None`), or invalid.
pub type Parsed<'k> = Result<Option<(Placement<'k>, Registration)>, Invalid>;

/// A registry format: who writes the keys under a prefix, and so how to read them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// etcd-dns's own: `P<service>[/<instance>]` = `{"IP":…}` (docs/REGISTRIES.md).
    Native,
    /// etcd's naming/endpoints API and gRPC's etcd resolver: `<target>/<key>` =
    /// `{"Op":0,"Addr":"ip:port"}`.
    EtcdNaming,
    /// go-zero's discov: `<Key>/<lease id>` = `ip:port`.
    GoZero,
    /// Kratos: `/microservices/<name>/<id>` = `{"endpoints":["grpc://ip:port",…]}`.
    Kratos,
    /// go-micro: `/micro/registry/<service>/<node id>` = `{"nodes":[{"address":"ip:port"}]}`.
    GoMicro,
    /// SkyDNS as CoreDNS's etcd plugin and external-dns write it: `/skydns/<reversed name>` =
    /// `{"host":…,"port":…,"text":…}`.
    Skydns,
    /// rpcx: `<base>/<service>/tcp@ip:port` = URL-query metadata.
    Rpcx,
    /// dubbo-go application-level discovery: `/services/<app>/<ip>:<port>` =
    /// `{"Host":…,"Port":…,"Enable":true,"Healthy":true}`.
    Dubbo,
}

impl Format {
    /// Every format, in the order `--help` lists them.
    pub const ALL: [Format; 8] = [
        Format::Native,
        Format::EtcdNaming,
        Format::GoZero,
        Format::Kratos,
        Format::GoMicro,
        Format::Skydns,
        Format::Rpcx,
        Format::Dubbo,
    ];

    /// The name `--registry` knows it by.
    pub fn name(self) -> &'static str {
        match self {
            Format::Native => "native",
            Format::EtcdNaming => "etcd-naming",
            Format::GoZero => "go-zero",
            Format::Kratos => "kratos",
            Format::GoMicro => "go-micro",
            Format::Skydns => "skydns",
            Format::Rpcx => "rpcx",
            Format::Dubbo => "dubbo",
        }
    }

    /// Reads one entry of a registry of this format under `prefix`, served in `zone`.
    pub fn parse<'k>(self, prefix: &str, zone: &Name, key: &'k [u8], value: &[u8]) -> Parsed<'k> {
        let parsed = match self {
            Format::Native => {
                let (key, registration) = parse_entry(prefix, zone, key, value)?;
                return Ok(Some((key.into(), registration)));
            }
            Format::EtcdNaming => etcd_naming::parse(prefix, key, value),
            Format::GoZero => go_zero::parse(prefix, key, value),
            Format::Kratos => kratos::parse(prefix, key, value),
            Format::GoMicro => go_micro::parse(prefix, key, value),
            Format::Skydns => skydns::parse(prefix, zone, key, value),
            Format::Rpcx => rpcx::parse(prefix, key, value),
            Format::Dubbo => dubbo::parse(prefix, key, value),
        }?;
        let zone_len = zone.iter().map(|label| label.len() + 1).sum();
        match parsed {
            Some((placement, registration)) => {
                placement.check(&registration, zone_len)?;
                Ok(Some((placement, registration)))
            }
            None => Ok(None),
        }
    }

    /// The placement [`Format::parse`] gave for `key`, derived again from the key alone
    /// (`zone_labels`: the number of labels of the zone).
    pub fn place<'k>(self, prefix: &str, zone_labels: usize, key: &'k str) -> Placement<'k> {
        match self {
            Format::Native => ServiceKey::split(prefix, key).into(),
            Format::Skydns => skydns::place(prefix, zone_labels, key),
            Format::Kratos => Placement {
                shape: Shape::Endpoints,
                ..common::two_last(key)
            },
            _ => common::two_last(key),
        }
    }

    /// The key range a registry of this format under `prefix` is read and watched by: the
    /// prefix, except for SkyDNS, whose keys spell the zone out (`/skydns/local/skydns`).
    pub fn range(self, prefix: &str, zone: &Name) -> String {
        match self {
            Format::Skydns => skydns::range(prefix, zone),
            _ => prefix.to_string(),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(text))
            .ok_or_else(|| {
                let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
                format!(
                    "unknown registry format {text:?}: one of {}",
                    names.join(", ")
                )
            })
    }
}

#[cfg(test)]
mod tests;
