//! One request in, one reply out. The live zone is answered synchronously from the current
//! snapshot (no task, no lock, no etcd); everything else goes through hickory's catalog.
//!
//! The reply rules follow Knot DNS: authoritative answers have AA and no RA; EDNS replies
//! advertise our own UDP payload (1232) and copy the DO bit; a UDP reply larger than
//! min(client payload, 1232) — 512 without EDNS — first loses its additional section (without
//! TC, RFC 2181 §9), then becomes header + question + OPT with TC set; a TCP reply over 64 KiB
//! is SERVFAIL. EDNS versions above 0 get BADVERS, other opcodes NOTIMP, unparsable queries
//! FORMERR.

use std::net::SocketAddr;
use std::sync::{Arc, LazyLock, Mutex};

use hickory_server::net::runtime::TokioTime;
use hickory_server::net::xfer::Protocol;
use hickory_server::net::NetError;
use hickory_server::proto::op::{Edns, Message, MessageType, Metadata, OpCode, ResponseCode};
use hickory_server::proto::rr::{DNSClass, Record, RecordType};
use hickory_server::proto::serialize::binary::BinEncoder;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::{Catalog, MessageResponse};
use tracing::debug;

use super::live;
use crate::table::Table;
use crate::wire::{self, WireQuery, CLASS_IN, HEADER_LEN};

/// QCLASS ANY (RFC 1035 §3.2.5): answered like IN in the live zone, as Knot does.
const CLASS_ANY: u16 = 255;

/// EDNS UDP payload size we advertise and never exceed (DNS flag day 2020; Knot's default).
pub const EDNS_PAYLOAD: u16 = 1232;
/// Largest UDP reply to a client without EDNS (RFC 1035 §4.2.1).
pub const PLAIN_UDP_PAYLOAD: u16 = 512;

/// What to do with one datagram or TCP message.
#[derive(Debug)]
pub enum Outcome {
    /// Send these bytes.
    Reply(Vec<u8>),
    /// Send nothing (a response, or too short to answer).
    Drop,
    /// Not the live zone: ask the catalog.
    Slow,
}

/// How large a reply may be.
#[derive(Debug, Clone, Copy)]
struct Limit {
    /// Bytes.
    size: usize,
    /// TCP: nothing to retry on, so an oversized reply becomes SERVFAIL instead of TC.
    stream: bool,
}

impl Limit {
    fn new(edns: Option<&Edns>, protocol: Protocol) -> Self {
        Self::of(edns.map(|e| e.max_payload()), protocol)
    }

    fn from_wire(edns: Option<wire::QueryEdns>, protocol: Protocol) -> Self {
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
                size: u16::MAX as usize,
                stream: true,
            },
        }
    }
}

thread_local! {
    /// Where the next multi-record answer starts. Per thread rather than one shared atomic:
    /// it only spreads clients over instances, and a shared counter would bounce one cache
    /// line between the cores on every answer.
    static ROTATION: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

fn next_rotation() -> usize {
    ROTATION.with(|r| {
        let start = r.get();
        r.set(start.wrapping_add(1));
        start
    })
}

/// Answers requests: the live zone directly, the rest through hickory's [`Catalog`].
pub struct Responder {
    table: Arc<Table>,
    catalog: Catalog,
}

impl Responder {
    /// A responder for the live zone over `table`, with `catalog` for the rest.
    pub fn new(table: Arc<Table>, catalog: Catalog) -> Self {
        Self { table, catalog }
    }

    /// Answers one request.
    pub async fn respond(
        &self,
        bytes: &[u8],
        src: SocketAddr,
        protocol: Protocol,
    ) -> Option<Vec<u8>> {
        match self.fast(bytes, protocol) {
            Outcome::Reply(reply) => Some(reply),
            Outcome::Drop => None,
            Outcome::Slow => self.slow(bytes, src, protocol).await,
        }
    }

    /// The synchronous part: everything that needs neither the catalog nor I/O. Plain
    /// queries take the wire path; anything else is parsed by hickory first.
    pub fn fast(&self, bytes: &[u8], protocol: Protocol) -> Outcome {
        self.fast_into(bytes, protocol, Vec::with_capacity(512))
    }

    /// [`Responder::fast`] writing a plain answer into `out` (emptied first), so that a loop
    /// can hand the same buffers back query after query instead of allocating one each time.
    pub fn fast_into(&self, bytes: &[u8], protocol: Protocol, out: Vec<u8>) -> Outcome {
        match wire::parse_query(bytes) {
            Some(query)
                if query.edns.is_none_or(|e| e.version == 0) && query.qclass == CLASS_IN =>
            {
                self.plain(&query, protocol, out)
            }
            _ => self.general(bytes, protocol),
        }
    }

    /// A plain IN query: the live zone and our reverse names are answered here, into `out`.
    fn plain(&self, query: &WireQuery<'_>, protocol: Protocol, mut out: Vec<u8>) -> Outcome {
        let snapshot = self.table.load();
        let zone_at = live::in_zone(&snapshot, query.key());
        let ptr = u16::from(RecordType::PTR);
        let body = match zone_at {
            Some(_) if query.qtype == u16::from(RecordType::AXFR) => {
                return Outcome::Slow; // the catalog checks --allow-transfer
            }
            Some(_) if query.qtype == u16::from(RecordType::IXFR) => {
                return self.general(query.bytes, protocol);
            }
            Some(zone_at) => {
                let rotate = next_rotation();
                live::live_body(&snapshot, query.key(), query.qtype, zone_at, rotate)
            }
            // PTR of a registered address; any other name belongs to the catalog.
            None => {
                let node = snapshot.names.get(query.key());
                let Some(set) = node
                    .and_then(|n| n.rrset(ptr))
                    .filter(|_| query.qtype == ptr)
                else {
                    return Outcome::Slow;
                };
                let rotate = next_rotation();
                let (first, second) = set.rotated(rotate);
                wire::ReplyBody {
                    authoritative: true,
                    answers: (first, second, set.count),
                    ..wire::ReplyBody::default()
                }
            }
        };
        let limit = Limit::from_wire(query.edns, protocol);
        out.clear();
        wire::write_reply(
            &mut out,
            query,
            &body,
            EDNS_PAYLOAD,
            limit.size,
            limit.stream,
        );
        Outcome::Reply(out)
    }

    /// Everything the wire parser declined: errors, odd classes and opcodes, and valid queries
    /// in an unusual shape, which are rewritten plainly and answered on the wire path.
    fn general(&self, bytes: &[u8], protocol: Protocol) -> Outcome {
        let request = match Message::from_vec(bytes) {
            Ok(request) => request,
            Err(error) => {
                debug!(%error, "malformed query");
                return form_error(bytes);
            }
        };
        if request.metadata.message_type == MessageType::Response {
            return Outcome::Drop;
        }
        let limit = Limit::new(request.edns.as_ref(), protocol);
        let refuse = |code| Outcome::Reply(error_reply(&request, code, limit));
        if request.metadata.op_code != OpCode::Query {
            return refuse(ResponseCode::NotImp);
        }
        if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
            return refuse(ResponseCode::BADVERS);
        }
        let [query] = request.queries.as_slice() else {
            return refuse(ResponseCode::FormErr);
        };
        let key = wire::name_key(query.name());
        let snapshot = self.table.load();
        let ours = live::in_zone(&snapshot, &key).is_some();
        let class_ok = matches!(query.query_class(), DNSClass::IN | DNSClass::ANY);
        if ours && (!class_ok || query.query_type() == RecordType::IXFR) {
            // Other classes are not ours; no incremental transfers (a secondary falls back to
            // AXFR).
            return refuse(ResponseCode::Refused);
        }
        if !ours && !snapshot.names.contains_key(&key) {
            return Outcome::Slow;
        }
        // A valid query in an unusual shape (TSIG, several additional records...): ask again
        // plainly.
        let mut plain = Message::new(request.metadata.id, MessageType::Query, OpCode::Query);
        plain.metadata.recursion_desired = request.metadata.recursion_desired;
        plain.metadata.checking_disabled = request.metadata.checking_disabled;
        plain.add_query(query.clone());
        plain.edns = reply_edns(&request).map(|mut e| {
            e.set_max_payload(
                request
                    .edns
                    .as_ref()
                    .map_or(PLAIN_UDP_PAYLOAD, |r| r.max_payload()),
            );
            e
        });
        match plain.to_vec().ok().as_deref().and_then(wire::parse_query) {
            Some(query) if matches!(query.qclass, CLASS_IN | CLASS_ANY) => {
                self.plain(&query, protocol, Vec::with_capacity(512))
            }
            _ => Outcome::Slow,
        }
    }

    /// The catalog path: static zones, forwarding, zone transfers.
    pub async fn slow(&self, bytes: &[u8], src: SocketAddr, protocol: Protocol) -> Option<Vec<u8>> {
        let Ok(request) = Request::from_bytes(bytes.to_vec(), src, protocol) else {
            return match form_error(bytes) {
                Outcome::Reply(reply) => Some(reply),
                _ => None,
            };
        };
        let capture = Capture {
            dnssec_ok: request.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok),
            out: Arc::new(Mutex::new(None)),
        };
        self.catalog
            .handle_request::<Capture, TokioTime>(&request, capture.clone())
            .await;
        let bytes = capture.out.lock().ok()?.take()?;
        let limit = Limit::new(request.edns.as_ref(), protocol);
        // Within the limit and complete (no TC from hickory's own encoder): send as it is.
        if bytes.len() <= limit.size && bytes.get(2).is_some_and(|flags| flags & 0x02 == 0) {
            return Some(bytes);
        }
        match Message::from_vec(&bytes) {
            Ok(reply) if !reply.metadata.truncation => Some(fit(reply, limit)),
            _ => Some(fit(server_failure(bytes), limit)),
        }
    }
}

/// Our EDNS for a reply to `request`, if it used EDNS.
fn reply_edns(request: &Message) -> Option<Edns> {
    request.edns.as_ref().map(|theirs| {
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_PAYLOAD);
        edns.set_dnssec_ok(theirs.flags().dnssec_ok);
        edns
    })
}

fn reply_to(request: &Message) -> Message {
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

fn error_reply(request: &Message, code: ResponseCode, limit: Limit) -> Vec<u8> {
    let mut reply = reply_to(request);
    reply.metadata.response_code = code;
    if let Some(edns) = reply.edns.as_mut() {
        edns.set_rcode_high(code.high());
    }
    fit(reply, limit)
}

/// SERVFAIL in place of a reply that could not be sent whole (header and question kept when
/// they parse).
fn server_failure(bytes: Vec<u8>) -> Message {
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
/// garbage, and responses, are dropped.
fn form_error(bytes: &[u8]) -> Outcome {
    if bytes.len() < HEADER_LEN || bytes[2] & 0x80 != 0 {
        return Outcome::Drop;
    }
    let mut reply = bytes[..HEADER_LEN].to_vec();
    reply[2] = 0x80 | (bytes[2] & 0x78) | (bytes[2] & 0x01); // QR, opcode, RD
    reply[3] = ResponseCode::FormErr.low();
    reply[4..HEADER_LEN].fill(0);
    if let Some(len) = wire::question_len(bytes) {
        reply[5] = 1;
        reply.extend_from_slice(&bytes[HEADER_LEN..HEADER_LEN + len]);
    }
    Outcome::Reply(reply)
}

/// Encodes `reply` within `limit` (see the module documentation for the rules).
fn fit(mut reply: Message, limit: Limit) -> Vec<u8> {
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
    reply.to_vec().unwrap_or_default()
}

/// Replies that the catalog builds carry our EDNS instead of an echo of the client's size.
static OUR_EDNS: LazyLock<Edns> = LazyLock::new(|| {
    let mut edns = Edns::new();
    edns.set_max_payload(EDNS_PAYLOAD);
    edns
});
/// [`OUR_EDNS`] with the DO bit, for clients that set it.
static OUR_EDNS_DO: LazyLock<Edns> = LazyLock::new(|| {
    let mut edns = OUR_EDNS.clone();
    edns.set_dnssec_ok(true);
    edns
});

/// A [`ResponseHandler`] that encodes into memory, so UDP and TCP send it their own way.
#[derive(Clone)]
struct Capture {
    dnssec_ok: bool,
    out: Arc<Mutex<Option<Vec<u8>>>>,
}

#[async_trait::async_trait]
impl ResponseHandler for Capture {
    async fn send_response<'a>(
        &mut self,
        mut response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, NetError> {
        if response.edns().is_some_and(|e| e.rcode_high() == 0) {
            response.set_edns(if self.dnssec_ok {
                &OUR_EDNS_DO
            } else {
                &OUR_EDNS
            });
        }
        let mut bytes = Vec::with_capacity(512);
        let mut encoder = BinEncoder::new(&mut bytes);
        encoder.set_max_size(u16::MAX);
        let info = response.destructive_emit(&mut encoder)?;
        if let Ok(mut out) = self.out.lock() {
            *out = Some(bytes);
        }
        Ok(info)
    }
}
