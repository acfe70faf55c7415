//! One instance as the writer keeps it: its etcd key, its registry and its registration, the
//! common one (an IPv4 address and nothing else) kept in 4 bytes instead of 88.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr};

use crate::service::{Registration, Target};

/// One valid registration, under its etcd key as written (its DNS names are derived from the
/// key when needed rather than stored).
#[derive(Debug, Clone)]
pub(super) struct Instance {
    /// The etcd key as written.
    pub(super) etcd_key: Box<str>,
    /// Index of its registry in [`crate::sources::Live::sources`].
    pub(super) source: u16,
    registration: Stored,
}

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
    pub(super) fn new(etcd_key: Box<str>, source: u16, registration: Registration) -> Self {
        let registration = match registration.target {
            Target::Addr(IpAddr::V4(ip))
                if registration == Registration::new(Target::Addr(ip.into())) =>
            {
                Stored::V4(ip)
            }
            _ => Stored::Full(Box::new(registration)),
        };
        Self {
            etcd_key,
            source,
            registration,
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
        .map_or("", |inst| &inst.etcd_key)
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
        .is_some_and(|inst| inst.source as usize == source && &*inst.etcd_key == etcd_key)
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
            let instance = Instance::new("services/x".into(), 0, registration.clone());
            assert_eq!(*instance.registration(), registration, "{value}");
        }
        let plain = Instance::new(
            "k".into(),
            0,
            parse_value(br#"{"IP":"10.0.0.1"}"#).expect("v"),
        );
        assert!(matches!(plain.registration, Stored::V4(_)));
    }
}
