//! Where an instance's records go under its zone: the names a registry format reads from a
//! key, and the DNS names built from them (pure).

use std::borrow::Cow;

use crate::key::{check_label, labels, KeyError, ServiceKey, MAX_NAME_LEN};
use crate::service::Registration;

/// How a format lays out the names of an instance around its service name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// The native layout: SRV at `<service>.Z` and `_<service>._tcp/_udp.Z` from the port.
    Service,
    /// Kratos: SRV per endpoint scheme at `_<scheme>._tcp.<service>.Z`, none at the service.
    Endpoints,
    /// SkyDNS: the entry's own name answers for it (SRV included), and every name above it
    /// inside the zone answers for the whole subtree, as CoreDNS does.
    Tree,
}

/// The names of one instance relative to its zone: `<instance>.<service>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement<'k> {
    /// `<service>`: one or more dot-separated labels.
    pub service: Cow<'k, str>,
    /// `<instance>`, a single label, when the instance has a name of its own.
    pub instance: Option<Cow<'k, str>>,
    /// How SRV names and parents are laid out.
    pub shape: Shape,
}

impl<'k> From<ServiceKey<'k>> for Placement<'k> {
    fn from(key: ServiceKey<'k>) -> Self {
        Self {
            service: Cow::Borrowed(key.service),
            instance: key.instance.map(Cow::Borrowed),
            shape: Shape::Service,
        }
    }
}

impl Placement<'_> {
    /// Checks the label rules and that every name `reg` implies fits in 253 characters under a
    /// zone written in `zone_len` characters (with its trailing dot, 0 for the root).
    pub fn check(&self, reg: &Registration, zone_len: usize) -> Result<(), KeyError> {
        for label in labels(&self.service).chain(self.instance.as_deref()) {
            check_label(label)?;
        }
        let service_len = self.service.len() + 1 + zone_len;
        let owner_len = self.instance.as_ref().map_or(0, |i| i.len() + 1) + service_len;
        let srv_len = match self.shape {
            Shape::Service if reg.port.is_some() => 1 + "_tcp.".len() + service_len,
            Shape::Endpoints => reg
                .endpoints
                .iter()
                .map(|e| 2 + e.scheme.len() + "_tcp.".len() + service_len)
                .max()
                .unwrap_or(0),
            _ => 0,
        };
        // Presentation form without the final dot.
        let longest = owner_len.max(srv_len).saturating_sub(1);
        if longest > MAX_NAME_LEN {
            let name = match &self.instance {
                Some(instance) => format!("{instance}.{}", self.service),
                None => self.service.to_string(),
            };
            return Err(KeyError::TooLong(name));
        }
        Ok(())
    }

    /// `<instance>.<service>.Z` (or `<service>.Z` without an instance), lowercase wire form
    /// after `zone` (wire form too).
    pub fn owner_name(&self, zone: &[u8]) -> Vec<u8> {
        join_labels(
            self.instance
                .as_deref()
                .into_iter()
                .chain(labels(&self.service)),
            zone,
        )
    }

    /// `<service>.Z`.
    pub fn service_name(&self, zone: &[u8]) -> Vec<u8> {
        join_labels(labels(&self.service), zone)
    }

    /// `_<service>.<proto>.Z`, the native SRV name.
    pub fn srv_name(&self, proto: &str, zone: &[u8]) -> Vec<u8> {
        let mut labels = self.service.split('.');
        let first = format!("_{}", labels.next().unwrap_or_default());
        join_labels(
            std::iter::once(first.as_str()).chain(labels).chain([proto]),
            zone,
        )
    }

    /// `_<service>._<tag>….Z`, the name of the instances carrying every tag of `tags` (each a
    /// label already), like the native SRV name with tags for the protocol.
    pub fn tag_name(&self, tags: &[&str], zone: &[u8]) -> Vec<u8> {
        let mut labels = self.service.split('.');
        let first = format!("_{}", labels.next().unwrap_or_default());
        let tags: Vec<String> = tags.iter().map(|t| format!("_{t}")).collect();
        join_labels(
            std::iter::once(first.as_str())
                .chain(labels)
                .chain(tags.iter().map(String::as_str)),
            zone,
        )
    }

    /// `_<scheme>._tcp.<service>.Z`, the SRV name of one endpoint.
    pub fn endpoint_name(&self, scheme: &str, zone: &[u8]) -> Vec<u8> {
        let first = format!("_{scheme}");
        join_labels(
            [first.as_str(), "_tcp"]
                .into_iter()
                .chain(self.service.split('.')),
            zone,
        )
    }
}

/// The wire name of `labels` (already valid), lowercased, followed by `zone` (wire form).
fn join_labels<'l>(labels: impl Iterator<Item = &'l str> + Clone, zone: &[u8]) -> Vec<u8> {
    // Sized exactly, copied a label at a time and lowercased in one pass: this runs for every
    // key of the initial read.
    let size = labels.clone().map(|l| 1 + l.len()).sum::<usize>() + zone.len();
    let mut out = Vec::with_capacity(size);
    for label in labels {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.make_ascii_lowercase();
    out.extend_from_slice(zone);
    out
}
