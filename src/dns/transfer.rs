//! Zone transfers of a live zone, for clients in `--allow-transfer`. AXFR: the current
//! snapshot, SOA first and last, in as many TCP messages as it takes (RFC 5936), written
//! straight from the pre-encoded RRsets; over UDP NOTIMP, as Knot answers it. IXFR (RFC 1995):
//! the condensed difference from the client's serial, from the zone's history; the whole zone
//! when the history does not reach back that far; the SOA alone when the client is current,
//! and over UDP.

use std::net::SocketAddr;

use hickory_server::proto::op::{Message, ResponseCode};
use tracing::info;

use super::reply::{error_reply, Limit};
use crate::logging::LogLimit;
use crate::table::journal::condense;
use crate::table::{Snapshot, ZoneView};
use crate::wire::{self, wire_name, zone_offset, FLAG_AA, FLAG_QR, FLAG_RD, QNAME_POINTER};

/// Transfers are logged, but an allowed client asking in a loop must not flood the log.
static TRANSFERS: LogLimit = LogLimit::new();

/// Most bytes of one transfer message: a TCP message holds 65,535, and a signature (TSIG)
/// needs room after the records.
pub const MESSAGE_MAX: usize = 65_535 - 1_024;

/// A compression pointer to the question name, which every message of a transfer carries: the
/// zone's name.
const ZONE_POINTER: [u8; 2] = QNAME_POINTER;

/// The messages of a transfer, written one after another.
struct Messages<'q> {
    /// ID and the RD flag of the request, for every message.
    id: [u8; 2],
    rd: u8,
    /// The question as asked.
    question: &'q [u8],
    /// The OPT record every message ends with when the request had EDNS (as Knot sends them).
    opt: Option<[u8; wire::OPT_LEN]>,
    done: Vec<Vec<u8>>,
    current: Vec<u8>,
    count: u16,
    /// Bytes written, all messages together.
    bytes: usize,
    /// Records written.
    records: usize,
}

impl<'q> Messages<'q> {
    fn new(id: [u8; 2], rd: u8, question: &'q [u8], opt: Option<[u8; wire::OPT_LEN]>) -> Self {
        let mut messages = Self {
            id,
            rd,
            question,
            opt,
            done: Vec::new(),
            current: Vec::with_capacity(MESSAGE_MAX),
            count: 0,
            bytes: 0,
            records: 0,
        };
        messages.start();
        messages
    }

    fn start(&mut self) {
        self.current.clear();
        self.current.extend_from_slice(&self.id);
        self.current.push(FLAG_QR | FLAG_AA | self.rd);
        self.current.push(0);
        self.current.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
        self.current.extend_from_slice(self.question);
        self.count = 0;
    }

    fn finish(&mut self) {
        self.current[6..8].copy_from_slice(&self.count.to_be_bytes());
        if let Some(opt) = &self.opt {
            self.current.extend_from_slice(opt);
            self.current[10..12].copy_from_slice(&1u16.to_be_bytes());
        }
        self.bytes += self.current.len();
        self.done.push(std::mem::replace(
            &mut self.current,
            Vec::with_capacity(MESSAGE_MAX),
        ));
    }

    /// One record: the owner written as `prefix` (the labels before the zone's name) and a
    /// pointer to the zone's name in the question, then `tail` (type, class, TTL, RDLENGTH,
    /// RDATA, names uncompressed).
    fn push(&mut self, prefix: &[u8], tail: &[u8]) {
        let size = prefix.len() + ZONE_POINTER.len() + tail.len();
        if self.current.len() + size > MESSAGE_MAX && self.count > 0 {
            self.finish();
            self.start();
        }
        self.current.extend_from_slice(prefix);
        self.current.extend_from_slice(&ZONE_POINTER);
        self.current.extend_from_slice(tail);
        self.count += 1;
        self.records += 1;
    }

    fn end(mut self) -> (Vec<Vec<u8>>, usize, usize) {
        self.finish();
        (self.done, self.bytes, self.records)
    }
}

/// What a transfer sent, for the log and the metric (slots of
/// [`crate::metrics::TRANSFER_KINDS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// AXFR: the whole zone.
    Axfr = 0,
    /// IXFR: the difference from the client's serial.
    Incremental = 1,
    /// IXFR: the whole zone, the history not reaching back to the client's serial.
    Full = 2,
    /// IXFR: the SOA alone (the client is current, or asked over UDP).
    Current = 3,
}

/// The owner of a journal record (a wire name at its start) and the rest.
fn split_owner(record: &[u8]) -> (&[u8], &[u8]) {
    let mut at = 0;
    while let Some(&len) = record.get(at) {
        at += 1 + len as usize;
        if len == 0 {
            break;
        }
    }
    record.split_at(at.min(record.len()))
}

/// Writes the journal records `list` of `zone` into `out`.
fn write_records(out: &mut Messages<'_>, zone: &ZoneView, list: &[&[u8]]) {
    for record in list {
        let (owner, tail) = split_owner(record);
        let at = zone_offset(owner, zone.name()).unwrap_or(owner.len());
        out.push(&owner[..at], tail);
    }
}

/// The client's serial of an IXFR request: the SOA in its authority section.
fn client_serial(request: &Message) -> Option<u32> {
    request.authorities.iter().find_map(|r| match &r.data {
        hickory_server::proto::rr::RData::SOA(soa) => Some(soa.serial),
        _ => None,
    })
}

/// True when serial `a` is `b` or after it (RFC 1982).
fn at_or_after(a: u32, b: u32) -> bool {
    a == b || (a.wrapping_sub(b) as i32) > 0
}

/// The length of the pointer-owned record at the start of `rrs` (as stored in a node).
fn stored_len(rrs: &[u8]) -> usize {
    match rrs.get(10..12) {
        Some(len) => 12 + usize::from(u16::from_be_bytes([len[0], len[1]])),
        None => rrs.len(),
    }
}

/// Writes zone `zone` of `snapshot` into `out`: SOA, NS, every name's RRsets, SOA.
fn write_zone(out: &mut Messages<'_>, zone: &ZoneView, snapshot: &Snapshot) {
    out.push(&[], &zone.soa_tail);
    let ns = zone.ns_rrset();
    let mut rest = ns.rrs;
    while !rest.is_empty() {
        let len = stored_len(rest).min(rest.len());
        // Stored records start with a pointer to the question: the zone's name here too.
        out.push(&[], &rest[2..len]);
        rest = &rest[len..];
    }
    for node in snapshot.names.iter() {
        // Reverse names and the other zones' names are not this zone's.
        let Some(at) = zone_offset(node.name(), zone.name()) else {
            continue;
        };
        let prefix = &node.name()[..at];
        for set in node.rrsets() {
            let mut rest = set.rrs;
            while rest.len() > 2 {
                let len = stored_len(rest).min(rest.len());
                out.push(prefix, &rest[2..len]);
                rest = &rest[len..];
            }
        }
    }
    out.push(&[], &zone.soa_tail);
}

/// The AXFR or IXFR reply to `request` (whose bytes are `bytes`) from `snapshot`, in messages
/// of at most [`MESSAGE_MAX`] bytes, and what it was (`None` for an error); one SERVFAIL message until the registry was first read and while
/// the table is stale (`--max-stale`), NOTAUTH for a name below a zone's apex (as Knot answers
/// it), NOTIMP over UDP.
pub fn axfr(
    bytes: &[u8],
    request: &Message,
    snapshot: &Snapshot,
    src: SocketAddr,
    limit: Limit,
) -> (Vec<Vec<u8>>, Option<Kind>) {
    let ixfr = request
        .queries
        .first()
        .is_some_and(|q| q.query_type() == hickory_server::proto::rr::RecordType::IXFR);
    if !limit.stream && !ixfr {
        return (
            vec![error_reply(request, ResponseCode::NotImp, limit)],
            None,
        );
    }
    let asked = request.queries.first().map(|q| wire_name(q.name()));
    let zone = asked.and_then(|name| snapshot.zone_of(&name));
    if zone.is_some_and(|(at, _)| at > 0) {
        return (
            vec![error_reply(request, ResponseCode::NotAuth, limit)],
            None,
        );
    }
    let (Some((_, zone)), Some(question)) = (
        zone.filter(|_| snapshot.ready && !snapshot.stale),
        wire::question_bytes(bytes),
    ) else {
        return (
            vec![error_reply(request, ResponseCode::ServFail, limit)],
            None,
        );
    };
    let id = request.metadata.id.to_be_bytes();
    let rd = bytes.get(2).map_or(0, |flags| flags & FLAG_RD);
    // Our payload size, the DO bit copied, no options.
    let opt = request.edns.as_ref().map(|edns| {
        let mut opt = [0u8; wire::OPT_LEN];
        opt[1..3].copy_from_slice(&41u16.to_be_bytes());
        opt[3..5].copy_from_slice(&super::reply::EDNS_PAYLOAD.to_be_bytes());
        if edns.flags().dnssec_ok {
            opt[7] = 0x80;
        }
        opt
    });
    let mut out = Messages::new(id, rd, question, opt);
    let kind = if ixfr && !limit.stream {
        // Over UDP the SOA alone: current, or the client asks again over TCP (RFC 1995 §2).
        out.push(&[], &zone.soa_tail);
        Kind::Current
    } else if !ixfr {
        write_zone(&mut out, zone, snapshot);
        Kind::Axfr
    } else {
        let from = client_serial(request);
        let history = zone.history.read().unwrap_or_else(|e| e.into_inner());
        let changes = from.and_then(|from| history.between(from, zone.serial));
        match (from, changes) {
            (Some(from), _) if at_or_after(from, zone.serial) => {
                out.push(&[], &zone.soa_tail);
                Kind::Current
            }
            (Some(from), Some(changes)) => {
                drop(history);
                let (removed, added) = condense(&changes);
                out.push(&[], &zone.soa_tail);
                out.push(&[], &zone.soa_tail_at(from));
                write_records(&mut out, zone, &removed);
                out.push(&[], &zone.soa_tail);
                write_records(&mut out, zone, &added);
                out.push(&[], &zone.soa_tail);
                Kind::Incremental
            }
            _ => {
                drop(history);
                write_zone(&mut out, zone, snapshot);
                Kind::Full
            }
        }
    };
    let (messages, bytes, records) = out.end();
    if let Some(suppressed) = TRANSFERS.allow() {
        info!(%src, ?kind, records, bytes, messages = messages.len(), serial = zone.serial,
            suppressed, "zone transfer");
    }
    (messages, Some(kind))
}
