//! Static zone files compiled for the fast path: every answer a file can give — positive,
//! NODATA and NXDOMAIN with the SOA, CNAME chains inside the zone, wildcards, referrals with
//! glue — encoded once at start, so a query costs a hash lookup (a few for a name that is not
//! there) and a few copies, as in the live zone. Answers are Knot's, field by field.
//!
//! Zone transfers of static zones and classes other than IN (and ANY) are refused by the router.

use std::collections::HashMap;

use hickory_server::proto::op::ResponseCode;
use hickory_server::proto::rr::RecordType;

use tracing::info;

use crate::table::FastHash;
use crate::wire::pick::Cut;
use crate::wire::{ReplyBody, WireName};

mod compile;

/// Static zones in the order they were loaded.
#[derive(Debug, Default)]
pub struct StaticZones {
    zones: Vec<StaticZone>,
}

/// One zone file, compiled.
#[derive(Debug)]
pub struct StaticZone {
    /// The origin, lowercase wire form.
    origin: WireName,
    /// Answers by name.
    compiled: Compiled,
}

/// A zone's names and the answers they give.
#[derive(Debug)]
struct Compiled {
    /// Node index by lowercase wire name: every owner of the file, and every name between
    /// an owner and the origin (empty non-terminals).
    index: HashMap<WireName, u32, FastHash>,
    nodes: Vec<Node>,
    /// The SOA for negative answers after its owner name (TTL: the smaller of the SOA's TTL
    /// and its MINIMUM, RFC 2308 §3).
    negative_soa: Box<[u8]>,
    /// The answer to a name that does not exist.
    nxdomain: Prepared,
}

/// What one name answers.
#[derive(Debug, Default)]
struct Node {
    /// Answers by QTYPE, sorted by type.
    by_type: Box<[(u16, Prepared)]>,
    /// The answer to any other QTYPE: NODATA, a CNAME chain, or a referral.
    otherwise: Prepared,
    /// The answer to QTYPE ANY (RFC 8482: one RRset, the lowest type, as Knot).
    any: Option<u16>,
    /// At or below a delegation: names under it are answered with `otherwise` (the referral).
    delegated: bool,
    /// The node of `*.<this name>`, whose answers stand for names under this one that do not
    /// exist (RFC 4592).
    wildcard: Option<u32>,
}

/// One answer, encoded: records owned by the question name start with a pointer to it, the
/// others carry their owner in full.
#[derive(Debug, Default, Clone)]
struct Prepared {
    rcode: u8,
    authoritative: bool,
    answers: Box<[u8]>,
    answer_count: u16,
    /// The zone's negative SOA in the authority section.
    soa: bool,
    /// Other authority records (a referral's NS set).
    authority: Box<[u8]>,
    authority_count: u16,
    additional: Box<[u8]>,
    additional_count: u16,
}

impl StaticZones {
    /// Compiles `files`.
    pub fn compile(files: &[super::zones::ZoneFile]) -> Self {
        let zones = files
            .iter()
            .map(|file| {
                let zone = compile::zone(file);
                info!(
                    zone = %file.origin,
                    file = %file.path.display(),
                    rrsets = file.records.len(),
                    names = zone.compiled.nodes.len(),
                    "serving static zone"
                );
                zone
            })
            .collect();
        Self { zones }
    }

    /// The zone `name` (lowercase wire form) is in, and where its origin starts in `name`.
    pub fn find(&self, name: &[u8]) -> Option<(usize, usize)> {
        self.zones
            .iter()
            .enumerate()
            .find_map(|(i, zone)| crate::wire::zone_offset(name, &zone.origin).map(|at| (i, at)))
    }

    /// The reply body to `name`/`qtype` in zone `zone` (as [`StaticZones::find`] gave it, the
    /// origin starting at `zone_at` in `name`).
    pub fn body(&self, zone: usize, name: &[u8], qtype: u16, zone_at: usize) -> ReplyBody<'_> {
        match self.zones.get(zone) {
            Some(zone) => {
                let compiled = &zone.compiled;
                compiled
                    .answer(name, qtype, zone_at)
                    .body(compiled, zone_at)
            }
            // Not a zone `find` gave: nothing to answer from.
            None => ReplyBody {
                rcode: ResponseCode::ServFail.low(),
                ..ReplyBody::default()
            },
        }
    }
}

impl Compiled {
    /// The prepared answer to `name`/`qtype`.
    fn answer(&self, name: &[u8], qtype: u16, zone_at: usize) -> &Prepared {
        if let Some(&at) = self.index.get(name) {
            return self.nodes[at as usize].pick(qtype);
        }
        // The closest encloser: the longest existing name above `name` (the origin at worst).
        let mut at = 0;
        while at < zone_at {
            at += 1 + name[at] as usize;
            let Some(&found) = self.index.get(&name[at..]) else {
                continue;
            };
            let node = &self.nodes[found as usize];
            if node.delegated {
                return &node.otherwise;
            }
            return match node.wildcard {
                Some(wildcard) => self.nodes[wildcard as usize].pick(qtype),
                None => &self.nxdomain,
            };
        }
        &self.nxdomain
    }
}

impl Node {
    fn pick(&self, qtype: u16) -> &Prepared {
        if qtype == u16::from(RecordType::ANY) {
            if let Some(any) = self.any {
                return &self.by_type[any as usize].1;
            }
        }
        match self.by_type.binary_search_by_key(&qtype, |(t, _)| *t) {
            Ok(i) => &self.by_type[i].1,
            Err(_) => &self.otherwise,
        }
    }
}

impl Prepared {
    fn body<'a>(&'a self, zone: &'a Compiled, zone_at: usize) -> ReplyBody<'a> {
        ReplyBody {
            rcode: self.rcode,
            authoritative: self.authoritative,
            answers: (&self.answers, &[], self.answer_count),
            soa: self.soa.then_some((&*zone.negative_soa, zone_at)),
            authority: (&self.authority, self.authority_count),
            additional: (&self.additional, self.additional_count),
            cut: Cut::None,
            near: crate::wire::Near::Unshaped,
            ecs_scope: None,
        }
    }
}

#[cfg(test)]
mod tests;
