//! Live-zone answers in wire format from an immutable snapshot: a hash lookup and a few
//! copies. The query path never waits on the watcher and never touches etcd.

use hickory_server::proto::op::ResponseCode;
use hickory_server::proto::rr::RecordType;

use crate::table::Snapshot;
use crate::wire::pick::{pick, Picks};
use crate::wire::spread::SpreadRef;
use crate::wire::{Near, RRsetRef, ReplyBody, QNAME_POINTER};

/// A reply body, or one still to be completed with records chosen from a large or weighted
/// set: only then does the router take its thread's scratch space (the common answer does not
/// pay for it).
#[derive(Debug)]
pub enum Body<'a> {
    /// Complete.
    Ready(ReplyBody<'a>),
    /// Complete once [`Body::finish`] has chosen the records of `set`.
    Pick {
        /// Everything but the answer and additional sections.
        body: ReplyBody<'a>,
        /// The set to choose from.
        set: RRsetRef<'a>,
        /// Its spread.
        spread: SpreadRef<'a>,
    },
}

impl<'a> Body<'a> {
    /// The complete body, choosing records into `picks` if needed.
    pub fn finish(self, rotate: usize, room: Room, picks: &'a mut Picks) -> ReplyBody<'a> {
        match self {
            Body::Ready(body) => body,
            Body::Pick {
                mut body,
                set,
                spread,
            } => {
                let picked = pick(set, spread, room.bytes, room.records, rotate, picks);
                let picks: &'a Picks = picks;
                body.answers = (&picks.answers, &[], picked.answers);
                body.additional = (&picks.extra, picked.extra);
                body.cut = picked.cut;
                body
            }
        }
    }
}

/// The client's zone for locality (`--locality`), as the router found it.
#[derive(Debug, Clone, Copy)]
pub struct NearClient {
    /// Its zone id, or [`crate::records::NO_ZONE`] when no network maps it.
    pub zone: u16,
    /// Fewest instances of its zone that make an answer local (`--locality-min`).
    pub min: u16,
}

impl<'a> Body<'a> {
    /// The body before completion: for the router to add what it knows (the ECS scope).
    pub fn head_mut(&mut self) -> &mut ReplyBody<'a> {
        match self {
            Body::Ready(body) | Body::Pick { body, .. } => body,
        }
    }
}

/// How much of a large or weighted set one answer may carry.
#[derive(Debug, Clone, Copy)]
pub struct Room {
    /// Bytes the answer and additional sections may take (the transport's limit less header,
    /// question and OPT).
    pub bytes: usize,
    /// Most answer records (`--max-answers`; `usize::MAX` for no cap).
    pub records: usize,
}

/// The reply body for `name`/`qtype` under a live zone, whose name starts at `zone_at` in
/// `name`. A set that fits `room` whole and has equal weights is answered whole, `rotate`
/// picking its first record so that successive answers spread clients over instances; any
/// other is left to [`Body::finish`], which answers with the records [`pick`] chooses. With
/// `near`, a name with instances in the client's zone (at least its minimum) answers with
/// those.
pub fn live_body<'a>(
    snapshot: &'a Snapshot,
    name: &[u8],
    qtype: u16,
    zone_at: usize,
    rotate: usize,
    room: Room,
    near: Option<NearClient>,
) -> Body<'a> {
    let mut body = ReplyBody {
        authoritative: true,
        ..ReplyBody::default()
    };
    let zone = match snapshot.zone_at(name, zone_at) {
        Some(zone) if snapshot.ready && !snapshot.stale => zone,
        _ => {
            body.authoritative = false;
            body.rcode = ResponseCode::ServFail.low();
            return Body::Ready(body);
        }
    };
    let soa = Some((&*zone.soa_tail, zone_at));
    let apex = zone_at == 0;
    if apex && (qtype == u16::from(RecordType::SOA) || qtype == u16::from(RecordType::ANY)) {
        body.answers = (&QNAME_POINTER, &zone.soa_tail, 1);
        return Body::Ready(body);
    }
    if apex && qtype == u16::from(RecordType::NS) {
        let set = zone.ns_rrset();
        let (first, second) = set.rotated(rotate);
        body.answers = (first, second, set.count);
        return Body::Ready(body);
    }
    let Some(node) = snapshot.names.get(name) else {
        if !apex {
            body.rcode = ResponseCode::NXDomain.low();
        }
        body.soa = soa;
        return Body::Ready(body);
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
        Some(set) if near.is_some() && set.rtype == qtype && set.count > 1 => {
            let (set, near) = nearest(node, set, near);
            body.near = near;
            fill(body, set, rotate, room)
        }
        Some(set) => fill(body, set, rotate, room),
        None => {
            body.soa = soa;
            Body::Ready(body)
        }
    }
}

/// The set to answer instead of `set` for a client `near`: its zone's, when the name keeps
/// one of that type with at least the minimum of records, else `set`; and what that was.
fn nearest<'a>(
    node: &'a crate::table::Node,
    set: RRsetRef<'a>,
    near: Option<NearClient>,
) -> (RRsetRef<'a>, Near) {
    let Some(near) = near else {
        return (set, Near::Unshaped);
    };
    match node.local_rrset(set.rtype, near.zone) {
        (Some(local), _) if local.count >= near.min => (local, Near::Local),
        (Some(_), _) | (None, true) => (set, Near::Fallback),
        (None, false) => (set, Near::Unshaped),
    }
}

/// `body` with `set` in its answer and additional sections: whole and rotated when it fits
/// `room` and its records weigh the same, else left to [`Body::finish`] to choose from.
#[inline(always)]
fn fill<'a>(mut body: ReplyBody<'a>, set: RRsetRef<'a>, rotate: usize, room: Room) -> Body<'a> {
    let whole =
        set.rrs.len() + set.extra.len() <= room.bytes && usize::from(set.count) <= room.records;
    match SpreadRef::new(set.spread) {
        Some(spread) if !whole || spread.weighted() => Body::Pick { body, set, spread },
        _ => {
            let (first, second) = set.rotated(rotate);
            body.answers = (first, second, set.count);
            body.additional = (set.extra, set.extra_count);
            Body::Ready(body)
        }
    }
}

/// Where the zone starts in `name`, if `name` is in a live zone.
#[inline]
pub fn in_zone(snapshot: &Snapshot, name: &[u8]) -> Option<usize> {
    snapshot.zone_of(name).map(|(at, _)| at)
}

/// The reply body for a PTR query at `name`, a reverse name outside the zone, when the table
/// holds PTR records there (addresses of registered instances); `None` otherwise.
pub fn ptr_body<'a>(
    snapshot: &'a Snapshot,
    name: &[u8],
    rotate: usize,
    room: Room,
) -> Option<Body<'a>> {
    let set = snapshot.names.get(name)?.rrset(RecordType::PTR.into())?;
    let body = ReplyBody {
        authoritative: true,
        ..ReplyBody::default()
    };
    Some(fill(body, set, rotate, room))
}
