//! The reply writer: header, question as asked, pre-encoded sections, OPT.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use super::pick::Cut;
use super::query::{ClientSubnet, WireQuery, OPTION_ECS};
use super::{
    FLAG_AA, FLAG_CD, FLAG_QR, FLAG_RD, FLAG_TC, HEADER_LEN, OPT_LEN, POINTER_BITS, RCODE_BITS,
};

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
    /// Other authority records (a referral's NS set), owners written out, and their count.
    pub authority: (&'a [u8], u16),
    /// Additional records and their count.
    pub additional: (&'a [u8], u16),
    /// Whether records of the answer's set were left out, and why: for the size of the
    /// transport, a UDP reply says TC (RFC 2181 §9: the client may retry over TCP).
    pub cut: Cut,
    /// What locality made of the answer.
    pub near: Near,
    /// The SCOPE PREFIX-LENGTH to echo the query's Client Subnet with (RFC 7871 §7.2.1), when
    /// the server read it; `None` leaves the option out, as a server that ignores it does.
    pub ecs_scope: Option<u8>,
}

/// What locality made of an answer (`--locality`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Near {
    /// Nothing: locality is off, or the name has no instances of any locality's zone.
    #[default]
    Unshaped,
    /// The instances of the client's zone.
    Local,
    /// Every instance: the client's zone is unknown or has too few instances.
    Fallback,
}

/// Bytes the Client Subnet option of `query` takes in a reply that echoes it: code, length,
/// family, two prefix lengths and the address in as many bytes as the source prefix needs.
pub fn ecs_len(query: &WireQuery<'_>) -> usize {
    query
        .edns
        .and_then(|e| e.ecs)
        .map_or(0, |ecs| 8 + usize::from(ecs.source).div_ceil(8))
}

/// OPT advertising `payload`, with the DO bit if asked, and `ecs` echoed with `scope`.
fn push_opt(out: &mut Vec<u8>, payload: u16, dnssec_ok: bool, ecs: Option<(ClientSubnet, u8)>) {
    out.push(0);
    out.extend_from_slice(&u16::from(RecordType::OPT).to_be_bytes());
    out.extend_from_slice(&payload.to_be_bytes());
    out.extend_from_slice(&[0, 0]); // extended RCODE, version
    out.extend_from_slice(&(if dnssec_ok { 0x8000u16 } else { 0 }).to_be_bytes());
    match ecs {
        None => out.extend_from_slice(&[0, 0]), // RDLENGTH
        Some((ecs, scope)) => {
            let addr = &ecs.addr[..usize::from(ecs.source).div_ceil(8)];
            let len = 4 + addr.len() as u16;
            out.extend_from_slice(&(4 + len).to_be_bytes());
            out.extend_from_slice(&OPTION_ECS.to_be_bytes());
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&ecs.family.to_be_bytes());
            out.extend_from_slice(&[ecs.source, scope]);
            out.extend_from_slice(addr);
        }
    }
}

/// Sets `flag` in the EDNS flags of `reply`, whose OPT record (the last, as [`write_reply`]
/// writes it) takes its last `opt_len` bytes; nothing when they are not an OPT record.
pub fn set_edns_flag(reply: &mut [u8], opt_len: usize, flag: u16) {
    let Some(opt) = reply
        .len()
        .checked_sub(opt_len)
        .and_then(|at| reply.get_mut(at..))
    else {
        return;
    };
    if opt.len() >= OPT_LEN && opt[0] == 0 && opt[1..3] == u16::from(RecordType::OPT).to_be_bytes()
    {
        let flags = u16::from_be_bytes([opt[7], opt[8]]) | flag;
        opt[7..9].copy_from_slice(&flags.to_be_bytes());
    }
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
    let question = query.question;
    let ecs = match (query.edns.and_then(|e| e.ecs), body.ecs_scope) {
        (Some(ecs), Some(scope)) => Some((ecs, scope)),
        _ => None,
    };
    let opt_len = match (query.edns, ecs) {
        (None, _) => 0,
        (Some(_), None) => OPT_LEN,
        (Some(_), Some(_)) => OPT_LEN + ecs_len(query),
    };
    let authority_len = body.soa.map_or(0, |(soa, _)| 2 + soa.len()) + body.authority.0.len();
    let answers_len = body.answers.0.len() + body.answers.1.len();
    let base = HEADER_LEN + question.len() + opt_len;
    let with_answers = base + answers_len + authority_len;
    let (answers, authority, additional, truncated) =
        if with_answers + body.additional.0.len() <= limit {
            (true, true, true, body.cut == Cut::Size && !stream)
        } else if with_answers <= limit {
            // Records of the answer's set left out for size still say TC (the additional
            // section, left out here, never does).
            (true, true, false, body.cut == Cut::Size && !stream)
        } else {
            (false, false, false, !stream)
        };
    let failed = !answers && stream;
    out.clear();
    out.extend_from_slice(&query.head[0..2]);
    let rd_cd = [query.head[2] & FLAG_RD, query.head[3] & FLAG_CD];
    let (aa, rcode) = if failed {
        (false, ResponseCode::ServFail.low())
    } else {
        (body.authoritative, body.rcode & RCODE_BITS)
    };
    let aa = if aa { FLAG_AA } else { 0 };
    let tc = if truncated { FLAG_TC } else { 0 };
    out.push(FLAG_QR | aa | tc | rd_cd[0]);
    out.push(rd_cd[1] | rcode);
    let count = |on: bool, n: u16| if on { n } else { 0 };
    let additional_count = count(additional, body.additional.1) + u16::from(opt_len > 0);
    for n in [
        1,
        count(answers, body.answers.2),
        count(authority, u16::from(body.soa.is_some()) + body.authority.1),
        additional_count,
    ] {
        out.extend_from_slice(&n.to_be_bytes());
    }
    out.extend_from_slice(question);
    if answers {
        out.extend_from_slice(body.answers.0);
        out.extend_from_slice(body.answers.1);
    }
    if let (true, Some((rr, zone_at))) = (authority, body.soa) {
        // A compression pointer to where the zone starts inside the question name.
        out.extend_from_slice(
            &(u16::from(POINTER_BITS) << 8 | (HEADER_LEN + zone_at) as u16).to_be_bytes(),
        );
        out.extend_from_slice(rr);
    }
    if authority {
        out.extend_from_slice(body.authority.0);
    }
    if additional {
        out.extend_from_slice(body.additional.0);
    }
    if let Some(edns) = query.edns {
        push_opt(out, payload, edns.dnssec_ok, ecs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{parse_query, wire_name, QueryEdns, RRset};
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::rdata::A;
    use hickory_proto::rr::{RData, Record};

    use crate::testing::name;

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
        assert_eq!(parsed.name(), &*wire_name(&name("web.services.local.")));
        assert_eq!(parsed.qtype, 1);
        assert_eq!(
            parsed.edns,
            Some(QueryEdns {
                ecs: None,
                payload: 4096,
                version: 0,
                dnssec_ok: true,
                compact_ok: false
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
}
