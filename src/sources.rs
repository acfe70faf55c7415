//! The registries the live table is fed from (`--registry FORMAT=PREFIX[@ZONE]`, repeatable)
//! and the zones they feed: several registries may feed one zone (it answers their union),
//! each zone has its own apex and SOA serial.

use std::str::FromStr;
use std::sync::Arc;

use hickory_proto::rr::Name;
use thiserror::Error;

use crate::formats::Format;
use crate::zone::{StaticRecords, ZoneConfig};

/// The native registry's prefix unless `--prefix` or `--registry` says otherwise.
pub const DEFAULT_PREFIX: &str = "services/";

/// One `--registry` as written: `kratos=/microservices/@kratos.local.`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrySpec {
    /// Who writes the keys.
    pub format: Format,
    /// The etcd key prefix they are written under.
    pub prefix: String,
    /// The zone their names go to; `None` for `--zone`.
    pub zone: Option<Name>,
}

impl RegistrySpec {
    /// The native registry under `prefix`, feeding `--zone` (what `--prefix` means).
    pub fn native(prefix: &str) -> Self {
        Self {
            format: Format::Native,
            prefix: prefix.into(),
            zone: None,
        }
    }
}

impl FromStr for RegistrySpec {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (format, rest) = text
            .split_once('=')
            .ok_or_else(|| format!("{text:?}: expected FORMAT=PREFIX[@ZONE]"))?;
        let format: Format = format.trim().parse()?;
        let (prefix, zone) = match rest.rsplit_once('@') {
            Some((prefix, zone)) => {
                let mut zone = Name::from_ascii(zone.trim())
                    .map_err(|e| format!("{text:?}: bad zone {zone:?}: {e}"))?;
                zone.set_fqdn(true);
                (prefix, Some(zone))
            }
            None => (rest, None),
        };
        let mut prefix = prefix.to_string();
        // A SkyDNS root is a directory: `/skydns` and `/skydns/` are the same path.
        if format == Format::Skydns && !prefix.ends_with('/') {
            prefix.push('/');
        }
        Ok(Self {
            format,
            prefix,
            zone,
        })
    }
}

/// One registry the watcher reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Who writes the keys.
    pub format: Format,
    /// The key prefix, as the format reads keys against it.
    pub prefix: String,
    /// The key range read and watched (see [`Format::range`]).
    pub range: String,
    /// Index of its zone in [`Live::zones`].
    pub zone: usize,
}

/// The live zones and the registries feeding them: what the table serves.
#[derive(Debug, Clone)]
pub struct Live {
    /// The zones, `--zone` first when a registry feeds it.
    pub zones: Vec<Arc<ZoneConfig>>,
    /// The registries, in `--registry` order.
    pub sources: Vec<Source>,
    /// The zones locality tells apart (`--locality`), by zone id: A, AAAA and SRV sets of a
    /// service keep each one's instances apart too.
    pub localities: Vec<Box<str>>,
    /// Changes kept per zone for IXFR (`--ixfr-history`); 0 keeps none.
    pub ixfr_history: usize,
    /// Serials an earlier run served (`--serial-file`), continued by the first read.
    pub saved_serials: Vec<crate::table::saved::SavedSerial>,
}

/// Registries that cannot be served together.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum SourceError {
    /// One zone lies inside another: which one answers a name would depend on the order.
    #[error("zone {inner} lies inside zone {outer}: live zones must not nest")]
    Nested {
        /// The enclosing zone.
        outer: String,
        /// The zone inside it.
        inner: String,
    },
}

impl Live {
    /// The one native registry [`DEFAULT_PREFIX`] feeding `config.zone` (tests, examples,
    /// the fuzzing harness).
    pub fn native(config: ZoneConfig) -> Self {
        let source = Source {
            format: Format::Native,
            range: DEFAULT_PREFIX.into(),
            prefix: DEFAULT_PREFIX.into(),
            zone: 0,
        };
        Self {
            zones: vec![Arc::new(config)],
            sources: vec![source],
            localities: Vec::new(),
            ixfr_history: 0,
            saved_serials: Vec::new(),
        }
    }

    /// The zones and sources of `specs` (none: [`Live::native`]). Every zone takes `main`'s
    /// TTLs, and `statics(zone)` as its zone file's records unless `main` brings its own.
    pub fn new(
        main: ZoneConfig,
        specs: &[RegistrySpec],
        mut statics: impl FnMut(&Name) -> Option<Arc<StaticRecords>>,
    ) -> Result<Self, SourceError> {
        if specs.is_empty() {
            let spec = RegistrySpec::native(DEFAULT_PREFIX);
            return Self::new(main, &[spec], statics);
        }
        let mut zones: Vec<Arc<ZoneConfig>> = Vec::new();
        let mut sources = Vec::new();
        for spec in specs {
            let name = spec.zone.clone().unwrap_or_else(|| main.zone.clone());
            let zone = match zones.iter().position(|z| z.zone == name) {
                Some(at) => at,
                None => {
                    let config = ZoneConfig {
                        statics: match &main.statics {
                            Some(own) if name == main.zone => Some(own.clone()),
                            _ => statics(&name),
                        },
                        zone: name.clone(),
                        ..main.clone()
                    };
                    zones.push(Arc::new(config));
                    zones.len() - 1
                }
            };
            sources.push(Source {
                format: spec.format,
                range: spec.format.range(&spec.prefix, &name),
                prefix: spec.prefix.clone(),
                zone,
            });
        }
        for outer in &zones {
            for inner in &zones {
                if outer.zone != inner.zone && outer.zone.zone_of(&inner.zone) {
                    return Err(SourceError::Nested {
                        outer: outer.zone.to_ascii(),
                        inner: inner.zone.to_ascii(),
                    });
                }
            }
        }
        Ok(Self {
            zones,
            sources,
            localities: Vec::new(),
            ixfr_history: 0,
            saved_serials: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{name, zone};

    fn main_zone() -> ZoneConfig {
        ZoneConfig::new(zone())
    }

    #[test]
    fn flags_parse() {
        let cases: &[(&str, Format, &str, Option<&str>)] = &[
            ("native=services/", Format::Native, "services/", None),
            (
                "kratos=/microservices/@kratos.local",
                Format::Kratos,
                "/microservices/",
                Some("kratos.local."),
            ),
            (
                "skydns=/skydns@skydns.local.",
                Format::Skydns,
                "/skydns/",
                Some("skydns.local."),
            ),
            ("go-zero=", Format::GoZero, "", None),
            (
                "GO-MICRO=/micro/registry/",
                Format::GoMicro,
                "/micro/registry/",
                None,
            ),
        ];
        for (text, format, prefix, zone) in cases {
            let spec: RegistrySpec = text.parse().expect(text);
            assert_eq!(spec.format, *format, "{text}");
            assert_eq!(spec.prefix, *prefix, "{text}");
            assert_eq!(spec.zone, zone.map(name), "{text}");
        }
        for bad in ["services/", "nacos=/nacos/", "native=x@bad..zone"] {
            assert!(bad.parse::<RegistrySpec>().is_err(), "{bad}");
        }
    }

    #[test]
    fn registries_group_into_zones() {
        let specs: Vec<RegistrySpec> = [
            "native=services/",
            "go-zero=rpc/",
            "skydns=/skydns/@skydns.local.",
            "kratos=/microservices/@skydns.local.",
        ]
        .iter()
        .map(|s| s.parse().expect(s))
        .collect();
        let live = Live::new(main_zone(), &specs, |_| None).expect("live");
        let zones: Vec<String> = live.zones.iter().map(|z| z.zone.to_ascii()).collect();
        assert_eq!(zones, ["services.local.", "skydns.local."]);
        let sources: Vec<(&str, usize)> = live
            .sources
            .iter()
            .map(|s| (s.range.as_str(), s.zone))
            .collect();
        assert_eq!(
            sources,
            [
                ("services/", 0),
                ("rpc/", 0),
                ("/skydns/local/skydns", 1),
                ("/microservices/", 1)
            ]
        );
        let native = Live::new(main_zone(), &[], |_| None).expect("native");
        assert_eq!(native.sources.len(), 1);
        assert_eq!(native.sources[0].format, Format::Native);

        let nested: Vec<RegistrySpec> = ["native=a/@x.services.local.", "native=b/"]
            .iter()
            .map(|s| s.parse().expect(s))
            .collect();
        let err = Live::new(main_zone(), &nested, |_| None).expect_err("nested");
        assert!(err.to_string().contains("must not nest"), "{err}");
    }
}
