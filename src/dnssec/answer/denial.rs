//! Denials of a signed zone (compact answers, RFC 9824): the SOA's RRSIG, then one NSEC at the
//! query name and its RRSIG, cached per version of the name (or for good, for a missing name).

use super::{soa_ttls, zone_pointer, Extra};
use crate::dnssec::cache::{SigKey, Version};
use crate::dnssec::sign::{self, types, SetToSign};
use crate::dnssec::{Dnssec, ZoneSigner};
use crate::table::{Node, ZoneView};
use crate::wire::QNAME_POINTER;

impl Dnssec {
    /// The denial at `name` in `zone`: SOA RRSIG, NSEC and its RRSIG into `extra`'s authority.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn denial(
        &self,
        signer: &ZoneSigner,
        zone: &ZoneView,
        zone_at: usize,
        name: &[u8],
        node: Option<&Node>,
        now: u64,
        extra: &mut Extra,
    ) -> Option<()> {
        let start = extra.bytes.len();
        self.soa_rrsig(signer, zone, zone_at, now, &mut extra.bytes)?;
        self.nsec(signer, zone, zone_at, name, node, now, &mut extra.bytes)?;
        extra.authority = (extra.bytes.len() - start, 3);
        Some(())
    }

    /// The NSEC at `name` (the types of `node`, the apex's own, or NXNAME for a name that does
    /// not exist) and its RRSIG, both owned by a pointer to the question name, into `out`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn nsec(
        &self,
        signer: &ZoneSigner,
        zone: &ZoneView,
        zone_at: usize,
        name: &[u8],
        node: Option<&Node>,
        now: u64,
        out: &mut Vec<u8>,
    ) -> Option<bool> {
        let (soa_ttl, minimum) = soa_ttls(&zone.soa_tail);
        // RFC 9077: the lesser of the SOA's TTL and its MINIMUM.
        let ttl = soa_ttl.min(minimum);
        let (variant, version) = match (node, zone_at) {
            (Some(node), _) => (0, Version::Node(node.clone())),
            (None, 0) => (0, Version::Fixed),
            (None, _) => (1, Version::Fixed),
        };
        let key = SigKey {
            name,
            rtype: types::NSEC,
            variant,
            subset: 0,
        };
        self.cached(key, version, now, out, |out| {
            // Types of the name: its sets, the apex's own, or NXNAME for no name at all.
            let mut present: Vec<u16> = node
                .map(|n| n.rrsets().map(|s| s.rtype).collect())
                .unwrap_or_default();
            match (node, zone_at) {
                (_, 0) => present.extend_from_slice(&[types::SOA, types::NS, types::DNSKEY]),
                (None, _) => present.push(types::NXNAME),
                (Some(_), _) => {}
            }
            let rdata = sign::nsec_rdata(name, &present);
            out.extend_from_slice(&QNAME_POINTER);
            out.extend_from_slice(&types::NSEC.to_be_bytes());
            out.extend_from_slice(&1u16.to_be_bytes());
            out.extend_from_slice(&ttl.to_be_bytes());
            out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            out.extend_from_slice(&rdata);
            out.extend_from_slice(&QNAME_POINTER);
            let set = SetToSign {
                owner: name,
                rtype: types::NSEC,
                ttl,
                rdatas: vec![&rdata],
            };
            self.sign(signer, &set, now, out)?;
            Some(sign::validity(now, ttl).2)
        })
    }

    /// The RRSIG of the zone's SOA (at its serial), owned by a pointer to the zone's name.
    pub(super) fn soa_rrsig(
        &self,
        signer: &ZoneSigner,
        zone: &ZoneView,
        zone_at: usize,
        now: u64,
        out: &mut Vec<u8>,
    ) -> Option<bool> {
        out.extend_from_slice(&zone_pointer(zone_at));
        let key = SigKey {
            name: zone.name(),
            rtype: types::SOA,
            variant: 0,
            subset: 0,
        };
        self.cached(key, Version::Serial(zone.serial), now, out, |out| {
            let tail = &zone.soa_tail;
            let (ttl, _) = soa_ttls(tail);
            let set = SetToSign {
                owner: zone.name(),
                rtype: types::SOA,
                ttl,
                rdatas: vec![tail.get(10..)?],
            };
            self.sign(signer, &set, now, out)?;
            Some(sign::validity(now, ttl).2)
        })
    }
}
