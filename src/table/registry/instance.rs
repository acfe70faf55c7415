//! One instance as the writer keeps it: its etcd key (inline when short), its registry and
//! its registration, the common one (an IPv4 address and nothing else) kept in 4 bytes
//! instead of 88: 48 bytes for most instances, with no allocation of their own.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr};

use crate::service::{Registration, Target};

/// One valid registration, under its etcd key as written (its DNS names are derived from the
/// key when needed rather than stored).
#[derive(Debug, Clone)]
pub(super) struct Instance {
    /// The etcd key as written.
    etcd_key: Key,
    /// Index of its registry in [`crate::sources::Live::sources`].
    pub(super) source: u16,
    registration: Stored,
}

/// Longest etcd key kept inside the instance (`services/web/instance-12`, say).
const INLINE_KEY: usize = 22;

/// An etcd key, inline when short: a million keys then cost no allocation each.
#[derive(Debug, Clone)]
enum Key {
    Inline { len: u8, bytes: [u8; INLINE_KEY] },
    Heap(Box<str>),
}

const _: () = assert!(std::mem::size_of::<Instance>() == 48);

/// A registration, compact when it is only an IPv4 address: a million instances are held at
/// once, nearly all of that shape.
#[derive(Debug, Clone)]
enum Stored {
    /// [`Registration::new`] of this address: every other field at its default.
    V4(Ipv4Addr),
    /// Any other registration.
    Full(Box<Registration>),
}

impl Instance {
    /// The instance `etcd_key` of registry `source`, registered as `registration`.
    pub(super) fn new(etcd_key: &str, source: u16, registration: Registration) -> Self {
        // Storage must give every field back, so it compares with the default registration
        // (a field added to `Registration` takes part through `PartialEq`);
        // `Registration::address_only` answers another question — which records — and lets
        // a TTL or SRV fields through.
        let registration = match registration.target {
            Target::Addr(IpAddr::V4(ip))
                if registration == Registration::new(Target::Addr(ip.into())) =>
            {
                Stored::V4(ip)
            }
            _ => Stored::Full(Box::new(registration)),
        };
        let etcd_key = match u8::try_from(etcd_key.len()) {
            Ok(len) if etcd_key.len() <= INLINE_KEY => {
                let mut bytes = [0; INLINE_KEY];
                bytes[..etcd_key.len()].copy_from_slice(etcd_key.as_bytes());
                Key::Inline { len, bytes }
            }
            _ => Key::Heap(etcd_key.into()),
        };
        Self {
            etcd_key,
            source,
            registration,
        }
    }

    /// Its etcd key.
    pub(super) fn etcd_key(&self) -> &str {
        match &self.etcd_key {
            // Copied from a `str` whole: always UTF-8.
            Key::Inline { len, bytes } => {
                std::str::from_utf8(bytes.get(..*len as usize).unwrap_or_default())
                    .unwrap_or_default()
            }
            Key::Heap(key) => key,
        }
    }

    /// Its registration (built again for the compact shape: no allocation).
    pub(super) fn registration(&self) -> Cow<'_, Registration> {
        match &self.registration {
            Stored::V4(ip) => Cow::Owned(Registration::new(Target::Addr((*ip).into()))),
            Stored::Full(registration) => Cow::Borrowed(registration),
        }
    }
}

/// The etcd key of instance `id` ("" for a free slot).
pub(super) fn etcd_key_of(slab: &[Option<Instance>], id: u32) -> &str {
    slab.get(id as usize)
        .and_then(Option::as_ref)
        .map_or("", Instance::etcd_key)
}

/// True when instance `id` is `etcd_key` of registry `source` (overlapping prefixes of two
/// registries see the same key as two instances).
pub(super) fn is_instance(
    slab: &[Option<Instance>],
    id: u32,
    source: usize,
    etcd_key: &str,
) -> bool {
    slab.get(id as usize)
        .and_then(Option::as_ref)
        .is_some_and(|inst| inst.source as usize == source && inst.etcd_key() == etcd_key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::parse_value;

    /// Every registration comes back as it went in, compact or not.
    #[test]
    fn registrations_come_back_unchanged() {
        let values = [
            r#"{"IP":"10.0.0.1"}"#,
            r#"{"IP":"10.0.0.1","ttl":30}"#,
            r#"{"IP":"10.0.0.1","port":80}"#,
            r#"{"IP":"10.0.0.1","priority":1}"#,
            r#"{"IP":"10.0.0.1","txt":["a"]}"#,
            r#"{"ip":"2001:db8::1"}"#,
            r#"{"host":"db.example.com"}"#,
        ];
        for value in values {
            let registration = parse_value(value.as_bytes()).expect("value");
            for key in ["services/x", "services/a-service-name/an-instance-name"] {
                let instance = Instance::new(key, 0, registration.clone());
                assert_eq!(*instance.registration(), registration, "{value}");
                assert_eq!(instance.etcd_key(), key);
            }
        }
        let plain = Instance::new("k", 0, parse_value(br#"{"IP":"10.0.0.1"}"#).expect("v"));
        assert!(matches!(plain.registration, Stored::V4(_)));
    }
}
