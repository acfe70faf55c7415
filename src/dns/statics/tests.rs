//! Compiled static zones answer as Knot 3.2 answers the same file (each expectation below was
//! read off Knot serving this zone; `scripts/compare-dns.py` repeats the comparison live).

use hickory_server::proto::op::{Message, MessageType, OpCode, Query};
use hickory_server::proto::rr::{Record, RecordType};

use super::StaticZones;
use crate::dns::zones::load_file;
use crate::testing::name;
use crate::wire::{parse_query, wire_name, write_reply};

const ZONE: &str = "$ORIGIN static.test.
$TTL 300
@          IN SOA  ns1 hostmaster 2026112601 3600 600 86400 120
@          IN NS   ns1
@          IN NS   ns2.elsewhere.example.
@          IN MX   10 mail
@          IN A    192.0.2.1
@          IN TXT  \"v=spf1 -all\"
ns1        IN A    192.0.2.53
ns1        IN AAAA 2001:db8::53
mail       IN A    192.0.2.25
www        IN A    192.0.2.81
www        IN A    192.0.2.80
www        IN AAAA 2001:db8::80
api        IN CNAME www
chain1     IN CNAME api
out        IN CNAME www.elsewhere.example.
dangling   IN CNAME nothing-here
loop1      IN CNAME loop2
loop2      IN CNAME loop1
a.b.c      IN A    192.0.2.3
*.wild     IN A    192.0.2.42
exists.wild IN TXT \"here\"
*.wc       IN CNAME www
sub        IN NS   ns.sub
sub        IN NS   ns.other.example.
ns.sub     IN A    192.0.2.200
todeleg    IN CNAME host.sub
";

/// The zone, compiled from a file as the server loads it.
fn zones(text: &str) -> StaticZones {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("static.test.zone");
    std::fs::write(&path, text).expect("write zone");
    StaticZones::compile(&[load_file(&path).expect("zone loads")])
}

/// The reply to `qname`/`qtype`, as the router writes it (over TCP: nothing cut).
fn ask(zones: &StaticZones, qname: &str, qtype: RecordType) -> Option<Message> {
    let mut query = Message::new(7, MessageType::Query, OpCode::Query);
    query.add_query(Query::query(name(qname), qtype));
    let bytes = query.to_vec().expect("encode");
    let query = parse_query(&bytes).expect("plain query");
    let (zone, zone_at) = zones.find(query.name())?;
    let body = zones.body(zone, query.name(), query.qtype, zone_at);
    let mut out = Vec::new();
    write_reply(&mut out, &query, &body, 1232, 65_535, true);
    Some(Message::from_vec(&out).expect("the reply parses"))
}

fn texts(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .map(|r| format!("{} {} {} {}", r.name, r.ttl, r.record_type(), r.data))
        .collect()
}

/// RCODE, AA, answers, authority, additional of the reply.
fn answer(zones: &StaticZones, qname: &str, qtype: RecordType) -> String {
    let reply = ask(zones, qname, qtype).expect("answered on the fast path");
    format!(
        "{} aa={} | {} | {} | {}",
        reply.metadata.response_code,
        reply.metadata.authoritative,
        texts(&reply.answers).join(", "),
        texts(&reply.authorities).join(", "),
        texts(&reply.additionals).join(", "),
    )
}

const SOA: &str =
    "static.test. 120 SOA ns1.static.test. hostmaster.static.test. 2026112601 3600 600 86400 120";

#[test]
fn positive_answers_keep_the_question_case_and_add_the_targets_addresses() {
    let zones = zones(ZONE);
    assert_eq!(
        answer(&zones, "WWW.Static.Test.", RecordType::A),
        "No Error aa=true | WWW.Static.Test. 300 A 192.0.2.80, WWW.Static.Test. 300 A 192.0.2.81 |  | "
    );
    assert_eq!(
        answer(&zones, "static.test.", RecordType::MX),
        "No Error aa=true | static.test. 300 MX 10 mail.static.test. |  | mail.static.test. 300 A 192.0.2.25"
    );
    assert_eq!(
        answer(&zones, "static.test.", RecordType::NS),
        "No Error aa=true | static.test. 300 NS ns1.static.test., static.test. 300 NS ns2.elsewhere.example. |  | \
         ns1.static.test. 300 A 192.0.2.53, ns1.static.test. 300 AAAA 2001:db8::53"
    );
    // ANY: one RRset, the lowest type (RFC 8482), as Knot.
    assert_eq!(
        answer(&zones, "static.test.", RecordType::ANY),
        "No Error aa=true | static.test. 300 A 192.0.2.1 |  | "
    );
}

#[test]
fn negative_answers_carry_the_soa_at_its_minimum() {
    let zones = zones(ZONE);
    let nodata = format!("No Error aa=true |  | {SOA} | ");
    let nxdomain = format!("Non-Existent Domain aa=true |  | {SOA} | ");
    assert_eq!(answer(&zones, "www.static.test.", RecordType::MX), nodata);
    assert_eq!(answer(&zones, "nope.static.test.", RecordType::A), nxdomain);
    assert_eq!(
        answer(&zones, "x.y.nope.static.test.", RecordType::A),
        nxdomain
    );
    // b.c exists as an empty non-terminal (a.b.c has records): NODATA, not NXDOMAIN.
    assert_eq!(answer(&zones, "b.c.static.test.", RecordType::A), nodata);
    assert_eq!(answer(&zones, "c.static.test.", RecordType::TXT), nodata);
    // The SOA's owner points into the question: its case is the question's.
    let reply = ask(&zones, "NOPE.STATIC.TEST.", RecordType::A).expect("answered");
    assert_eq!(reply.authorities[0].name.to_ascii(), "STATIC.TEST.");
}

#[test]
fn cname_chains_are_followed_inside_the_zone() {
    let zones = zones(ZONE);
    assert_eq!(
        answer(&zones, "chain1.static.test.", RecordType::AAAA),
        "No Error aa=true | chain1.static.test. 300 CNAME api.static.test., \
         api.static.test. 300 CNAME www.static.test., www.static.test. 300 AAAA 2001:db8::80 |  | "
    );
    assert_eq!(
        answer(&zones, "api.static.test.", RecordType::CNAME),
        "No Error aa=true | api.static.test. 300 CNAME www.static.test. |  | "
    );
    // The end has no such type: NODATA after the chain; no such name: NXDOMAIN (RFC 6604).
    assert_eq!(
        answer(&zones, "api.static.test.", RecordType::MX),
        format!("No Error aa=true | api.static.test. 300 CNAME www.static.test. | {SOA} | ")
    );
    assert_eq!(
        answer(&zones, "dangling.static.test.", RecordType::A),
        format!("Non-Existent Domain aa=true | dangling.static.test. 300 CNAME nothing-here.static.test. | {SOA} | ")
    );
    // Out of the zone, or round a loop: the chain as far as it goes.
    assert_eq!(
        answer(&zones, "out.static.test.", RecordType::A),
        "No Error aa=true | out.static.test. 300 CNAME www.elsewhere.example. |  | "
    );
    assert_eq!(
        answer(&zones, "loop1.static.test.", RecordType::A),
        "No Error aa=true | loop1.static.test. 300 CNAME loop2.static.test., \
         loop2.static.test. 300 CNAME loop1.static.test. |  | "
    );
}

#[test]
fn wildcards_answer_for_names_that_do_not_exist() {
    let zones = zones(ZONE);
    assert_eq!(
        answer(&zones, "X.y.wild.static.test.", RecordType::A),
        "No Error aa=true | X.y.wild.static.test. 300 A 192.0.2.42 |  | "
    );
    assert_eq!(
        answer(&zones, "x.wild.static.test.", RecordType::MX),
        format!("No Error aa=true |  | {SOA} | ")
    );
    // A name that exists is not covered by the wildcard; nor is the wildcard's parent.
    assert_eq!(
        answer(&zones, "exists.wild.static.test.", RecordType::A),
        format!("No Error aa=true |  | {SOA} | ")
    );
    assert_eq!(
        answer(&zones, "wild.static.test.", RecordType::A),
        format!("No Error aa=true |  | {SOA} | ")
    );
    assert_eq!(
        answer(&zones, "foo.wc.static.test.", RecordType::A),
        "No Error aa=true | foo.wc.static.test. 300 CNAME www.static.test., \
         www.static.test. 300 A 192.0.2.80, www.static.test. 300 A 192.0.2.81 |  | "
    );
}

#[test]
fn delegations_are_referrals_without_aa() {
    let zones = zones(ZONE);
    // The NS set in canonical order (RDATA octets), as Knot sends it.
    let referral = "No Error aa=false |  | sub.static.test. 300 NS ns.sub.static.test., \
                    sub.static.test. 300 NS ns.other.example. | ns.sub.static.test. 300 A 192.0.2.200";
    for (qname, qtype) in [
        ("sub.static.test.", RecordType::A),
        ("sub.static.test.", RecordType::NS),
        ("host.sub.static.test.", RecordType::TXT),
        ("ns.sub.static.test.", RecordType::A),
    ] {
        assert_eq!(answer(&zones, qname, qtype), referral, "{qname} {qtype}");
    }
    // DS is the parent's: an authoritative NODATA.
    assert_eq!(
        answer(&zones, "sub.static.test.", RecordType::DS),
        format!("No Error aa=true |  | {SOA} | ")
    );
    // A CNAME into the delegation: the CNAME, then the referral, AA set.
    let reply = ask(&zones, "todeleg.static.test.", RecordType::A).expect("answered");
    assert!(reply.metadata.authoritative);
    assert_eq!(reply.answers.len(), 1);
    assert_eq!(reply.authorities.len(), 2);
    assert_eq!(reply.additionals.len(), 1);
}

#[test]
fn names_are_found_in_their_zone_only() {
    let zones = zones(ZONE);
    assert_eq!(
        zones.find(&wire_name(&name("www.static.test."))),
        Some((0, 4))
    );
    assert_eq!(zones.find(&wire_name(&name("static.test."))), Some((0, 0)));
    assert_eq!(zones.find(&wire_name(&name("www.static.testing."))), None);
    assert_eq!(zones.find(&wire_name(&name("xstatic.test."))), None);
}
