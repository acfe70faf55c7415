//! Live-zone answers in wire format from an immutable snapshot: a hash lookup and a few
//! copies. The query path never waits on the watcher and never touches etcd.

use hickory_server::proto::op::ResponseCode;
use hickory_server::proto::rr::RecordType;

use crate::table::Snapshot;
use crate::wire::{ReplyBody, QNAME_POINTER};

/// The reply body for `name`/`qtype` under a live zone, whose name starts at `zone_at` in
/// `name`. `rotate` picks the first record of multi-record sets so that successive answers
/// spread clients over instances.
pub fn live_body<'a>(
    snapshot: &'a Snapshot,
    name: &[u8],
    qtype: u16,
    zone_at: usize,
    rotate: usize,
) -> ReplyBody<'a> {
    let mut body = ReplyBody {
        authoritative: true,
        ..ReplyBody::default()
    };
    let zone = match snapshot.zone_at(name, zone_at) {
        Some(zone) if snapshot.ready && !snapshot.stale => zone,
        _ => {
            body.authoritative = false;
            body.rcode = ResponseCode::ServFail.low();
            return body;
        }
    };
    let soa = Some((&*zone.soa_tail, zone_at));
    let apex = zone_at == 0;
    if apex && (qtype == u16::from(RecordType::SOA) || qtype == u16::from(RecordType::ANY)) {
        body.answers = (&QNAME_POINTER, &zone.soa_tail, 1);
        return body;
    }
    if apex && qtype == u16::from(RecordType::NS) {
        let set = zone.ns_rrset();
        let (first, second) = set.rotated(rotate);
        body.answers = (first, second, set.count);
        return body;
    }
    let Some(node) = snapshot.names.get(name) else {
        if !apex {
            body.rcode = ResponseCode::NXDomain.low();
        }
        body.soa = soa;
        return body;
    };
    let set = if qtype == u16::from(RecordType::ANY) {
        // RFC 8482: one RRset, never the whole name.
        node.rrsets().next()
    } else {
        node.rrset(qtype)
            // A name with a CNAME answers every other type with it (RFC 1034 §3.6.2).
            .or_else(|| node.rrset(RecordType::CNAME.into()))
    };
    match set {
        Some(set) => {
            let (first, second) = set.rotated(rotate);
            body.answers = (first, second, set.count);
            body.additional = (set.extra, set.extra_count);
        }
        None => body.soa = soa,
    }
    body
}

/// Where the zone starts in `name`, if `name` is in a live zone.
pub fn in_zone(snapshot: &Snapshot, name: &[u8]) -> Option<usize> {
    snapshot.zone_of(name).map(|(at, _)| at)
}

/// The reply body for a PTR query at `name`, a reverse name outside the zone, when the table
/// holds PTR records there (addresses of registered instances); `None` otherwise.
pub fn ptr_body<'a>(snapshot: &'a Snapshot, name: &[u8], rotate: usize) -> Option<ReplyBody<'a>> {
    let set = snapshot.names.get(name)?.rrset(RecordType::PTR.into())?;
    let (first, second) = set.rotated(rotate);
    Some(ReplyBody {
        authoritative: true,
        answers: (first, second, set.count),
        ..ReplyBody::default()
    })
}
