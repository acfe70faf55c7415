//! etcd key ⇄ DNS name: the registry's key schema and DNS label rules (pure).
//!
//! `P<service>` is the one-instance form and `P<service>/<instance>` one of several instances.
//! `<service>` may hold dots (`api.v2`); `<instance>` is a single label.

use hickory_proto::rr::Name;
use thiserror::Error;

/// Longest DNS label, RFC 1035 §2.3.4.
pub const MAX_LABEL_LEN: usize = 63;
/// Longest name in presentation form without the trailing dot (RFC 1035 allows 255 octets on the
/// wire, which is 253 characters written out).
pub const MAX_NAME_LEN: usize = 253;

/// Why a key cannot become a DNS name.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum KeyError {
    /// The key is not valid UTF-8.
    #[error("key is not UTF-8")]
    NotUtf8,
    /// The key does not start with the watched prefix.
    #[error("key is outside the prefix {0:?}")]
    OutsidePrefix(String),
    /// Nothing follows the prefix.
    #[error("empty service name")]
    Empty,
    /// More than one `/` after the prefix.
    #[error("too many '/' segments (expected <service> or <service>/<instance>)")]
    TooDeep,
    /// A label breaks the rules of [`check_label`].
    #[error("invalid label {label:?}: {why}")]
    Label {
        /// The offending label.
        label: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The key does not have the layout its registry format writes.
    #[error("{0}")]
    Layout(&'static str),
    /// The DNS name the key maps to is longer than DNS allows.
    #[error("name {0:?} is longer than {MAX_NAME_LEN} characters")]
    TooLong(String),
}

/// A registry key split into its DNS parts, borrowed from the etcd key as written (names built
/// from it are lowercased: DNS matching is case-insensitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceKey<'a> {
    /// `<service>`: one or more dot-separated labels.
    pub service: &'a str,
    /// `<instance>` for the several-instances form, `None` for `P<service>`.
    pub instance: Option<&'a str>,
}

/// The SRV protocol labels every service with a port is published under.
pub const SRV_PROTOCOLS: [&str; 2] = ["_tcp", "_udp"];

/// Checks one label: 1–63 characters of `[A-Za-z0-9_-]`.
pub fn check_label(label: &str) -> Result<(), KeyError> {
    let why = if label.is_empty() {
        "empty label"
    } else if label.len() > MAX_LABEL_LEN {
        "longer than 63 characters"
    } else if !label
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        "only letters, digits, '_' and '-' are allowed"
    } else {
        return Ok(());
    };
    Err(KeyError::Label {
        label: label.to_string(),
        why,
    })
}

/// The dot-separated labels of `name`: `str::split('.')` by a plain byte search, several
/// times cheaper on names this short (this runs several times for every key of the initial
/// read).
pub fn labels(name: &str) -> impl Iterator<Item = &str> + Clone {
    let mut rest = Some(name);
    std::iter::from_fn(move || {
        let text = rest?;
        match text.bytes().position(|b| b == b'.') {
            Some(at) => {
                rest = text.get(at + 1..);
                text.get(..at)
            }
            None => {
                rest = None;
                Some(text)
            }
        }
    })
}

/// Splits `key` (which must start with `prefix`) into service and instance, checking the label
/// rules and that every name it implies under `zone` fits in 253 characters.
pub fn parse_key<'a>(prefix: &str, key: &'a [u8], zone: &Name) -> Result<ServiceKey<'a>, KeyError> {
    let key = std::str::from_utf8(key).map_err(|_| KeyError::NotUtf8)?;
    let rest = key
        .strip_prefix(prefix)
        .ok_or_else(|| KeyError::OutsidePrefix(prefix.to_string()))?;
    if rest.is_empty() {
        return Err(KeyError::Empty);
    }
    let mut parts = rest.split('/');
    let service = parts.next().unwrap_or_default();
    let instance = parts.next();
    if parts.next().is_some() {
        return Err(KeyError::TooDeep);
    }
    for label in labels(service) {
        check_label(label)?;
    }
    if let Some(instance) = instance {
        check_label(instance)?;
    }
    // The SRV names start with the label `_<first label>`, which must fit in 63 too.
    let first = labels(service).next().unwrap_or_default();
    if first.len() >= MAX_LABEL_LEN {
        return Err(KeyError::Label {
            label: first.to_string(),
            why: "longer than 62 characters (`_` and it make the SRV label)",
        });
    }
    let parsed = ServiceKey { service, instance };
    // Lengths in presentation form without the final dot, counted rather than formatted: this
    // runs for every key of the initial read. The zone adds ".<zone>" unless it is the root.
    let zone_len: usize = zone.iter().map(|label| label.len() + 1).sum();
    let owner_len = instance.map_or(0, |i| i.len() + 1) + service.len() + zone_len;
    let srv_len = 1 + service.len() + ".".len() + "_tcp".len() + zone_len;
    if owner_len > MAX_NAME_LEN {
        return Err(KeyError::TooLong(parsed.owner_text(zone)));
    }
    if srv_len > MAX_NAME_LEN {
        return Err(KeyError::TooLong(parsed.srv_text(zone)));
    }
    Ok(parsed)
}

impl<'a> ServiceKey<'a> {
    /// Splits a key that [`parse_key`] accepted, without checking it again (the table keeps
    /// only the etcd key of an instance and derives its names from it when needed).
    pub fn split(prefix: &str, key: &'a str) -> Self {
        let rest = key.strip_prefix(prefix).unwrap_or(key);
        match rest.split_once('/') {
            Some((service, instance)) => Self {
                service,
                instance: Some(instance),
            },
            None => Self {
                service: rest,
                instance: None,
            },
        }
    }

    fn owner_text(&self, zone: &Name) -> String {
        let service = self.service.to_ascii_lowercase();
        match self.instance {
            Some(instance) => format!(
                "{}.{service}.{}",
                instance.to_ascii_lowercase(),
                zone_text(zone)
            ),
            None => format!("{service}.{}", zone_text(zone)),
        }
    }

    fn srv_text(&self, zone: &Name) -> String {
        let service = self.service.to_ascii_lowercase();
        format!("_{service}.{}.{}", SRV_PROTOCOLS[0], zone_text(zone))
    }
}

/// The zone in presentation form with its trailing dot ("" for the root).
fn zone_text(zone: &Name) -> String {
    let text = zone.to_ascii();
    if text == "." {
        String::new()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::Placement;
    use crate::testing::{text, zone};

    #[test]
    fn labels_split_as_str_split_does() {
        for name in ["", "a", "a.b", "web.v2.x", ".a", "a.", "a..b"] {
            let want: Vec<&str> = name.split('.').collect();
            assert_eq!(labels(name).collect::<Vec<_>>(), want, "{name:?}");
        }
    }

    #[test]
    fn keys_map_to_names() {
        // key → (owner, service, SRV name over TCP)
        let cases: &[(&str, &str, &str, &str)] = &[
            (
                "services/s-test",
                "s-test.services.local.",
                "s-test.services.local.",
                "_s-test._tcp.services.local.",
            ),
            (
                "services/S-Test",
                "s-test.services.local.",
                "s-test.services.local.",
                "_s-test._tcp.services.local.",
            ),
            (
                "services/api.v2/Node1",
                "node1.api.v2.services.local.",
                "api.v2.services.local.",
                "_api.v2._tcp.services.local.",
            ),
            (
                "services/web/_a",
                "_a.web.services.local.",
                "web.services.local.",
                "_web._tcp.services.local.",
            ),
        ];
        let zone_wire = crate::wire::wire_name(&zone());
        for (key, owner, service, srv) in cases {
            let parsed = parse_key("services/", key.as_bytes(), &zone()).expect(key);
            assert_eq!(parsed, ServiceKey::split("services/", key), "{key}");
            assert_eq!(
                text(&Placement::from(parsed).owner_name(&zone_wire)),
                *owner,
                "{key}"
            );
            assert_eq!(
                text(&Placement::from(parsed).service_name(&zone_wire)),
                *service,
                "{key}"
            );
            assert_eq!(
                text(&Placement::from(parsed).srv_name("_tcp", &zone_wire)),
                *srv,
                "{key}"
            );
        }
    }

    #[test]
    fn rejects_bad_keys() {
        let long = format!("services/{}", "a".repeat(64));
        let too_long_name = format!("services/{}", ["abcdefghij"; 24].join("."));
        type Check = fn(&KeyError) -> bool;
        let cases: &[(&[u8], Check)] = &[
            (b"other/x", |e| matches!(e, KeyError::OutsidePrefix(_))),
            (b"services/", |e| *e == KeyError::Empty),
            (b"services/a/b/c", |e| *e == KeyError::TooDeep),
            (b"services/a..b", |e| matches!(e, KeyError::Label { .. })),
            (b"services/a b", |e| matches!(e, KeyError::Label { .. })),
            (b"services/a/", |e| matches!(e, KeyError::Label { .. })),
            (b"services/a/b.c", |e| matches!(e, KeyError::Label { .. })),
            (b"services/\xff", |e| *e == KeyError::NotUtf8),
            (long.as_bytes(), |e| matches!(e, KeyError::Label { .. })),
            (too_long_name.as_bytes(), |e| {
                matches!(e, KeyError::TooLong(_))
            }),
        ];
        for (key, check) in cases {
            let err = parse_key("services/", key, &zone()).expect_err("must fail");
            assert!(check(&err), "{:?}: {err}", String::from_utf8_lossy(key));
        }
    }

    #[test]
    fn longest_name_is_253_characters() {
        // `_<service>._tcp.services.local` is the longest name a one-label-deeper key implies.
        let service = |last: usize| {
            format!(
                "services/{}.{}.{}.{}",
                "a".repeat(62),
                "b".repeat(63),
                "c".repeat(63),
                "d".repeat(last)
            )
        };
        let fits = service(41);
        assert!(parse_key("services/", fits.as_bytes(), &zone()).is_ok());
        let over = service(42);
        let err = parse_key("services/", over.as_bytes(), &zone()).expect_err("254 characters");
        assert!(
            matches!(err, KeyError::TooLong(ref name) if name.trim_end_matches('.').len() == 254)
        );
    }

    /// Found by the key_value fuzzer: a first service label of 63 characters made the SRV
    /// name `_<label>._tcp.Z` start with a 64-octet label, which is no DNS name (its length
    /// byte reads as an extended label type).
    #[test]
    fn the_srv_label_fits_too() {
        let key = |first: usize| format!("services/{}.b/n1", "a".repeat(first));
        let zone_wire = crate::wire::wire_name(&zone());
        let longest = key(62);
        let fits = parse_key("services/", longest.as_bytes(), &zone()).expect("62 characters");
        let srv = Placement::from(fits).srv_name("_tcp", &zone_wire);
        assert_eq!(srv[0], 63, "`_` and 62 characters");
        let err = parse_key("services/", key(63).as_bytes(), &zone()).expect_err("63 characters");
        assert!(
            matches!(&err, KeyError::Label { label, .. } if label.len() == 63),
            "{err}"
        );
        // An instance label has no SRV name of its own: 63 characters are fine there.
        let instance = format!("services/web/{}", "i".repeat(63));
        assert!(parse_key("services/", instance.as_bytes(), &zone()).is_ok());
    }

    #[test]
    fn root_zone_works() {
        let parsed = parse_key("s/", b"s/web", &Name::root()).expect("key");
        assert_eq!(text(&Placement::from(parsed).owner_name(&[0])), "web.");
    }
}
