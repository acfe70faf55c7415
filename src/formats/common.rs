//! What the path formats share: `…/<service>/<instance>` keys, `host:port` addresses,
//! metadata as TXT.

use std::borrow::Cow;
use std::net::IpAddr;

use serde_json::{Map, Value};

use crate::key::{KeyError, MAX_LABEL_LEN};
use crate::records::{Placement, Shape};
use crate::service::{field_error, parse_host, Registration, Target, ValueError};

/// The key as text, checked to lie under `prefix`.
pub(super) fn key_text<'k>(prefix: &str, key: &'k [u8]) -> Result<&'k str, KeyError> {
    let text = std::str::from_utf8(key).map_err(|_| KeyError::NotUtf8)?;
    if !text.starts_with(prefix) {
        return Err(KeyError::OutsidePrefix(prefix.to_string()));
    }
    Ok(text)
}

/// The last two segments of `key`: the service and the instance segment as written.
pub(super) fn last_two(key: &str) -> Option<(&str, &str)> {
    let (head, leaf) = key.rsplit_once('/')?;
    let service = head.rsplit('/').next().unwrap_or(head);
    Some((service, leaf))
}

/// `…/<service>/<instance>`, checked to have both segments (their labels are checked with the
/// whole placement), with `shape`; also the instance segment as written.
pub(super) fn service_and_instance<'k>(
    prefix: &str,
    key: &'k [u8],
    shape: Shape,
) -> Result<(Placement<'k>, &'k str), KeyError> {
    const LAYOUT: &str = "expected …/<service>/<instance>";
    let text = key_text(prefix, key)?;
    let (_, leaf) = last_two(text).ok_or(KeyError::Layout(LAYOUT))?;
    if leaf.is_empty() {
        return Err(KeyError::Layout(LAYOUT));
    }
    let mut placement = two_last(text);
    placement.shape = shape;
    Ok((placement, leaf))
}

/// The placement of an accepted `…/<service>/<instance>` key, without checks.
pub(super) fn two_last(key: &str) -> Placement<'_> {
    let (service, leaf) = last_two(key).unwrap_or((key, ""));
    Placement {
        service: Cow::Borrowed(service),
        instance: Some(instance_label(leaf)),
        shape: Shape::Service,
    }
}

/// An instance segment as a DNS label: every character outside `[A-Za-z0-9_-]` becomes `-`
/// (`tcp@10.0.0.1:8972` → `tcp-10-0-0-1-8972`), and of a longer one the last 63 are kept
/// (ids end in their unique part, a UUID or a lease id).
pub(super) fn instance_label(segment: &str) -> Cow<'_, str> {
    let valid = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if segment.len() <= MAX_LABEL_LEN && segment.chars().all(valid) {
        return Cow::Borrowed(segment);
    }
    let label: String = segment
        .chars()
        .map(|c| if valid(c) { c } else { '-' })
        .collect();
    Cow::Owned(label[label.len().saturating_sub(MAX_LABEL_LEN)..].to_string())
}

/// `host:port`, `[v6]:port`, or a bare host or address (no port).
pub(super) fn host_port(
    field: &'static str,
    text: &str,
) -> Result<(Target, Option<u16>), ValueError> {
    let text = text.trim();
    let bad = |why: &str| field_error(field, format!("{text:?}: {why}"));
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(|| bad("no closing ']'"))?;
        match after.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if after.is_empty() => (host, None),
            None => return Err(bad("expected [address]:port")),
        }
    } else if text.parse::<IpAddr>().is_ok() {
        // A bare IPv6 address holds colons but no port.
        (text, None)
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let port = port
        .map(|p| p.parse::<u16>().map_err(|_| bad("the port is not 0-65535")))
        .transpose()?;
    let target = parse_host(host).map_err(|_| bad("not an address or a host name"))?;
    Ok((target, port))
}

/// A registration for the `host:port` (or bare host) in `text`, named `field` in errors.
pub(super) fn endpoint(field: &'static str, text: &str) -> Result<Registration, ValueError> {
    let (target, port) = host_port(field, text)?;
    let mut registration = Registration::new(target);
    registration.port = port;
    Ok(registration)
}

/// The value as a JSON object.
pub(super) fn object(value: &[u8]) -> Result<Map<String, Value>, ValueError> {
    match serde_json::from_slice(value) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ValueError::Json("expected a JSON object".into())),
        Err(e) => Err(ValueError::Json(e.to_string())),
    }
}

/// A string field (`None` when absent or null; an error for another type).
pub(super) fn string<'a>(
    map: &'a Map<String, Value>,
    field: &'static str,
) -> Result<Option<&'a str>, ValueError> {
    crate::service::string_field(map, field)
}

/// The tags of a value's single tag-like string (a version, a dubbo `Tag`, an rpcx group):
/// none when empty. Tags that are not DNS labels (`1.4.0`) are kept and not published.
pub(super) fn one_tag(tag: Option<&str>) -> Vec<Box<str>> {
    tag.map(str::trim)
        .filter(|t| !t.is_empty())
        .map(Box::from)
        .into_iter()
        .collect()
}

/// `k=v` TXT strings from `pairs` (a version first, then a metadata object's string values, in
/// key order); what does not fit a TXT string (255 bytes) or is not a string is left out:
/// metadata is informative, never a reason to drop an instance.
pub(super) fn metadata_txt(version: Option<&str>, pairs: Option<&Value>) -> Vec<String> {
    let mut txt: Vec<String> = version
        .filter(|v| !v.is_empty())
        .map(|v| format!("version={v}"))
        .into_iter()
        .collect();
    if let Some(Value::Object(map)) = pairs {
        let mut items: Vec<String> = map
            .iter()
            .filter_map(|(k, v)| v.as_str().map(|v| format!("{k}={v}")))
            .collect();
        items.sort();
        txt.extend(items);
    }
    txt.retain(|t| t.len() <= 255);
    txt
}
