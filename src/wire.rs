//! DNS wire format for the hot path (pure): lowercase name keys, pre-encoded RRsets, a strict
//! query parser and a reply writer. Answers are encoded once, when the table changes; a query
//! then costs a parse, one hash lookup and a few copies.
//!
//! Answer records are stored with the owner `0xC00C`, a compression pointer to the question
//! name (which always starts at offset 12), so one encoding serves every spelling of the name.

use hickory_proto::rr::{Name, Record};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};

/// Lowercase wire form of an absolute name: the key of the live table.
pub type NameKey = Box<[u8]>;

/// Largest wire-format name (RFC 1035 §3.1).
pub const MAX_NAME_WIRE: usize = 255;
/// Compression pointer to offset 12, where the question name starts.
const QNAME_POINTER: [u8; 2] = [0xc0, 0x0c];
/// Length of the DNS header.
pub const HEADER_LEN: usize = 12;
/// Record type of OPT (RFC 6891).
const TYPE_OPT: u16 = 41;
/// Class IN.
pub const CLASS_IN: u16 = 1;

/// The lowercase wire form of `name`.
pub fn name_key(name: &Name) -> NameKey {
    let mut key = Vec::with_capacity(name.len() + 2);
    for label in name.iter() {
        key.push(label.len() as u8);
        key.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    key.push(0);
    key.into_boxed_slice()
}

/// The name a key stands for.
pub fn key_name(key: &[u8]) -> Option<Name> {
    let mut labels = Vec::new();
    let mut at = 0;
    while let Some(&len) = key.get(at) {
        if len == 0 {
            return Name::from_labels(labels).ok();
        }
        labels.push(key.get(at + 1..at + 1 + len as usize)?);
        at += 1 + len as usize;
    }
    None
}

/// Offsets at which `key`'s labels start, the root's terminating zero included.
fn label_starts(key: &[u8]) -> impl Iterator<Item = usize> + '_ {
    let mut at = Some(0usize);
    std::iter::from_fn(move || {
        let here = at?;
        let len = *key.get(here)? as usize;
        at = (len != 0).then_some(here + 1 + len);
        Some(here)
    })
}

/// Where `zone` begins inside `key` when `key` is `zone` or a name below it.
pub fn zone_offset(key: &[u8], zone: &[u8]) -> Option<usize> {
    if key.len() < zone.len() {
        return None;
    }
    let at = key.len() - zone.len();
    (key[at..] == *zone && label_starts(key).any(|s| s == at)).then_some(at)
}

/// One pre-encoded RRset: its records (owner = pointer to the question) and, for SRV, the
/// targets' addresses for the additional section (full owner names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RRset {
    /// Record type.
    pub rtype: u16,
    /// Number of records in `rrs`.
    pub count: u16,
    /// The records, back to back.
    pub rrs: Box<[u8]>,
    /// Number of records in `extra`.
    pub extra_count: u16,
    /// Additional-section records, back to back.
    pub extra: Box<[u8]>,
}

/// Type, class, TTL, RDLENGTH and RDATA of `record`, names uncompressed (the bytes are reused
/// in other messages, where pointers would be wrong).
pub fn rr_tail(record: &Record) -> Vec<u8> {
    let mut rdata = Vec::with_capacity(32);
    {
        let mut encoder = BinEncoder::new(&mut rdata);
        encoder.set_canonical_form(true);
        // RDATA of at most a few hundred bytes cannot fail to encode.
        let _ = record.data.emit(&mut encoder);
    }
    let mut out = Vec::with_capacity(10 + rdata.len());
    out.extend_from_slice(&u16::from(record.record_type()).to_be_bytes());
    out.extend_from_slice(&u16::from(record.dns_class).to_be_bytes());
    out.extend_from_slice(&record.ttl.to_be_bytes());
    out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    out.extend_from_slice(&rdata);
    out
}

impl RRset {
    /// Encodes `records` (one owner, one type) and `extra` (any owners).
    pub fn encode(records: &[Record], extra: &[Record]) -> Self {
        let mut rrs = Vec::with_capacity(records.len() * 16);
        for record in records {
            rrs.extend_from_slice(&QNAME_POINTER);
            rrs.extend_from_slice(&rr_tail(record));
        }
        let mut extra_bytes = Vec::new();
        for record in extra {
            extra_bytes.extend_from_slice(&name_key_cased(&record.name));
            extra_bytes.extend_from_slice(&rr_tail(record));
        }
        Self {
            rtype: records.first().map_or(0, |r| r.record_type().into()),
            count: records.len() as u16,
            rrs: rrs.into_boxed_slice(),
            extra_count: extra.len() as u16,
            extra: extra_bytes.into_boxed_slice(),
        }
    }

    /// A set of type `rtype` from RDATA already in wire form (names uncompressed), every record
    /// at `ttl` (RFC 2181 §5.2: one TTL per RRset).
    pub fn from_rdata<'a>(
        rtype: u16,
        ttl: u32,
        rdatas: impl IntoIterator<Item = &'a [u8]>,
    ) -> Self {
        let mut rrs = Vec::new();
        let mut count = 0u16;
        for rdata in rdatas {
            rrs.extend_from_slice(&QNAME_POINTER);
            push_rr_tail(&mut rrs, rtype, ttl, rdata);
            count = count.saturating_add(1);
        }
        Self {
            rtype,
            count,
            rrs: rrs.into_boxed_slice(),
            extra_count: 0,
            extra: Box::default(),
        }
    }

    /// Adds an additional-section record owned by `owner` (wire form).
    pub fn push_extra(&mut self, owner: &[u8], rtype: u16, ttl: u32, rdata: &[u8]) {
        let mut extra = std::mem::take(&mut self.extra).into_vec();
        extra.extend_from_slice(owner);
        push_rr_tail(&mut extra, rtype, ttl, rdata);
        self.extra = extra.into_boxed_slice();
        self.extra_count = self.extra_count.saturating_add(1);
    }

    /// A borrowed view of this set, as the query path reads sets out of table nodes.
    pub fn as_ref(&self) -> RRsetRef<'_> {
        RRsetRef {
            rtype: self.rtype,
            count: self.count,
            rrs: &self.rrs,
            extra_count: self.extra_count,
            extra: &self.extra,
        }
    }
}

/// A pre-encoded RRset borrowed from where it is stored (a table node or an [`RRset`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RRsetRef<'a> {
    /// Record type.
    pub rtype: u16,
    /// Number of records in `rrs`.
    pub count: u16,
    /// The records, back to back, each owned by a pointer to the question name.
    pub rrs: &'a [u8],
    /// Number of records in `extra`.
    pub extra_count: u16,
    /// Additional-section records, back to back.
    pub extra: &'a [u8],
}

impl<'a> RRsetRef<'a> {
    /// The records split at record `start` (mod count): write `.0` then `.1` to rotate.
    pub fn rotated(&self, start: usize) -> (&'a [u8], &'a [u8]) {
        if self.count <= 1 {
            return (self.rrs, &[]);
        }
        let skip = start % self.count as usize;
        let mut at = 0;
        for _ in 0..skip {
            at += rr_len(&self.rrs[at..]);
        }
        (&self.rrs[at..], &self.rrs[..at])
    }
}

/// Appends type, class IN, TTL, RDLENGTH and `rdata`.
fn push_rr_tail(out: &mut Vec<u8>, rtype: u16, ttl: u32, rdata: &[u8]) {
    out.extend_from_slice(&rtype.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    out.extend_from_slice(&ttl.to_be_bytes());
    out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    out.extend_from_slice(rdata);
}

/// The lowercase wire form of the reverse name of `ip` (`d.c.b.a.in-addr.arpa.` or the 32
/// nibbles under `ip6.arpa.`), built without going through text.
pub fn reverse_key(ip: std::net::IpAddr) -> NameKey {
    let mut key = Vec::with_capacity(72);
    match ip {
        std::net::IpAddr::V4(ip) => {
            for octet in ip.octets().iter().rev() {
                let digits = itoa_u8(*octet);
                let text = digits.text();
                key.push(text.len() as u8);
                key.extend_from_slice(text);
            }
            key.extend_from_slice(b"\x07in-addr\x04arpa\x00");
        }
        std::net::IpAddr::V6(ip) => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            for byte in ip.octets().iter().rev() {
                key.extend_from_slice(&[
                    1,
                    HEX[(byte & 0xf) as usize],
                    1,
                    HEX[(byte >> 4) as usize],
                ]);
            }
            key.extend_from_slice(b"\x03ip6\x04arpa\x00");
        }
    }
    key.into_boxed_slice()
}

/// Decimal digits of a byte, without allocating.
struct Digits {
    buf: [u8; 3],
    start: usize,
}

impl Digits {
    fn text(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

fn itoa_u8(mut n: u8) -> Digits {
    let mut buf = [0u8; 3];
    let mut start = 3;
    loop {
        start -= 1;
        buf[start] = b'0' + n % 10;
        n /= 10;
        if n == 0 {
            return Digits { buf, start };
        }
    }
}

/// Wire form of `name` keeping its case (for owners of additional records).
fn name_key_cased(name: &Name) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 2);
    for label in name.iter() {
        out.push(label.len() as u8);
        out.extend_from_slice(label);
    }
    out.push(0);
    out
}

/// Length of the pointer-owned record at the start of `rrs`.
fn rr_len(rrs: &[u8]) -> usize {
    match rrs.get(10..12) {
        Some(len) => 12 + u16::from_be_bytes([len[0], len[1]]) as usize,
        None => rrs.len(),
    }
}

/// EDNS as a query carried it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryEdns {
    /// Advertised UDP payload size.
    pub payload: u16,
    /// EDNS version.
    pub version: u8,
    /// The DO bit.
    pub dnssec_ok: bool,
}

/// A plain query, as the hot path accepts it: QR=0, opcode QUERY, one question, no answer or
/// authority records, at most one additional record which is an OPT at the root.
#[derive(Debug)]
pub struct WireQuery<'a> {
    /// The request bytes.
    pub bytes: &'a [u8],
    /// Length of the question section (name, type, class) at offset 12.
    pub question_len: usize,
    /// Lowercase question name.
    pub key: [u8; MAX_NAME_WIRE],
    /// Length of `key`.
    pub key_len: usize,
    /// QTYPE.
    pub qtype: u16,
    /// QCLASS.
    pub qclass: u16,
    /// The OPT record, if any.
    pub edns: Option<QueryEdns>,
}

impl WireQuery<'_> {
    /// The lowercase question name.
    pub fn key(&self) -> &[u8] {
        &self.key[..self.key_len]
    }
}

fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]))
}

/// Parses a plain query; `None` for anything else (the caller takes the general path).
pub fn parse_query(bytes: &[u8]) -> Option<WireQuery<'_>> {
    let flags = be16(bytes, 2)?;
    // QR=0 and opcode QUERY; counts 1/0/0/≤1.
    if flags & 0xf800 != 0
        || be16(bytes, 4)? != 1
        || be16(bytes, 6)? != 0
        || be16(bytes, 8)? != 0
        || be16(bytes, 10)? > 1
    {
        return None;
    }
    let mut key = [0u8; MAX_NAME_WIRE];
    let mut at = HEADER_LEN;
    let mut key_len = 0;
    loop {
        let len = *bytes.get(at)? as usize;
        if len & 0xc0 != 0 || key_len + 1 + len > MAX_NAME_WIRE {
            return None; // compression in a question, extended label types, or too long
        }
        key[key_len] = len as u8;
        let label = bytes.get(at + 1..at + 1 + len)?;
        for (i, b) in label.iter().enumerate() {
            key[key_len + 1 + i] = b.to_ascii_lowercase();
        }
        key_len += 1 + len;
        at += 1 + len;
        if len == 0 {
            break;
        }
    }
    let qtype = be16(bytes, at)?;
    let qclass = be16(bytes, at + 2)?;
    at += 4;
    let question_len = at - HEADER_LEN;
    let edns = if be16(bytes, 10)? == 1 {
        // OPT: root owner, type 41, class = payload, TTL = ext-rcode/version/flags, RDATA.
        if *bytes.get(at)? != 0 || be16(bytes, at + 1)? != TYPE_OPT {
            return None;
        }
        let rdlen = be16(bytes, at + 9)? as usize;
        if at + 11 + rdlen != bytes.len() {
            return None;
        }
        Some(QueryEdns {
            payload: be16(bytes, at + 3)?,
            version: *bytes.get(at + 6)?,
            dnssec_ok: be16(bytes, at + 7)? & 0x8000 != 0,
        })
    } else {
        (at == bytes.len()).then_some(())?;
        None
    };
    Some(WireQuery {
        bytes,
        question_len,
        key,
        key_len,
        qtype,
        qclass,
        edns,
    })
}

/// Length of the question section at offset 12 when the header says there is exactly one and
/// it reads cleanly (no compression), for echoing it in error replies.
pub fn question_len(bytes: &[u8]) -> Option<usize> {
    if be16(bytes, 4)? != 1 {
        return None;
    }
    let mut at = HEADER_LEN;
    loop {
        let len = *bytes.get(at)? as usize;
        if len & 0xc0 != 0 {
            return None;
        }
        at += 1 + len;
        if len == 0 {
            break;
        }
    }
    (at + 4 <= bytes.len() && at - HEADER_LEN <= MAX_NAME_WIRE).then_some(at + 4 - HEADER_LEN)
}

/// What goes into a reply besides the question.
#[derive(Debug, Default)]
pub struct ReplyBody<'a> {
    /// RCODE (low four bits).
    pub rcode: u8,
    /// AA flag.
    pub authoritative: bool,
    /// Answer records (two slices: a rotated set), and their count.
    pub answers: (&'a [u8], &'a [u8], u16),
    /// The SOA for the authority section: the record without owner, and the pointer offset of
    /// the zone name inside the question.
    pub soa: Option<(&'a [u8], usize)>,
    /// Additional records and their count.
    pub additional: (&'a [u8], u16),
}

/// OPT advertising `payload`, with the DO bit if asked.
fn push_opt(out: &mut Vec<u8>, payload: u16, dnssec_ok: bool) {
    out.push(0);
    out.extend_from_slice(&TYPE_OPT.to_be_bytes());
    out.extend_from_slice(&payload.to_be_bytes());
    out.extend_from_slice(&[0, 0]); // extended RCODE, version
    out.extend_from_slice(&(if dnssec_ok { 0x8000u16 } else { 0 }).to_be_bytes());
    out.extend_from_slice(&[0, 0]); // RDLENGTH
}

/// Writes the reply to `query` into `out`: the question copied as asked (its case kept), the
/// body, and an OPT advertising `payload` when the query had EDNS. If it exceeds `limit`, the
/// additional section goes first (no TC, RFC 2181 §9), then answers and authority: with TC
/// over UDP, or as SERVFAIL over a `stream` (TCP has nowhere to retry).
pub fn write_reply(
    out: &mut Vec<u8>,
    query: &WireQuery<'_>,
    body: &ReplyBody<'_>,
    payload: u16,
    limit: usize,
    stream: bool,
) {
    let question = &query.bytes[HEADER_LEN..HEADER_LEN + query.question_len];
    let opt_len = if query.edns.is_some() { 11 } else { 0 };
    let soa_len = body.soa.map_or(0, |(soa, _)| 2 + soa.len());
    let answers_len = body.answers.0.len() + body.answers.1.len();
    let base = HEADER_LEN + question.len() + opt_len;
    let with_answers = base + answers_len + soa_len;
    let (answers, soa, additional, truncated) = if with_answers + body.additional.0.len() <= limit {
        (true, true, true, false)
    } else if with_answers <= limit {
        (true, true, false, false)
    } else {
        (false, false, false, !stream)
    };
    let failed = !answers && stream;
    out.clear();
    out.extend_from_slice(&query.bytes[0..2]);
    let rd_cd = [query.bytes[2] & 0x01, query.bytes[3] & 0x10];
    let (aa, rcode) = if failed {
        (false, 2) // SERVFAIL
    } else {
        (body.authoritative, body.rcode & 0x0f)
    };
    out.push(0x80 | u8::from(aa) << 2 | u8::from(truncated) << 1 | rd_cd[0]);
    out.push(rd_cd[1] | rcode);
    let count = |on: bool, n: u16| if on { n } else { 0 };
    let additional_count = count(additional, body.additional.1) + u16::from(opt_len > 0);
    for n in [
        1,
        count(answers, body.answers.2),
        count(soa && body.soa.is_some(), 1),
        additional_count,
    ] {
        out.extend_from_slice(&n.to_be_bytes());
    }
    out.extend_from_slice(question);
    if answers {
        out.extend_from_slice(body.answers.0);
        out.extend_from_slice(body.answers.1);
    }
    if let (true, Some((rr, zone_at))) = (soa, body.soa) {
        out.extend_from_slice(&(0xc000 | (HEADER_LEN + zone_at) as u16).to_be_bytes());
        out.extend_from_slice(rr);
    }
    if additional {
        out.extend_from_slice(body.additional.0);
    }
    if let Some(edns) = query.edns {
        push_opt(out, payload, edns.dnssec_ok);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::rdata::A;
    use hickory_proto::rr::{RData, RecordType};

    fn name(s: &str) -> Name {
        Name::from_ascii(s).expect("name")
    }

    #[test]
    fn reverse_keys_match_hickorys_reverse_names() {
        for ip in [
            "192.168.1.26",
            "0.0.0.0",
            "10.0.100.255",
            "2001:db8::1",
            "::",
            "fe80::ab:cdef",
        ] {
            let ip: std::net::IpAddr = ip.parse().expect("address");
            assert_eq!(reverse_key(ip), name_key(&Name::from(ip)), "{ip}");
        }
    }

    #[test]
    fn keys_are_lowercase_wire_names() {
        let key = name_key(&name("S-Test.Services.LOCAL."));
        assert_eq!(&*key, b"\x06s-test\x08services\x05local\x00");
        assert_eq!(
            key_name(&key).expect("name").to_ascii(),
            "s-test.services.local."
        );
        let zone = name_key(&name("services.local."));
        assert_eq!(zone_offset(&key, &zone), Some(7));
        assert_eq!(zone_offset(&zone, &zone), Some(0));
        // A suffix that is not at a label boundary is not the zone.
        let other = name_key(&name("xservices.local."));
        assert_eq!(zone_offset(&other, &zone), None);
        assert_eq!(zone_offset(&name_key(&name("example.com.")), &zone), None);
    }

    #[test]
    fn parses_plain_queries_and_writes_replies_hickory_reads() {
        let mut query = Message::new(0x1234, MessageType::Query, OpCode::Query);
        query.metadata.recursion_desired = true;
        query.add_query(Query::query(name("Web.Services.Local."), RecordType::A));
        let mut edns = hickory_proto::op::Edns::new();
        edns.set_max_payload(4096);
        edns.set_dnssec_ok(true);
        query.set_edns(edns);
        let bytes = query.to_vec().expect("encode");
        let parsed = parse_query(&bytes).expect("plain query");
        assert_eq!(parsed.key(), &*name_key(&name("web.services.local.")));
        assert_eq!(parsed.qtype, 1);
        assert_eq!(
            parsed.edns,
            Some(QueryEdns {
                payload: 4096,
                version: 0,
                dnssec_ok: true
            })
        );

        let records: Vec<Record> = (1..=3)
            .map(|i| {
                Record::from_rdata(
                    name("web.services.local."),
                    5,
                    RData::A(A::new(10, 0, 0, i)),
                )
            })
            .collect();
        let set = RRset::encode(&records, &[]);
        let (first, second) = set.as_ref().rotated(1);
        let mut out = Vec::new();
        let body = ReplyBody {
            authoritative: true,
            answers: (first, second, set.count),
            ..ReplyBody::default()
        };
        write_reply(&mut out, &parsed, &body, 1232, 1232, false);
        let reply = Message::from_vec(&out).expect("hickory parses our reply");
        assert_eq!(reply.metadata.id, 0x1234);
        assert!(reply.metadata.authoritative && reply.metadata.recursion_desired);
        let got: Vec<String> = reply
            .answers
            .iter()
            .map(|r| format!("{} {}", r.name, r.data))
            .collect();
        assert_eq!(
            got,
            vec![
                "Web.Services.Local. 10.0.0.2",
                "Web.Services.Local. 10.0.0.3",
                "Web.Services.Local. 10.0.0.1"
            ]
        );
        let edns = reply.edns.expect("OPT");
        assert_eq!(edns.max_payload(), 1232);
        assert!(edns.flags().dnssec_ok);

        // Too small for the answers: TC, question and OPT only; over TCP, SERVFAIL.
        write_reply(&mut out, &parsed, &body, 1232, 60, false);
        let reply = Message::from_vec(&out).expect("parse");
        assert!(reply.metadata.truncation && reply.answers.is_empty() && reply.edns.is_some());
        write_reply(&mut out, &parsed, &body, 1232, 60, true);
        let reply = Message::from_vec(&out).expect("parse");
        assert!(!reply.metadata.truncation && reply.answers.is_empty());
        assert_eq!(
            reply.metadata.response_code,
            hickory_proto::op::ResponseCode::ServFail
        );
    }

    #[test]
    fn rejects_what_the_general_path_must_handle() {
        let mut query = Message::new(1, MessageType::Query, OpCode::Update);
        query.add_query(Query::query(name("a.b."), RecordType::A));
        assert!(parse_query(&query.to_vec().expect("encode")).is_none());
        let mut query = Message::new(1, MessageType::Query, OpCode::Query);
        query.add_query(Query::query(name("a.b."), RecordType::A));
        query.add_query(Query::query(name("c.d."), RecordType::A));
        assert!(parse_query(&query.to_vec().expect("encode")).is_none());
        assert!(parse_query(b"\x00\x01").is_none());
        let mut ok = Message::new(1, MessageType::Query, OpCode::Query);
        ok.add_query(Query::query(name("a.b."), RecordType::A));
        let mut bytes = ok.to_vec().expect("encode");
        bytes.push(0); // trailing garbage
        assert!(parse_query(&bytes).is_none());
    }
}
