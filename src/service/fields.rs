//! The fields of a JSON value, each read with the error that names it (shared with the
//! registry formats).

use std::net::IpAddr;

use hickory_proto::rr::Name;
use serde_json::{Map, Value};

use super::{field_error, Target, ValueError};

pub(crate) fn string_field<'a>(
    map: &'a Map<String, Value>,
    field: &'static str,
) -> Result<Option<&'a str>, ValueError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(other) => Err(field_error(
            field,
            format!("expected a string, got {other}"),
        )),
    }
}

pub(crate) fn parse_ip(field: &'static str, text: &str) -> Result<IpAddr, ValueError> {
    text.trim()
        .parse()
        .map_err(|_| field_error(field, format!("{text:?} is not an IPv4 or IPv6 address")))
}

pub(crate) fn parse_host(text: &str) -> Result<Target, ValueError> {
    if let Ok(ip) = text.trim().parse::<IpAddr>() {
        return Ok(Target::Addr(ip));
    }
    let mut name = Name::from_ascii(text.trim())
        .map_err(|e| field_error("host", format!("{text:?} is not a host name: {e}")))?;
    if name.is_root() || name.num_labels() == 0 {
        return Err(field_error("host", "empty host name"));
    }
    name.set_fqdn(true);
    Ok(Target::Host(Box::new(name)))
}

pub(crate) fn u64_field(
    map: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<u64>, ValueError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| field_error(field, format!("{n} is not a whole number ≥ 0"))),
        Some(other) => Err(field_error(
            field,
            format!("expected a number, got {other}"),
        )),
    }
}

pub(crate) fn u16_field(
    map: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<u16>, ValueError> {
    u64_field(map, field)?
        .map(|n| u16::try_from(n).map_err(|_| field_error(field, format!("{n} is above 65535"))))
        .transpose()
}

pub(crate) fn u32_field(
    map: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<u32>, ValueError> {
    u64_field(map, field)?
        .map(|n| {
            // RFC 2181 §8: TTLs are 31-bit.
            u32::try_from(n)
                .ok()
                .filter(|n| *n <= i32::MAX as u32)
                .ok_or_else(|| field_error(field, format!("{n} is above 2147483647")))
        })
        .transpose()
}

/// `tags` is a list of strings (a single string is one tag).
pub(super) fn tags_field(map: &Map<String, Value>) -> Result<Vec<Box<str>>, ValueError> {
    match map.get("tags") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(tag)) => Ok(vec![tag.as_str().into()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(tag) => Ok(tag.as_str().into()),
                other => Err(field_error(
                    "tags",
                    format!("expected a string, got {other}"),
                )),
            })
            .collect(),
        Some(other) => Err(field_error(
            "tags",
            format!("expected a list of strings, got {other}"),
        )),
    }
}

/// A failure-domain field: a string, trimmed; empty means none.
pub(crate) fn zone_field(
    map: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<Box<str>>, ValueError> {
    Ok(string_field(map, field)?
        .map(str::trim)
        .filter(|zone| !zone.is_empty())
        .map(Box::from))
}

/// `txt` is an object of strings (`{"k":"v"}` → `k=v`) or a list of strings.
pub(super) fn txt_field(map: &Map<String, Value>) -> Result<Vec<String>, ValueError> {
    let strings = match map.get("txt") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(pairs)) => pairs
            .iter()
            .map(|(k, v)| match v {
                Value::String(v) => Ok(format!("{k}={v}")),
                other => Err(field_error(
                    "txt",
                    format!("{k:?}: expected a string, got {other}"),
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(field_error(
                    "txt",
                    format!("expected a string, got {other}"),
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(field_error(
                "txt",
                format!("expected an object or a list of strings, got {other}"),
            ))
        }
    };
    // A TXT character-string holds at most 255 octets.
    if let Some(long) = strings.iter().find(|s| s.len() > 255) {
        return Err(field_error(
            "txt",
            format!("{long:?} is longer than 255 bytes"),
        ));
    }
    Ok(strings)
}
