//! Replies built with hickory's message type, for requests the strict wire parser declined and
//! for what the catalog and zone transfers produce: error replies, FORMERR for bytes that do
//! not parse, and the size rules every reply follows.
//!
//! The rules follow Knot DNS: EDNS replies advertise our own UDP payload ([`EDNS_PAYLOAD`]) and
//! copy the DO bit; a UDP reply larger than min(client payload, 1232) — 512 without EDNS —
//! first loses its additional section (without TC, RFC 2181 §9), then becomes header +
//! question + OPT with TC set; a TCP reply over 64 KiB is SERVFAIL.

use hickory_server::net::xfer::Protocol;
use hickory_server::proto::op::{Edns, Message, MessageType, Metadata, ResponseCode};
use tracing::debug;

use crate::wire::{self, QueryEdns, FLAG_QR, FLAG_RD, HEADER_LEN, OPCODE_BITS};

/// EDNS UDP payload size we advertise and never exceed (DNS flag day 2020; Knot's default).
pub const EDNS_PAYLOAD: u16 = 1232;
/// Largest UDP reply to a client without EDNS (RFC 1035 §4.2.1).
pub const PLAIN_UDP_PAYLOAD: u16 = 512;
/// Capacity of a fresh reply buffer: a plain UDP answer fits without growing it.
pub const REPLY_CAPACITY: usize = PLAIN_UDP_PAYLOAD as usize;
/// Largest DNS message over TCP (its two-byte length prefix).
pub const TCP_MESSAGE_MAX: usize = u16::MAX as usize;

/// How large a reply may be.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    /// Bytes.
    pub size: usize,
    /// TCP: nothing to retry on, so an oversized reply becomes SERVFAIL instead of TC.
    pub stream: bool,
}

impl Limit {
    /// The limit for a request with `edns` over `protocol`.
    pub fn new(edns: Option<&Edns>, protocol: Protocol) -> Self {
        Self::of(edns.map(|e| e.max_payload()), protocol)
    }

    /// [`Limit::new`] from the strict parser's EDNS.
    pub fn from_wire(edns: Option<QueryEdns>, protocol: Protocol) -> Self {
        Self::of(edns.map(|e| e.payload), protocol)
    }

    fn of(payload: Option<u16>, protocol: Protocol) -> Self {
        match protocol {
            Protocol::Udp => Self {
                size: payload.map_or(PLAIN_UDP_PAYLOAD, |p| {
                    p.clamp(PLAIN_UDP_PAYLOAD, EDNS_PAYLOAD)
                }) as usize,
                stream: false,
            },
            _ => Self {
                size: TCP_MESSAGE_MAX,
                stream: true,
            },
        }
    }
}

/// Our EDNS for a reply to `request`, if it used EDNS.
pub fn reply_edns(request: &Message) -> Option<Edns> {
    request.edns.as_ref().map(|theirs| {
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_PAYLOAD);
        edns.set_dnssec_ok(theirs.flags().dnssec_ok);
        edns
    })
}

/// An empty reply to `request`: its ID, opcode, RD and CD, its questions, our EDNS.
pub fn reply_to(request: &Message) -> Message {
    let mut reply = Message::new(
        request.metadata.id,
        MessageType::Response,
        request.metadata.op_code,
    );
    reply.metadata = Metadata::response_from_request(&request.metadata);
    reply.queries = request.queries.clone();
    if let Some(edns) = reply_edns(request) {
        reply.set_edns(edns);
    }
    reply
}

/// An error reply with `code` to `request`.
pub fn error_reply(request: &Message, code: ResponseCode, limit: Limit) -> Vec<u8> {
    let mut reply = reply_to(request);
    reply.metadata.response_code = code;
    if let Some(edns) = reply.edns.as_mut() {
        edns.set_rcode_high(code.high());
    }
    fit(reply, limit)
}

/// SERVFAIL in place of a reply that could not be sent whole (header and question kept when
/// they parse).
pub fn server_failure(bytes: Vec<u8>) -> Message {
    let mut reply = Message::from_vec(&bytes).unwrap_or_else(|_| Message::query());
    reply.metadata.message_type = MessageType::Response;
    reply.metadata.response_code = ResponseCode::ServFail;
    reply.metadata.truncation = false;
    if let (true, Some(id)) = (bytes.len() >= 2, bytes.get(..2)) {
        reply.metadata.id = u16::from_be_bytes([id[0], id[1]]);
    }
    reply.answers.clear();
    reply.authorities.clear();
    reply.additionals.clear();
    reply
}

/// FORMERR for bytes that do not parse, when at least the header does: same ID and opcode,
/// the question echoed when it reads cleanly, as Knot does; no OPT, since whether the query
/// had a valid one is unknown (RFC 6891 §7 forbids adding one it did not have). Shorter
/// garbage, and responses, get nothing.
pub fn form_error(bytes: &[u8]) -> Option<Vec<u8>> {
    if bytes.len() < HEADER_LEN || bytes[2] & FLAG_QR != 0 {
        return None;
    }
    let mut reply = bytes[..HEADER_LEN].to_vec();
    reply[2] = FLAG_QR | (bytes[2] & OPCODE_BITS) | (bytes[2] & FLAG_RD);
    reply[3] = ResponseCode::FormErr.low();
    reply[4..HEADER_LEN].fill(0);
    if let Some(question) = wire::question_bytes(bytes) {
        reply[5] = 1;
        reply.extend_from_slice(question);
    }
    Some(reply)
}

/// Encodes `reply` within `limit` (see the module documentation for the rules).
pub fn fit(mut reply: Message, limit: Limit) -> Vec<u8> {
    match reply.to_vec() {
        Ok(bytes) if bytes.len() <= limit.size => return bytes,
        Ok(_) if !limit.stream => {}
        result => {
            if let Err(error) = result {
                debug!(%error, "cannot encode reply");
            }
            let mut failure = server_failure(Vec::new());
            failure.metadata.id = reply.metadata.id;
            failure.metadata.op_code = reply.metadata.op_code;
            failure.metadata.recursion_desired = reply.metadata.recursion_desired;
            failure.queries = std::mem::take(&mut reply.queries);
            failure.edns = reply.edns.take();
            return failure.to_vec().unwrap_or_default();
        }
    }
    if !reply.additionals.is_empty() {
        reply.additionals.clear();
        if let Ok(bytes) = reply.to_vec() {
            if bytes.len() <= limit.size {
                return bytes;
            }
        }
    }
    reply.metadata.truncation = true;
    reply.answers.clear();
    reply.authorities.clear();
    match reply.to_vec() {
        Ok(bytes) if bytes.len() <= limit.size => bytes,
        // Even the questions do not fit (a request of many long ones): header and OPT alone.
        _ => {
            reply.queries.clear();
            reply.to_vec().unwrap_or_default()
        }
    }
}
