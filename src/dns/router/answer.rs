//! The synchronous answer: a parsed plain query on its route written into the reply buffer,
//! with what shaped it (a large set cut, locality).

use std::net::SocketAddr;
use std::time::Instant;

use hickory_server::net::xfer::Protocol;
use hickory_server::proto::op::ResponseCode;
use hickory_server::proto::rr::RecordType;

use super::{next_rotation, Answer, Pending, Route, Shaped, PICKS};
use crate::dns::live::{self, Body, NearClient, Room};
use crate::dns::locality::Locality;
use crate::dns::reply::{Limit, EDNS_PAYLOAD};
use crate::dns::statics::StaticZones;
use crate::dnssec::{Dnssec, ZoneSigner};
use crate::records::NO_ZONE;
use crate::table::Snapshot;
use crate::wire::{self, Near, ReplyBody, WireQuery, HEADER_LEN, OPT_LEN};

/// True when the table holds PTR records at `name`.
pub(super) fn has_ptr(snapshot: &Snapshot, name: &[u8]) -> bool {
    snapshot
        .names
        .get(name)
        .is_some_and(|node| node.rrset(RecordType::PTR.into()).is_some())
}

/// Where the client of `query` from `src` is for `locality`, and whether its Client Subnet
/// was read (then echoed with `scope`).
#[derive(Debug, Clone, Copy)]
pub(super) struct NearQuery {
    client: NearClient,
    ecs: bool,
    scope: u8,
}

/// The client of `query` from `src` as `locality` sees it.
pub(super) fn near_client(
    locality: &Locality,
    query: &WireQuery<'_>,
    src: SocketAddr,
) -> NearQuery {
    let (ip, ecs) = locality.client_address(src.ip(), query.edns.and_then(|e| e.ecs));
    let client = locality.client(ip);
    NearQuery {
        client: NearClient {
            zone: client.zone.unwrap_or(NO_ZONE),
            min: locality.min,
        },
        ecs,
        scope: client.scope,
    }
}

/// Writes the reply to `query` on `route` into `out`, or says who else must answer; with
/// whether records of a large set were left out, and why, and what locality (`near`) made of
/// it. `max_answers` caps the records of one answer.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(super) fn answer_query(
    snapshot: &Snapshot,
    statics: &StaticZones,
    dnssec: Option<&Dnssec>,
    query: &WireQuery<'_>,
    route: Route,
    protocol: Protocol,
    max_answers: usize,
    near: Option<NearQuery>,
    mut out: Vec<u8>,
) -> (Answer, Shaped) {
    let limit = Limit::from_wire(query.edns, protocol);
    let ecs = match near {
        Some(near) if near.ecs => wire::ecs_len(query),
        _ => 0,
    };
    let opt = if query.edns.is_some() {
        OPT_LEN + ecs
    } else {
        0
    };
    let room = Room {
        bytes: limit
            .size
            .saturating_sub(HEADER_LEN + query.question.len() + opt),
        records: max_answers,
    };
    let rotate = next_rotation();
    let write = |out: &mut Vec<u8>, body: &ReplyBody<'_>| {
        wire::write_reply(out, query, body, EDNS_PAYLOAD, limit.size, limit.stream);
        body.cut
    };
    if let (Route::Live(zone_at), Some(dnssec)) = (route, dnssec) {
        if let Some(signer) = signs(dnssec, snapshot, query, zone_at) {
            let shape = PICKS.with_borrow_mut(|picks| {
                let client = near.map(|n| n.client);
                dnssec.answer(
                    signer,
                    snapshot,
                    query,
                    zone_at,
                    rotate,
                    room,
                    client,
                    picks,
                    |body| {
                        if let Some(near) = near {
                            echo_scope(near, body);
                        }
                        write(&mut out, body);
                    },
                )
            });
            if shape.compact_ok {
                wire::set_edns_flag(&mut out, opt, wire::EDNS_FLAG_CO);
            }
            let shaped = Shaped {
                cut: shape.cut,
                near: shape.near,
            };
            return (Answer::Reply(out), shaped);
        }
    }
    let mut body = match route {
        Route::Live(zone_at) => live::live_body(
            snapshot,
            query.name(),
            query.qtype,
            zone_at,
            rotate,
            room,
            near.map(|n| n.client),
        ),
        // `place` saw the PTR set in this same snapshot, so it is there.
        Route::Reverse => {
            live::ptr_body(snapshot, query.name(), rotate, room).unwrap_or_else(|| {
                Body::Ready(ReplyBody {
                    rcode: ResponseCode::ServFail.low(),
                    ..ReplyBody::default()
                })
            })
        }
        Route::Static { zone, zone_at } => {
            Body::Ready(statics.body(zone, query.name(), query.qtype, zone_at))
        }
        Route::Error(code) => Body::Ready(ReplyBody {
            rcode: code.low(),
            ..ReplyBody::default()
        }),
        Route::Drop => return (Answer::Drop, Shaped::default()),
        // The caller fills in what the task needs.
        Route::Transfer | Route::Forward => return (later(route, query), Shaped::default()),
    };
    let near = match near {
        Some(near) => {
            let head = body.head_mut();
            echo_scope(near, head);
            head.near
        }
        None => Near::Unshaped,
    };
    // Written from where it lies: moving a body costs a live answer more than writing it.
    let cut = if let Body::Ready(body) = &body {
        write(&mut out, body)
    } else {
        PICKS.with_borrow_mut(|picks| write(&mut out, &body.finish(rotate, room, picks)))
    };
    (Answer::Reply(out), Shaped { cut, near })
}

/// Sets the Client Subnet scope `body` echoes, when the query's was read.
fn echo_scope(near: NearQuery, body: &mut ReplyBody<'_>) {
    if near.ecs {
        // RFC 7871 §7.2.1: the scope of an answer locality did not shape is 0.
        let shaped = body.near != Near::Unshaped;
        body.ecs_scope = Some(if shaped { near.scope } else { 0 });
    }
}

/// The signer of the zone of `query`, when that zone is signed and the query asks for
/// DNSSEC records (DO), the DNSKEY set, or NXNAME (FORMERR): then the signed path answers it.
#[inline]
fn signs<'d>(
    dnssec: &'d Dnssec,
    snapshot: &Snapshot,
    query: &WireQuery<'_>,
    zone_at: usize,
) -> Option<&'d ZoneSigner> {
    // Without DO only the apex's DNSKEY set and NXNAME's FORMERR differ from the plain path.
    let wanted = query.edns.is_some_and(|e| e.dnssec_ok)
        || (zone_at == 0 && query.qtype == u16::from(RecordType::DNSKEY))
        || query.qtype == crate::dnssec::sign::types::NXNAME;
    if !wanted {
        return None;
    }
    let zone = snapshot.zone_at(query.name(), zone_at)?;
    dnssec.signer(zone.name())
}

/// The request on `route` left to [`Router::answer_later`].
fn later(route: Route, query: &WireQuery<'_>) -> Answer {
    Answer::Later(Pending {
        route,
        qtype: query.qtype,
        received: Instant::now(),
    })
}
