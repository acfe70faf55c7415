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
    /// The CO bit (Compact Answers OK, RFC 9824 §5): NXDOMAIN is wanted with a compact denial.
    pub compact_ok: bool,
    /// The EDNS Client Subnet option (RFC 7871), if any.
    pub ecs: Option<ClientSubnet>,
}

/// An EDNS Client Subnet option of a query (RFC 7871 §6): the network a forwarder's client is
/// in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientSubnet {
    /// Address family: 1 IPv4, 2 IPv6.
    pub family: u16,
    /// SOURCE PREFIX-LENGTH: how many leading bits of `addr` count.
    pub source: u8,
    /// The address, zero past the source prefix (IPv4 in the first four bytes).
    pub addr: [u8; 16],
}

/// The EDNS header flag CO, Compact Answers OK (RFC 9824 §5.1: the bit after DO).
pub const EDNS_FLAG_CO: u16 = 0x4000;

/// EDNS option code of Client Subnet.
pub const OPTION_ECS: u16 = 8;

impl ClientSubnet {
    /// The option in `data` (family, source and scope prefix lengths, address), if it is well
    /// formed: a known family, prefix lengths within it, a scope of 0 (§7.1.1), the address in
    /// exactly as many bytes as the source prefix needs, and no bits set past it (§6).
    pub fn parse(data: &[u8]) -> Option<Self> {
        let family = be16(data, 0)?;
        let (source, scope) = (*data.get(2)?, *data.get(3)?);
        let max = match family {
            1 => 32,
            2 => 128,
            _ => return None,
        };
        let bytes = data.get(4..)?;
        if source > max || scope != 0 || bytes.len() != usize::from(source).div_ceil(8) {
            return None;
        }
        let mut addr = [0u8; 16];
        addr[..bytes.len()].copy_from_slice(bytes);
        let spare = (8 - source % 8) % 8;
        if bytes
            .last()
            .is_some_and(|b| b & ((1u16 << spare) - 1) as u8 != 0)
        {
            return None;
        }
        Some(Self {
            family,
            source,
            addr,
        })
    }

    /// The address the option names (the network's first address).
    pub fn ip(&self) -> std::net::IpAddr {
        if self.family == 1 {
            std::net::IpAddr::from([self.addr[0], self.addr[1], self.addr[2], self.addr[3]])
        } else {
            std::net::IpAddr::from(self.addr)
        }
    }
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
        if at + 11 + rdlen != bytes.len() {
            return None;
        }
        Some(QueryEdns {
            payload: be16(bytes, at + 3)?,
            version: *bytes.get(at + 6)?,
            dnssec_ok: be16(bytes, at + 7)? & 0x8000 != 0,
            compact_ok: be16(bytes, at + 7)? & EDNS_FLAG_CO != 0,
            ecs: options(&bytes[at + 11..])?,
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

/// The Client Subnet option of OPT RDATA (the first, when well formed), if the RDATA is a
/// whole number of options (code, length, data); `None` otherwise: a length that runs past the
/// record is malformed (FORMERR, as Knot answers it). A malformed Client Subnet is ignored, as
/// Knot ignores Client Subnet altogether: the query is answered for its source address.
fn options(mut rdata: &[u8]) -> Option<Option<ClientSubnet>> {
    let mut ecs = None;
    let mut seen = false;
    while !rdata.is_empty() {
        let len = be16(rdata, 2)? as usize;
        let data = rdata.get(4..4 + len)?;
        if be16(rdata, 0)? == OPTION_ECS && !seen {
            seen = true;
            ecs = ClientSubnet::parse(data);
        }
        rdata = &rdata[4 + len..];
    }
    Some(ecs)
}

/// True when OPT RDATA is a whole number of well-formed options.
#[cfg(test)]
fn options_fit(rdata: &[u8]) -> bool {
    options(rdata).is_some()
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
        assert!(options_fit(&[0, 10, 0, 0, 0, 9, 0, 1, 9]));
        assert!(!options_fit(&[0, 10, 0, 40]), "length past the record");
        assert!(!options_fit(&[0, 10, 0]), "cut header");
        assert!(!options_fit(&[0, 10, 0, 2, 1]), "cut data");
    }

    /// Client Subnet (RFC 7871 §6): read when well formed, else ignored.
    #[test]
    fn client_subnet_is_read_when_well_formed() {
        let ecs = |data: &[u8]| {
            let mut rdata = vec![0, 8, 0, data.len() as u8];
            rdata.extend_from_slice(data);
            options(&rdata)
        };
        let got = ecs(&[0, 1, 24, 0, 10, 2, 3]).expect("valid").expect("ECS");
        assert_eq!(
            (got.family, got.source, got.ip()),
            (1, 24, "10.2.3.0".parse().expect("ip"))
        );
        let got = ecs(&[0, 2, 48, 0, 0x20, 1, 0xd, 0xb8, 0, 1])
            .expect("valid")
            .expect("ECS");
        assert_eq!(
            got.ip(),
            "2001:db8:1::".parse::<std::net::IpAddr>().expect("ip")
        );
        assert_eq!(
            ecs(&[0, 1, 0, 0]).expect("valid").map(|e| e.source),
            Some(0)
        );
        for (bad, why) in [
            (&[0, 1, 24, 0, 10, 2][..], "address shorter than the prefix"),
            (
                &[0, 1, 24, 0, 10, 2, 3, 4],
                "address longer than the prefix",
            ),
            (&[0, 1, 23, 0, 10, 2, 3], "a bit set past the prefix"),
            (&[0, 1, 24, 8, 10, 2, 3], "a scope in a query"),
            (&[0, 1, 33, 0, 10, 2, 3, 4, 5], "prefix past the family"),
            (&[0, 3, 8, 0, 1], "unknown family"),
        ] {
            assert_eq!(ecs(bad), Some(None), "{why}");
        }
    }
}
