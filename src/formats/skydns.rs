//! SkyDNS, as CoreDNS's etcd plugin reads it and external-dns's CoreDNS provider writes it.
//!
//! A name is a path: `x1.web.east.skydns.local.` is `/skydns/local/skydns/east/web/x1` (the
//! `path` root, then the labels in reverse), and its value `{"host","port","priority",
//! "weight","text","ttl",…}`. Keys are usually written without a lease (external-dns writes and
//! deletes them; a lease's expiry removes them like a delete). As CoreDNS answers: a name
//! answers for its own entry and for every entry below it (so `web.east…` gives x1's and x2's
//! addresses); an address host gives A/AAAA, a host name a CNAME at the entry's own name (and
//! the SRV target), a host name or no host with `text` gives TXT instead; a port gives SRV
//! (targets: the host name, or the entry's own name with its address in the additional
//! section). Weights default to 100 and are not rescaled per priority (the same proportions).
//! `mail`, `targetstrip`, `group` and wildcards are not read.

use std::borrow::Cow;
use std::net::IpAddr;

use hickory_proto::rr::Name;
use serde_json::Value;

use super::common::{key_text, object, string};
use super::Parsed;
use crate::key::KeyError;
use crate::records::{Placement, Shape};
use crate::service::{field_error, parse_host, u16_field, u32_field, Registration, Target};

/// SRV weight when the value names none, as CoreDNS counts it.
pub const DEFAULT_WEIGHT: u16 = 100;

/// The key range of `zone` under the root `prefix`: `/skydns/` and `skydns.local.` give
/// `/skydns/local/skydns` (which also holds the zone's own entry, without a final `/`).
pub(super) fn range(prefix: &str, zone: &Name) -> String {
    let mut range = prefix.to_string();
    let labels: Vec<String> = zone
        .iter()
        .rev()
        .map(|l| String::from_utf8_lossy(l).to_ascii_lowercase())
        .collect();
    range.push_str(&labels.join("/"));
    range
}

/// Reads `<root>/<reversed name>` = `{"host":…,…}`; an entry outside `zone` is not ours.
pub(super) fn parse<'k>(prefix: &str, zone: &Name, key: &'k [u8], value: &[u8]) -> Parsed<'k> {
    let text = key_text(prefix, key)?;
    let segments: Vec<&str> = text[prefix.len()..].split('/').collect();
    let zone_labels: Vec<&[u8]> = zone.iter().rev().collect();
    let in_zone = segments.len() >= zone_labels.len()
        && zone_labels
            .iter()
            .zip(&segments)
            .all(|(z, s)| z.eq_ignore_ascii_case(s.as_bytes()));
    if !in_zone {
        return Ok(None);
    }
    if segments.len() == zone_labels.len() {
        return Err(KeyError::Layout("an entry for the zone apex itself is not served").into());
    }
    let placement = place(prefix, zone_labels.len(), text);
    let map = object(value)?;
    let host = string(&map, "host")?.unwrap_or_default().trim();
    let txt = string(&map, "text")?.unwrap_or_default();
    if txt.len() > 255 {
        return Err(field_error("text", "longer than 255 bytes").into());
    }
    let target = match (host.parse::<IpAddr>(), host.is_empty(), txt.is_empty()) {
        (Ok(ip), _, _) => Target::Addr(ip),
        (Err(_), false, true) => parse_host(host)?,
        (Err(_), _, false) => Target::None,
        (Err(_), true, true) => return Err(field_error("host", "no host and no text").into()),
    };
    let mut registration = Registration::new(target);
    if registration.target == Target::None {
        registration.txt = vec![txt.to_string()];
    }
    // `port` -1 (or anything below 1) means no SRV, as the kubernetes plugin writes it.
    registration.port = match map.get("port") {
        Some(Value::Number(n)) if n.as_i64().is_some_and(|p| p < 1) => None,
        _ => u16_field(&map, "port")?,
    };
    registration.priority = u16_field(&map, "priority")?.unwrap_or(registration.priority);
    registration.weight = u16_field(&map, "weight")?
        .filter(|w| *w > 0)
        .unwrap_or(DEFAULT_WEIGHT);
    registration.ttl = u32_field(&map, "ttl")?.filter(|t| *t > 0);
    Ok(Some((placement, registration)))
}

/// The placement of an accepted key: its labels after the zone's, owner first.
pub(super) fn place<'k>(prefix: &str, zone_labels: usize, key: &'k str) -> Placement<'k> {
    let rest = key.get(prefix.len()..).unwrap_or_default();
    let mut labels: Vec<&str> = rest.split('/').skip(zone_labels).collect();
    labels.reverse();
    let (instance, service) = match labels.split_first() {
        Some((first, rest)) if !rest.is_empty() => (Some(Cow::Borrowed(*first)), rest.join(".")),
        _ => (None, labels.join(".")),
    };
    Placement {
        service: Cow::Owned(service),
        instance,
        shape: Shape::Tree,
    }
}

#[cfg(test)]
mod tests {
    use crate::formats::tests::check;
    use crate::formats::Format;

    #[test]
    fn skydns_as_coredns_reads_it() {
        // CoreDNS's etcd plugin tests (msg.Service as JSON) and external-dns's provider.
        check(
            Format::Skydns,
            "/skydns/",
            "skydns.test.",
            &[
                (
                    "/skydns/test/skydns/east/web/x1",
                    r#"{"host":"10.0.0.1"}"#,
                    "x1.web.east.skydns.test. 10.0.0.1 srv=10/100",
                ),
                (
                    "/skydns/test/skydns/bar/x",
                    r#"{"host":"192.168.0.1","port":80,"targetstrip":1}"#,
                    "x.bar.skydns.test. 192.168.0.1:80 srv=10/100",
                ),
                (
                    "/skydns/test/skydns/bar/y",
                    r#"{"host":"bar.skydns.local","port":443}"#,
                    "y.bar.skydns.test. bar.skydns.local.:443 srv=10/100",
                ),
                (
                    "/skydns/test/skydns/region5/server1/100",
                    r#"{"host":"server1","weight":130}"#,
                    "100.server1.region5.skydns.test. server1. srv=10/130",
                ),
                (
                    "/skydns/test/skydns/region5/server4/104",
                    r#"{"host":"server4","priority":30}"#,
                    "104.server4.region5.skydns.test. server4. srv=30/100",
                ),
                (
                    "/skydns/test/skydns/txt/a1",
                    r#"{"text":"abc"}"#,
                    "a1.txt.skydns.test. - srv=10/100 txt=abc",
                ),
                (
                    "/skydns/test/skydns/ttl",
                    r#"{"host":"10.0.0.2","ttl":360}"#,
                    "ttl.skydns.test. 10.0.0.2 srv=10/100 ttl=360",
                ),
                (
                    "/skydns/test/skydns/k8s/svc",
                    r#"{"host":"10.0.0.3","port":-1}"#,
                    "svc.k8s.skydns.test. 10.0.0.3 srv=10/100",
                ),
                // external-dns: a random last label, targetstrip 1, the owner in text (not served
                // as TXT next to an address, as CoreDNS does).
                (
                    "/skydns/test/skydns/www/1a2b3c4d",
                    r#"{"host":"10.0.0.4","text":"\"heritage=external-dns,external-dns/owner=default\"","targetstrip":1}"#,
                    "1a2b3c4d.www.skydns.test. 10.0.0.4 srv=10/100",
                ),
                // A host name with text is TXT, not CNAME (CoreDNS's HostType).
                (
                    "/skydns/test/skydns/both",
                    r#"{"host":"x.example.com","text":"t"}"#,
                    "both.skydns.test. - srv=10/100 txt=t",
                ),
                (
                    "/skydns/test/skydns/UPPER",
                    r#"{"host":"127.0.0.1","port":443}"#,
                    "upper.skydns.test. 127.0.0.1:443 srv=10/100",
                ),
                // Another zone's entry is not ours.
                (
                    "/skydns/com/example/www",
                    r#"{"host":"10.0.0.5"}"#,
                    "ignored",
                ),
                (
                    "/skydns/test/skydnsx/www",
                    r#"{"host":"10.0.0.5"}"#,
                    "ignored",
                ),
                (
                    "/skydns/test/skydns",
                    r#"{"host":"10.0.0.6"}"#,
                    "invalid: zone apex",
                ),
                (
                    "/skydns/test/skydns/*/x",
                    r#"{"host":"10.0.0.7"}"#,
                    "invalid: invalid label",
                ),
                (
                    "/skydns/test/skydns/empty",
                    r#"{"port":80}"#,
                    "invalid: no host and no text",
                ),
                (
                    "/skydns/test/skydns/big",
                    r#"{"host":"10.0.0.8","port":70000}"#,
                    "invalid: above 65535",
                ),
            ],
        );
    }
}
