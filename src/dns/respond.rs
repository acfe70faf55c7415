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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use hickory_server::net::runtime::TokioTime;
use hickory_server::net::xfer::Protocol;
use hickory_server::net::NetError;
use hickory_server::proto::op::{
    Edns, Message, MessageType, Metadata, OpCode, Query, ResponseCode,
};
use hickory_server::proto::rr::{DNSClass, LowerName, Record, RecordType};
use hickory_server::proto::serialize::binary::BinEncoder;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::{Catalog, MessageResponse};
use tracing::debug;

use super::live::{answer, Answer};
use crate::table::{Snapshot, Table};

/// EDNS UDP payload size we advertise and never exceed (DNS flag day 2020; Knot's default).
pub const EDNS_PAYLOAD: u16 = 1232;
/// Largest UDP reply to a client without EDNS (RFC 1035 §4.2.1).
pub const PLAIN_UDP_PAYLOAD: u16 = 512;
/// Length of the DNS header.
const HEADER_LEN: usize = 12;
/// An OPT record advertising [`EDNS_PAYLOAD`]: root owner, type 41, class = payload, TTL 0,
/// no options. Appended to FORMERR replies to clients that sent an additional record.
const BARE_OPT: [u8; 11] = [0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0];

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
        match protocol {
            Protocol::Udp => Self {
                size: edns.map_or(PLAIN_UDP_PAYLOAD, |e| {
                    e.max_payload().clamp(PLAIN_UDP_PAYLOAD, EDNS_PAYLOAD)
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

/// Answers requests: the live zone directly, the rest through hickory's [`Catalog`].
pub struct Responder {
    origin: LowerName,
    table: Arc<Table>,
    catalog: Catalog,
    /// Per-answer rotation counter; relaxed ordering is enough, it only spreads load.
    rotation: AtomicUsize,
}

impl Responder {
    /// A responder for the live zone `origin` over `table`, with `catalog` for the rest.
    pub fn new(origin: LowerName, table: Arc<Table>, catalog: Catalog) -> Self {
        Self {
            origin,
            table,
            catalog,
            rotation: AtomicUsize::new(0),
        }
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

    /// The synchronous part: everything that needs neither the catalog nor I/O.
    pub fn fast(&self, bytes: &[u8], protocol: Protocol) -> Outcome {
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
        let name = LowerName::new(query.name());
        if !self.origin.zone_of(&name) {
            return match self.reverse(&request, query, &name, limit) {
                Some(reply) => Outcome::Reply(reply),
                None => Outcome::Slow,
            };
        }
        match (query.query_class(), query.query_type()) {
            // The catalog checks --allow-transfer.
            (_, RecordType::AXFR) => Outcome::Slow,
            // No incremental transfers: a secondary falls back to AXFR.
            (_, RecordType::IXFR) => refuse(ResponseCode::Refused),
            (DNSClass::IN, _) => {
                let snapshot = self.table.load();
                let rotate = self.rotation.fetch_add(1, Ordering::Relaxed);
                let reply = live_reply(&request, query, &name, &self.origin, &snapshot, rotate);
                Outcome::Reply(fit(reply, limit))
            }
            _ => refuse(ResponseCode::Refused),
        }
    }

    /// PTR for a registered address; `None` leaves the name to the catalog (upstream).
    fn reverse(
        &self,
        request: &Message,
        query: &Query,
        name: &LowerName,
        limit: Limit,
    ) -> Option<Vec<u8>> {
        if query.query_type() != RecordType::PTR || query.query_class() != DNSClass::IN {
            return None;
        }
        let snapshot = self.table.load();
        let entry = snapshot.names.get(name).filter(|e| !e.ptr.is_empty())?;
        let mut reply = reply_to(request);
        reply.metadata.authoritative = true;
        reply.answers = entry.ptr.clone();
        for record in reply.answers.iter_mut() {
            record.name = query.name().clone();
        }
        Some(fit(reply, limit))
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
/// no question (it could not be read), an OPT if the query carried additional records (it
/// may have been EDNS, RFC 6891 §7). Shorter garbage, and responses, are dropped.
fn form_error(bytes: &[u8]) -> Outcome {
    if bytes.len() < HEADER_LEN || bytes[2] & 0x80 != 0 {
        return Outcome::Drop;
    }
    let mut reply = bytes[..HEADER_LEN].to_vec();
    reply[2] = 0x80 | (bytes[2] & 0x78) | (bytes[2] & 0x01); // QR, opcode, RD
    reply[3] = ResponseCode::FormErr.low();
    reply[4..HEADER_LEN].fill(0);
    if bytes[10] != 0 || bytes[11] != 0 {
        reply[11] = 1;
        reply.extend_from_slice(&BARE_OPT);
    }
    Outcome::Reply(reply)
}

/// The reply for a query under the live zone.
fn live_reply(
    request: &Message,
    query: &Query,
    name: &LowerName,
    origin: &LowerName,
    snapshot: &Snapshot,
    rotate: usize,
) -> Message {
    let mut reply = reply_to(request);
    if !snapshot.ready {
        reply.metadata.response_code = ResponseCode::ServFail;
        return reply;
    }
    reply.metadata.authoritative = true;
    match answer(snapshot, origin, name, query.query_type(), rotate) {
        Answer::Records(mut answers, additionals) => {
            // Answers keep the query's spelling.
            for record in answers.iter_mut() {
                if LowerName::new(&record.name) == *name {
                    record.name = query.name().clone();
                }
            }
            reply.answers = answers;
            reply.additionals = additionals;
        }
        Answer::NoData => reply.authorities.push(snapshot.soa.clone()),
        Answer::NxDomain => {
            reply.metadata.response_code = ResponseCode::NXDomain;
            reply.authorities.push(snapshot.soa.clone());
        }
        Answer::Refused => {
            reply.metadata.authoritative = false;
            reply.metadata.response_code = ResponseCode::Refused;
        }
    }
    reply
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
