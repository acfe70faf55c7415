//! The strict parser of plain queries: what the hot path accepts without hickory.

use hickory_proto::rr::{Name, RecordType};

use super::{FLAG_QR, HEADER_LEN, MAX_NAME_WIRE, OPCODE_BITS, POINTER_BITS};

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

/// One question, as the reply writer needs it: what to copy from the header, the question as
/// asked, and its lowercase name for the table lookup.
#[derive(Debug)]
pub struct WireQuery<'a> {
    /// ID and the two flag bytes, as the query carried them (the reply copies ID, RD and CD).
    pub head: [u8; 4],
    /// The question section as asked (name in the client's case, type, class).
    pub question: &'a [u8],
    /// Lowercase question name.
    pub name: [u8; MAX_NAME_WIRE],
    /// Length of `name`.
    pub name_len: usize,
    /// QTYPE.
    pub qtype: u16,
    /// QCLASS.
    pub qclass: u16,
    /// The OPT record, if any.
    pub edns: Option<QueryEdns>,
}

impl<'a> WireQuery<'a> {
    /// A query parsed elsewhere (by hickory, for requests in an unusual shape): `question` is
    /// the question section to echo, `name` the question name.
    pub fn new(
        head: [u8; 4],
        question: &'a [u8],
        name: &Name,
        qtype: u16,
        qclass: u16,
        edns: Option<QueryEdns>,
    ) -> Option<Self> {
        let mut wire = [0u8; MAX_NAME_WIRE];
        let mut name_len = 0;
        for label in name.iter() {
            let end = name_len + 1 + label.len();
            let slot = wire.get_mut(name_len..end)?;
            slot[0] = label.len() as u8;
            for (to, from) in slot[1..].iter_mut().zip(label) {
                *to = from.to_ascii_lowercase();
            }
            name_len = end;
        }
        *wire.get_mut(name_len)? = 0; // the root
        name_len += 1;
        Some(Self {
            head,
            question,
            name: wire,
            name_len,
            qtype,
            qclass,
            edns,
        })
    }

    /// The lowercase question name.
    pub fn name(&self) -> &[u8] {
        &self.name[..self.name_len]
    }
}

fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]))
}

/// The first four header bytes (ID and flags).
fn head(bytes: &[u8]) -> Option<[u8; 4]> {
    bytes.get(..4)?.try_into().ok()
}

/// Parses a plain query: QR=0, opcode QUERY, one question, no answer or authority records, at
/// most one additional record which is an OPT at the root, nothing after it. `None` for
/// anything else (the router then asks hickory's parser).
pub fn parse_query(bytes: &[u8]) -> Option<WireQuery<'_>> {
    // QR=0 and opcode QUERY (0); counts 1/0/0/≤1.
    if *bytes.get(2)? & (FLAG_QR | OPCODE_BITS) != 0
        || be16(bytes, 4)? != 1
        || be16(bytes, 6)? != 0
        || be16(bytes, 8)? != 0
        || be16(bytes, 10)? > 1
    {
        return None;
    }
    let mut name = [0u8; MAX_NAME_WIRE];
    let mut at = HEADER_LEN;
    let mut name_len = 0;
    loop {
        let len = *bytes.get(at)? as usize;
        if len as u8 & POINTER_BITS != 0 || name_len + 1 + len > MAX_NAME_WIRE {
            return None; // compression in a question, extended label types, or too long
        }
        name[name_len] = len as u8;
        let label = bytes.get(at + 1..at + 1 + len)?;
        for (i, b) in label.iter().enumerate() {
            name[name_len + 1 + i] = b.to_ascii_lowercase();
        }
        name_len += 1 + len;
        at += 1 + len;
        if len == 0 {
            break;
        }
    }
    let qtype = be16(bytes, at)?;
    let qclass = be16(bytes, at + 2)?;
    at += 4;
    let question = &bytes[HEADER_LEN..at];
    let edns = if be16(bytes, 10)? == 1 {
        // OPT: root owner, type 41, class = payload, TTL = ext-rcode/version/flags, RDATA.
        if *bytes.get(at)? != 0 || be16(bytes, at + 1)? != u16::from(RecordType::OPT) {
            return None;
        }
        let rdlen = be16(bytes, at + 9)? as usize;
        if at + 11 + rdlen != bytes.len() || !options_fit(&bytes[at + 11..]) {
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
        head: head(bytes)?,
        question,
        name,
        name_len,
        qtype,
        qclass,
        edns,
    })
}

/// True when OPT RDATA is a whole number of options (code, length, data): a length that runs
/// past the record is malformed (FORMERR, as Knot answers it).
fn options_fit(mut rdata: &[u8]) -> bool {
    while !rdata.is_empty() {
        let Some(len) = be16(rdata, 2) else {
            return false;
        };
        let Some(rest) = rdata.get(4 + len as usize..) else {
            return false;
        };
        rdata = rest;
    }
    true
}

/// The question section at offset 12 when the header says there is exactly one and it reads
/// cleanly (no compression), for echoing it in replies to requests the strict parser declined.
pub fn question_bytes(bytes: &[u8]) -> Option<&[u8]> {
    if be16(bytes, 4)? != 1 {
        return None;
    }
    let mut at = HEADER_LEN;
    loop {
        let len = *bytes.get(at)? as usize;
        if len as u8 & POINTER_BITS != 0 {
            return None;
        }
        at += 1 + len;
        if len == 0 {
            break;
        }
    }
    (at + 4 <= bytes.len() && at - HEADER_LEN <= MAX_NAME_WIRE).then(|| &bytes[HEADER_LEN..at + 4])
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Message, MessageType, OpCode, Query};

    use crate::testing::name;

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

    #[test]
    fn edns_options_must_fit_their_record() {
        assert!(options_fit(&[]));
        assert!(options_fit(&[0, 10, 0, 2, 1, 2]));
        assert!(options_fit(&[0, 10, 0, 0, 0, 8, 0, 1, 9]));
        assert!(!options_fit(&[0, 10, 0, 40]), "length past the record");
        assert!(!options_fit(&[0, 10, 0]), "cut header");
        assert!(!options_fit(&[0, 10, 0, 2, 1]), "cut data");
    }
}
