//! Live-zone answers in wire format from an immutable snapshot: a hash lookup and a few
//! copies. The query path never waits on the watcher and never touches etcd.

use hickory_server::proto::op::ResponseCode;
use hickory_server::proto::rr::RecordType;

use crate::table::{Node, Snapshot, ZoneView};
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

/// What the live table holds for one question: the decision [`live_body`] and the signed
/// answers (`crate::dnssec`) both write from.
#[derive(Debug, Clone, Copy)]
pub enum Found<'a> {
    /// Not ready, stale, or not a zone of the snapshot: SERVFAIL.
    Fail,
    /// The apex SOA (asked for SOA or ANY).
    Soa(&'a ZoneView),
    /// The apex NS set.
    Ns(&'a ZoneView),
    /// No such name (below the apex).
    NxDomain(&'a ZoneView),
    /// The name exists (its node, when it has one: the apex may not) but has no set of the
    /// type asked.
    NoData(&'a ZoneView, Option<&'a Node>),
    /// A set to answer with.
    Set {
        /// The zone.
        zone: &'a ZoneView,
        /// The name's node.
        node: &'a Node,
        /// The set (of the type asked, or the name's CNAME, or one set for ANY).
        set: RRsetRef<'a>,
        /// What locality made of it.
        near: Near,
        /// The locality zone whose local set it is, when `near` is [`Near::Local`].
        local: u16,
    },
}

/// What the table holds for `name`/`qtype` under a live zone whose name starts at `zone_at`
/// in `name`; with `near`, the client's zone's instances when the name has enough of them.
#[inline(always)]
pub fn find<'a>(
    snapshot: &'a Snapshot,
    name: &[u8],
    qtype: u16,
    zone_at: usize,
    near: Option<NearClient>,
) -> Found<'a> {
    let zone = match snapshot.zone_at(name, zone_at) {
        Some(zone) if snapshot.ready && !snapshot.stale => zone,
        _ => return Found::Fail,
    };
    let apex = zone_at == 0;
    if apex && (qtype == u16::from(RecordType::SOA) || qtype == u16::from(RecordType::ANY)) {
        return Found::Soa(zone);
    }
    if apex && qtype == u16::from(RecordType::NS) {
        return Found::Ns(zone);
    }
    let Some(node) = snapshot.names.get(name) else {
        return if apex {
            Found::NoData(zone, None)
        } else {
            Found::NxDomain(zone)
        };
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
            let (set, shaped, local) = nearest(node, set, near);
            Found::Set {
                zone,
                node,
                set,
                near: shaped,
                local,
            }
        }
        Some(set) => Found::Set {
            zone,
            node,
            set,
            near: Near::Unshaped,
            local: 0,
        },
        None => Found::NoData(zone, Some(node)),
    }
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
    match find(snapshot, name, qtype, zone_at, near) {
        Found::Fail => {
            body.authoritative = false;
            body.rcode = ResponseCode::ServFail.low();
            Body::Ready(body)
        }
        Found::Soa(zone) => {
            body.answers = (&QNAME_POINTER, &zone.soa_tail, 1);
            Body::Ready(body)
        }
        Found::Ns(zone) => {
            let set = zone.ns_rrset();
            let (first, second) = set.rotated(rotate);
            body.answers = (first, second, set.count);
            Body::Ready(body)
        }
        Found::NxDomain(zone) => {
            body.rcode = ResponseCode::NXDomain.low();
            body.soa = Some((&*zone.soa_tail, zone_at));
            Body::Ready(body)
        }
        Found::NoData(zone, _) => {
            body.soa = Some((&*zone.soa_tail, zone_at));
            Body::Ready(body)
        }
        Found::Set { set, near, .. } => {
            body.near = near;
            fill(body, set, rotate, room)
        }
    }
}

/// The set to answer instead of `set` for a client `near`: its zone's, when the name keeps
/// one of that type with at least the minimum of records, else `set`; what that was, and the
/// zone of the local set.
fn nearest<'a>(
    node: &'a Node,
    set: RRsetRef<'a>,
    near: Option<NearClient>,
) -> (RRsetRef<'a>, Near, u16) {
    let Some(near) = near else {
        return (set, Near::Unshaped, 0);
    };
    match node.local_rrset(set.rtype, near.zone) {
        (Some(local), _) if local.count >= near.min => (local, Near::Local, near.zone),
        (Some(_), _) | (None, true) => (set, Near::Fallback, 0),
        (None, false) => (set, Near::Unshaped, 0),
    }
}

/// `body` with `set` in its answer and additional sections: whole and rotated when it fits
/// `room` and its records weigh the same, else left to [`Body::finish`] to choose from.
#[inline(always)]
pub fn fill<'a>(mut body: ReplyBody<'a>, set: RRsetRef<'a>, rotate: usize, room: Room) -> Body<'a> {
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
