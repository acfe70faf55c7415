//! What every reply must be, whichever path wrote it.

use hickory_proto::op::{Message, ResponseCode};
use hickory_server::net::xfer::Protocol;

use super::{ensure, Violation};
use crate::dns::reply::{EDNS_PAYLOAD, PLAIN_UDP_PAYLOAD, TCP_MESSAGE_MAX};
use crate::wire::{self, FLAG_QR, FLAG_RD, HEADER_LEN, OPCODE_BITS, OPT_LEN};

/// The invariants of a reply to `request` over `protocol`: only queries get one (and every
/// query does); it fits the size limit, reads as a DNS message, and is a response to the
/// request — same ID, opcode and RD, the question as asked (unless it alone is over the limit)
/// — with OPT only when the request
/// carried one; TC only over UDP and then without records; no SERVFAIL (the table is ready).
pub(super) fn check_reply(
    request: &[u8],
    reply: Option<&[u8]>,
    protocol: Protocol,
) -> Result<(), Violation> {
    let query = request.len() >= HEADER_LEN && request[2] & FLAG_QR == 0;
    let Some(reply) = reply else {
        return ensure(!query, || "a query got no reply".into());
    };
    ensure(query, || {
        "a reply to a response, or to bytes shorter than a header".into()
    })?;
    let strict = wire::parse_query(request);
    let parsed = Message::from_vec(request).ok();
    let payload = strict
        .as_ref()
        .and_then(|q| q.edns.map(|e| e.payload))
        .or_else(|| {
            parsed
                .as_ref()
                .and_then(|m| m.edns.as_ref())
                .map(|e| e.max_payload())
        });
    let limit = match protocol {
        Protocol::Udp => payload.map_or(PLAIN_UDP_PAYLOAD, |p| {
            p.clamp(PLAIN_UDP_PAYLOAD, EDNS_PAYLOAD)
        }) as usize,
        _ => TCP_MESSAGE_MAX,
    };
    ensure(reply.len() <= limit, || {
        format!("{} bytes over a limit of {limit}", reply.len())
    })?;
    let message = Message::from_vec(reply)
        .map_err(|e| Violation(format!("the reply does not parse: {e}")))?;
    let meta = &message.metadata;
    ensure(reply[2] & FLAG_QR != 0, || "QR is not set".into())?;
    ensure(reply[..2] == request[..2], || "the ID is not echoed".into())?;
    ensure(reply[2] & OPCODE_BITS == request[2] & OPCODE_BITS, || {
        "the opcode is not echoed".into()
    })?;
    ensure(reply[2] & FLAG_RD == request[2] & FLAG_RD, || {
        "RD is not echoed".into()
    })?;
    ensure(meta.response_code != ResponseCode::ServFail, || {
        "SERVFAIL from a ready table".into()
    })?;
    if meta.truncation {
        ensure(protocol == Protocol::Udp, || "TC over TCP".into())?;
        // A truncated reply carries nothing, or the part of one large set that fit
        // (RFC 2181 §9): never an authority section.
        let one_type = message
            .answers
            .windows(2)
            .all(|w| w[0].record_type() == w[1].record_type());
        ensure(message.authorities.is_empty() && one_type, || {
            "TC with authority records or a mix of answers".into()
        })?;
    }
    if let Some(edns) = &message.edns {
        ensure(payload.is_some(), || {
            "OPT in a reply to a request without one".into()
        })?;
        ensure(edns.max_payload() == EDNS_PAYLOAD, || {
            format!("the reply advertises {} bytes", edns.max_payload())
        })?;
    }
    // The questions as asked; only a truncated reply that they would not fit into drops them
    // (encoded without the request's compression, with an OPT, they pass the limit).
    let too_long = |asked: &Message| {
        let mut alone = Message::query();
        alone.queries = asked.queries.clone();
        alone.to_vec().map_or(true, |b| b.len() + OPT_LEN > limit)
    };
    let questions_dropped = message.metadata.truncation
        && message.queries.is_empty()
        && parsed.as_ref().is_some_and(too_long);
    if let Some(parsed) = parsed.as_ref().filter(|_| !questions_dropped) {
        ensure(message.queries == parsed.queries, || {
            format!(
                "question {:?} answered as {:?}",
                parsed.queries, message.queries
            )
        })?;
    }
    if let (Some(asked), 1) = (wire::question_bytes(request), message.queries.len()) {
        let echoed = reply.get(HEADER_LEN..HEADER_LEN + asked.len());
        ensure(echoed == Some(asked), || {
            "the question is not echoed as asked".into()
        })?;
    }
    Ok(())
}
