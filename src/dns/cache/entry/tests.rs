//! Wire patching: every TTL counted down (compressed names, names inside RDATA), OPT left
//! alone, the client's ID, flags and question case, and the size rules.

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, CNAME, NS, SOA};
use hickory_proto::rr::{RData, Record, RecordType};

use super::*;
use crate::dns::reply::fit;
use crate::testing::name;

fn record(owner: &str, ttl: u32, data: RData) -> Record {
    Record::from_rdata(name(owner), ttl, data)
}

/// A reply to `qname`/A as an upstream path encodes it (hickory compresses every name).
fn reply(qname: &str, code: ResponseCode, dnssec_ok: bool) -> Message {
    let mut m = Message::new(0x1111, MessageType::Response, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.metadata.recursion_available = true;
    m.metadata.response_code = code;
    m.add_query(Query::query(name(qname), RecordType::A));
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    edns.set_dnssec_ok(dnssec_ok);
    m.set_edns(edns);
    m
}

fn soa(ttl: u32, minimum: u32) -> Record {
    let data = SOA::new(
        name("ns.example.test."),
        name("hm.example.test."),
        7,
        60,
        10,
        3600,
        minimum,
    );
    record("example.test.", ttl, RData::SOA(data))
}

/// A positive answer: a CNAME chain, an NS in authority and its glue in additional.
fn positive(qname: &str) -> Vec<u8> {
    let mut m = reply(qname, ResponseCode::NoError, true);
    m.answers.push(record(
        qname,
        300,
        RData::CNAME(CNAME(name("web.example.test."))),
    ));
    m.answers.push(record(
        "web.example.test.",
        60,
        RData::A(A::new(192, 0, 2, 1)),
    ));
    m.authorities.push(record(
        "example.test.",
        3600,
        RData::NS(NS(name("ns.example.test."))),
    ));
    m.additionals.push(record(
        "ns.example.test.",
        7200,
        RData::A(A::new(192, 0, 2, 53)),
    ));
    m.to_vec().expect("encode")
}

fn question_len(bytes: &[u8]) -> usize {
    crate::wire::question_bytes(bytes).expect("question").len()
}

fn ttls(records: &[Record]) -> Vec<u32> {
    records.iter().map(|r| r.ttl).collect()
}

/// `entry` written for a client asking `qname` with ID 0xbeef, RD and CD, `elapsed` seconds
/// after it was stored.
fn write_for(entry: &Entry, qname: &str, elapsed: u32, limit: Limit) -> (Vec<u8>, Message) {
    let mut query = Message::new(0xbeef, MessageType::Query, OpCode::Query);
    query.add_query(Query::query(name(qname), RecordType::A));
    let bytes = query.to_vec().expect("encode");
    let question = crate::wire::question_bytes(&bytes).expect("question");
    let head = [0xbe, 0xef, FLAG_RD, FLAG_CD];
    let mut out = vec![1, 2, 3];
    assert!(entry.write(&mut out, head, question, elapsed, limit));
    let message = Message::from_vec(&out).expect("hickory reads the copy");
    (out, message)
}

const UDP: Limit = Limit {
    size: 1232,
    stream: false,
};

#[test]
fn ttls_count_down_everywhere_and_opt_stays() {
    let bytes = positive("www.example.test.");
    let entry = Entry::parse(&bytes, question_len(&bytes)).expect("cacheable");
    assert_eq!(entry.lifetime, 60, "the smallest TTL");
    let (out, m) = write_for(&entry, "WWW.Example.TEST.", 7, UDP);
    assert_eq!(out.len(), bytes.len());
    assert_eq!(m.metadata.id, 0xbeef);
    assert!(m.metadata.recursion_desired && m.metadata.checking_disabled);
    assert!(
        m.metadata.recursion_available,
        "the rest of the header as stored"
    );
    assert_eq!(m.queries[0].name().to_ascii(), "WWW.Example.TEST.");
    assert_eq!(ttls(&m.answers), vec![293, 53]);
    assert_eq!(ttls(&m.authorities), vec![3593]);
    assert_eq!(ttls(&m.additionals), vec![7193]);
    // Compressed owners point into the question: they read in the client's case.
    assert_eq!(m.answers[0].name.to_ascii(), "WWW.Example.TEST.");
    let edns = m.edns.expect("OPT");
    assert!(
        edns.flags().dnssec_ok,
        "OPT's TTL field (flags) is not a TTL"
    );
    assert_eq!(
        (edns.max_payload(), edns.version(), edns.rcode_high()),
        (1232, 0, 0)
    );
    // Past a record's TTL: 0, never a wrap-around.
    let (_, m) = write_for(&entry, "www.example.test.", 400, UDP);
    assert_eq!(ttls(&m.answers), vec![0, 0]);
    // A question of another length does not fit the entry.
    let mut out = Vec::new();
    let question = b"\x01x\x00\x00\x01\x00\x01";
    assert!(!entry.write(&mut out, [0; 4], question, 0, UDP));
}

#[test]
fn negative_answers_live_by_the_soa() {
    let mut nx = reply("nope.example.test.", ResponseCode::NXDomain, false);
    nx.authorities.push(soa(3600, 45));
    let bytes = nx.to_vec().expect("encode");
    let entry = Entry::parse(&bytes, question_len(&bytes)).expect("NXDOMAIN with SOA");
    assert_eq!(entry.lifetime, 45, "min(SOA TTL, MINIMUM)");
    let (_, m) = write_for(&entry, "NOPE.example.test.", 5, UDP);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(
        ttls(&m.authorities),
        vec![40],
        "the SOA as RFC 2308 §3 has it, counted down"
    );
    // NODATA: NOERROR, no answers, SOA.
    let mut nodata = reply("www.example.test.", ResponseCode::NoError, false);
    nodata.authorities.push(soa(20, 300));
    let bytes = nodata.to_vec().expect("encode");
    let entry = Entry::parse(&bytes, question_len(&bytes)).expect("NODATA with SOA");
    assert_eq!(entry.lifetime, 20);
    // Capped at an hour.
    let mut long = reply("www.example.test.", ResponseCode::NXDomain, false);
    long.authorities.push(soa(86_400, 86_400));
    let bytes = long.to_vec().expect("encode");
    let entry = Entry::parse(&bytes, question_len(&bytes)).expect("cacheable");
    assert_eq!(entry.lifetime, MAX_NEGATIVE_TTL);
}

#[test]
fn what_is_not_kept() {
    let no_soa = reply("nope.example.test.", ResponseCode::NXDomain, false);
    let servfail = reply("www.example.test.", ResponseCode::ServFail, false);
    let refused = reply("www.example.test.", ResponseCode::Refused, false);
    let mut zero = reply("www.example.test.", ResponseCode::NoError, false);
    zero.answers.push(record(
        "www.example.test.",
        0,
        RData::A(A::new(192, 0, 2, 1)),
    ));
    let mut truncated = reply("www.example.test.", ResponseCode::NoError, false);
    truncated.metadata.truncation = true;
    truncated.answers.push(record(
        "www.example.test.",
        60,
        RData::A(A::new(192, 0, 2, 1)),
    ));
    for (what, m) in [
        ("negative without SOA", no_soa),
        ("SERVFAIL", servfail),
        ("REFUSED", refused),
        ("TTL 0", zero),
        ("TC", truncated),
    ] {
        let bytes = m.to_vec().expect("encode");
        assert!(
            Entry::parse(&bytes, question_len(&bytes)).is_none(),
            "{what}"
        );
    }
    let bytes = positive("www.example.test.");
    let len = question_len(&bytes);
    assert!(
        Entry::parse(&bytes[..bytes.len() - 1], len).is_none(),
        "cut short"
    );
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(Entry::parse(&longer, len).is_none(), "trailing bytes");
    assert!(
        Entry::parse(&bytes, len + 1).is_none(),
        "wrong question length"
    );
}

#[test]
fn size_rules_are_the_catalog_paths() {
    let bytes = positive("www.example.test.");
    let entry = Entry::parse(&bytes, question_len(&bytes)).expect("cacheable");
    let whole = Message::from_vec(&bytes).expect("parse");
    // Without the additional section it fits: dropped, no TC, OPT kept.
    let limit = Limit {
        size: bytes.len() - 10,
        stream: false,
    };
    let (out, m) = write_for(&entry, "www.example.test.", 0, limit);
    assert!(out.len() <= limit.size && !m.metadata.truncation);
    assert_eq!(
        (m.answers.len(), m.authorities.len(), m.additionals.len()),
        (2, 1, 0)
    );
    assert!(m.edns.is_some());
    let expected = Message::from_vec(&fit(whole.clone(), limit)).expect("parse");
    assert_eq!(m.answers, expected.answers);
    assert_eq!(m.additionals, expected.additionals);
    // Smaller still: header, question and OPT with TC — byte for byte what `fit` sends.
    let limit = Limit {
        size: 60,
        stream: false,
    };
    let (out, m) = write_for(&entry, "www.example.test.", 0, limit);
    assert!(m.metadata.truncation && m.answers.is_empty() && m.authorities.is_empty());
    let mut expected = whole;
    expected.metadata.id = 0xbeef;
    expected.metadata.checking_disabled = true;
    assert_eq!(out, fit(expected, limit));
}

#[test]
fn stale_copies_say_thirty_seconds() {
    let bytes = positive("www.example.test.");
    let entry = Entry::parse(&bytes, question_len(&bytes)).expect("cacheable");
    let stale = entry.staled();
    assert!(stale.stale && stale.lifetime == STALE_TTL);
    let (_, m) = write_for(&stale, "www.example.test.", 0, UDP);
    assert_eq!(ttls(&m.answers), vec![30, 30]);
    assert_eq!(ttls(&m.additionals), vec![30]);
    assert!(m.edns.expect("OPT").flags().dnssec_ok);
}
