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
#[derive(Debug, Error, PartialEq, Eq)]
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
    /// The DNS name the key maps to is longer than DNS allows.
    #[error("name {0:?} is longer than {MAX_NAME_LEN} characters")]
    TooLong(String),
}

/// A registry key split into its DNS parts, labels lowercased (DNS matching is case-insensitive).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServiceKey {
    /// `<service>`: one or more dot-separated labels.
    pub service: String,
    /// `<instance>` for the several-instances form, `None` for `P<service>`.
    pub instance: Option<String>,
}

/// A key's service and instance, borrowed from the etcd key as written (not lowercased).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyParts<'a> {
    /// `<service>`: one or more dot-separated labels.
    pub service: &'a str,
    /// `<instance>`, in the several-instances form.
    pub instance: Option<&'a str>,
}

/// Splits a key that [`parse_key`] accepted into its parts, without checking it again.
pub fn key_parts<'a>(prefix: &str, key: &'a str) -> KeyParts<'a> {
    let rest = key.strip_prefix(prefix).unwrap_or(key);
    match rest.split_once('/') {
        Some((service, instance)) => KeyParts {
            service,
            instance: Some(instance),
        },
        None => KeyParts {
            service: rest,
            instance: None,
        },
    }
}

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

/// Splits `key` (which must start with `prefix`) into service and instance, checking the label
/// rules and that the resulting name under `zone` fits in 253 characters.
pub fn parse_key(prefix: &str, key: &[u8], zone: &Name) -> Result<ServiceKey, KeyError> {
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
    for label in service.split('.') {
        check_label(label)?;
    }
    if let Some(instance) = instance {
        check_label(instance)?;
    }
    let parsed = ServiceKey {
        service: service.to_ascii_lowercase(),
        instance: instance.map(str::to_ascii_lowercase),
    };
    // Lengths in presentation form without the final dot, counted rather than formatted: this
    // runs for every key of the initial read. The zone adds ".<zone>" unless it is the root.
    let zone_len: usize = zone.iter().map(|label| label.len() + 1).sum();
    let owner_len = instance.map_or(0, |i| i.len() + 1) + service.len() + zone_len;
    let srv_len = 1 + service.len() + ".".len() + "_tcp".len() + zone_len;
    if owner_len > MAX_NAME_LEN {
        return Err(KeyError::TooLong(parsed.owner_text(zone)));
    }
    if srv_len > MAX_NAME_LEN {
        return Err(KeyError::TooLong(parsed.srv_text("_tcp", zone)));
    }
    Ok(parsed)
}

impl ServiceKey {
    /// The name that carries this instance alone: `<instance>.<service>.Z`, or `<service>.Z` for
    /// the one-instance form.
    pub fn owner_name(&self, zone: &Name) -> Name {
        name_under(&self.owner_text(zone), &Name::root())
    }

    fn owner_text(&self, zone: &Name) -> String {
        match &self.instance {
            Some(instance) => format!("{instance}.{}.{}", self.service, zone_text(zone)),
            None => format!("{}.{}", self.service, zone_text(zone)),
        }
    }

    fn srv_text(&self, proto: &str, zone: &Name) -> String {
        format!("_{}.{proto}.{}", self.service, zone_text(zone))
    }
}

/// The zone in presentation form with its trailing dot ("." for the root).
fn zone_text(zone: &Name) -> String {
    let text = zone.to_ascii();
    if text == "." {
        String::new()
    } else {
        text
    }
}

/// Builds `relative.zone.`. The labels were checked by [`parse_key`], so this cannot fail for
/// names that came through it; anything else falls back to the zone itself.
fn name_under(relative: &str, zone: &Name) -> Name {
    let text = if zone.is_root() {
        format!("{}.", relative.trim_end_matches('.'))
    } else {
        format!("{}.{}", relative.trim_end_matches('.'), zone_text(zone))
    };
    Name::from_ascii(&text).unwrap_or_else(|_| zone.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone() -> Name {
        Name::from_ascii("services.local.").expect("zone")
    }

    #[test]
    fn parses_both_forms() {
        let cases: &[(&str, &str, Option<&str>, &str)] = &[
            ("services/s-test", "s-test", None, "s-test.services.local."),
            ("services/S-Test", "s-test", None, "s-test.services.local."),
            (
                "services/api.v2/node1",
                "api.v2",
                Some("node1"),
                "node1.api.v2.services.local.",
            ),
            (
                "services/web/_a",
                "web",
                Some("_a"),
                "_a.web.services.local.",
            ),
        ];
        for (key, service, instance, owner) in cases {
            let parsed = parse_key("services/", key.as_bytes(), &zone()).expect(key);
            assert_eq!(parsed.service, *service, "{key}");
            assert_eq!(parsed.instance.as_deref(), *instance, "{key}");
            assert_eq!(parsed.owner_name(&zone()).to_ascii(), *owner, "{key}");
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
                "a".repeat(63),
                "b".repeat(63),
                "c".repeat(63),
                "d".repeat(last)
            )
        };
        let fits = service(40);
        assert!(parse_key("services/", fits.as_bytes(), &zone()).is_ok());
        let over = service(41);
        let err = parse_key("services/", over.as_bytes(), &zone()).expect_err("254 characters");
        assert!(
            matches!(err, KeyError::TooLong(ref name) if name.trim_end_matches('.').len() == 254)
        );
    }

    #[test]
    fn root_zone_works() {
        let parsed = parse_key("s/", b"s/web", &Name::root()).expect("key");
        assert_eq!(parsed.owner_name(&Name::root()).to_ascii(), "web.");
    }
}
