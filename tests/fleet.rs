//! Answers for big and weighted services, against a real etcd: a service of 10,000 instances is
//! answered over UDP and TCP, A and SRV, never SERVFAIL; `--max-answers` gives complete small
//! answers that spread over every instance; weights shape which instance comes first.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use common::{
    build_query, eventually, exchange_message, http_get, metric, DnsServer, Etcd, Transport,
};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};

/// Instances of `services/big`.
const BIG: u32 = 10_000;

/// Puts `count` instances `services/<service>/i<n>` = `value(n)`.
async fn put_many(etcd: &Etcd, service: &str, count: u32, value: impl Fn(u32) -> String) {
    etcd.put_many(count, |n| (format!("services/{service}/i{n}"), value(n)))
        .await;
}

/// The address of instance `n` of the big service.
fn address(n: u32) -> String {
    format!("10.{}.{}.{}", n >> 16 & 0xff, n >> 8 & 0xff, n & 0xff)
}

/// Asks `name`/`qtype` over `transport`, with a 1,232-byte EDNS buffer or, when `plain`, without
/// EDNS (512 bytes).
async fn ask(
    addr: SocketAddr,
    name: &str,
    qtype: RecordType,
    transport: Transport,
    plain: bool,
) -> Message {
    let mut request = build_query(name, qtype);
    if plain {
        request.edns = None;
    }
    exchange_message(addr, &request, transport).await
}

/// Waits until the table holds every instance of the big service.
async fn wait_loaded(dns: &DnsServer) {
    eventually(
        "10,000 instances loaded",
        Duration::from_secs(30),
        || async {
            let (_, metrics) = http_get(dns.http, "/metrics").await;
            (metric(&metrics, "etcd_dns_instances") == Some(f64::from(BIG))).then_some(())
        },
    )
    .await;
}

/// A server on a fresh etcd holding the 10,000-instance service `big` (port 8080), with
/// `max_answers`.
async fn big_service(max_answers: Option<u16>) -> (Etcd, DnsServer) {
    let etcd = Etcd::start().await;
    put_many(&etcd, "big", BIG, |n| {
        format!(r#"{{"IP":"{}","port":8080}}"#, address(n))
    })
    .await;
    let dns = DnsServer::start_with(&etcd.endpoint, |c| c.max_answers = max_answers).await;
    dns.wait_ready().await;
    wait_loaded(&dns).await;
    (etcd, dns)
}

/// The A addresses of an answer, in answer order.
fn addresses_in_order(reply: &Message) -> Vec<String> {
    reply
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_service_of_ten_thousand_instances_is_answered_by_every_transport() {
    let (_etcd, dns) = big_service(None).await;
    let name = "big.services.local.";
    // UDP without EDNS: what fits 512 bytes, TC set so a client that can retries over TCP.
    let reply = ask(dns.addr, name, RecordType::A, Transport::Udp, true).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(reply.metadata.truncation, "TC: the set does not fit");
    assert!(
        (25..=30).contains(&reply.answers.len()),
        "{} A records in 512 bytes",
        reply.answers.len()
    );
    // UDP with EDNS 1232: more of them, still TC.
    let reply = ask(dns.addr, name, RecordType::A, Transport::Udp, false).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(reply.metadata.truncation);
    assert!(
        (70..=76).contains(&reply.answers.len()),
        "{} A records in 1232 bytes",
        reply.answers.len()
    );
    let distinct: BTreeSet<_> = addresses_in_order(&reply).into_iter().collect();
    assert_eq!(distinct.len(), reply.answers.len(), "no address twice");
    // TCP: as many as fit 65,535 bytes, no TC, never SERVFAIL.
    let reply = ask(dns.addr, name, RecordType::A, Transport::Tcp, false).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(!reply.metadata.truncation);
    assert!(
        reply.answers.len() > 4_000,
        "{} A records over TCP",
        reply.answers.len()
    );
    // SRV over TCP: records and, as far as they fit, their targets' addresses.
    for srv_name in [name, "_big._tcp.services.local."] {
        let reply = ask(dns.addr, srv_name, RecordType::SRV, Transport::Tcp, false).await;
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::NoError,
            "{srv_name}"
        );
        assert!(
            reply.answers.len() > 500,
            "{} SRV records",
            reply.answers.len()
        );
        assert!(
            !reply.additionals.is_empty(),
            "some targets' addresses in the additional section"
        );
        for additional in reply
            .additionals
            .iter()
            .filter(|r| r.record_type() == RecordType::A)
        {
            let target_named = reply.answers.iter().any(|a| match &a.data {
                RData::SRV(srv) => srv.target == additional.name,
                _ => false,
            });
            assert!(
                target_named,
                "{} is the target of an answered SRV record",
                additional.name
            );
        }
        let reply = ask(dns.addr, srv_name, RecordType::SRV, Transport::Udp, false).await;
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert!(reply.metadata.truncation && !reply.answers.is_empty());
    }
    let (_, metrics) = http_get(dns.http, "/metrics").await;
    let cut = metric(&metrics, r#"etcd_dns_partial_answers_total{reason="size"}"#);
    assert!(
        cut.is_some_and(|n| n >= 4.0),
        "partial answers counted:\n{metrics}"
    );
}

#[tokio::test]
async fn max_answers_gives_small_complete_answers_that_spread_over_every_instance() {
    let (_etcd, dns) = big_service(Some(8)).await;
    let name = "big.services.local.";
    let mut seen = BTreeSet::new();
    for _ in 0..1_500 {
        let reply = ask(dns.addr, name, RecordType::A, Transport::Udp, true).await;
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert!(!reply.metadata.truncation, "8 records fit: no TC");
        assert_eq!(reply.answers.len(), 8);
        seen.extend(addresses_in_order(&reply));
    }
    // Each UDP thread moves its window of 8 on by 8 per answer: 1,500 answers over two threads
    // reach at least 6,000 of the 10,000 instances.
    assert!(
        seen.len() >= 6_000,
        "{} instances answered over 1,500 queries",
        seen.len()
    );
    let reply = ask(dns.addr, name, RecordType::SRV, Transport::Udp, false).await;
    assert_eq!(
        (reply.answers.len(), reply.additionals.len()),
        (8, 8),
        "8 SRV, each with its target's A record"
    );
    assert!(!reply.metadata.truncation);
    let reply = ask(dns.addr, name, RecordType::A, Transport::Tcp, false).await;
    assert_eq!(reply.answers.len(), 8, "the cap holds over TCP too");
    let (_, metrics) = http_get(dns.http, "/metrics").await;
    let capped = metric(
        &metrics,
        r#"etcd_dns_partial_answers_total{reason="max_answers"}"#,
    );
    assert!(
        capped.is_some_and(|n| n >= 1_500.0),
        "capped answers counted:\n{metrics}"
    );
}

/// Three instances weighing 1, 10 and 100: over 3,000 answers of one record each, each comes
/// first in proportion to its weight (five standard deviations of tolerance: the server's
/// random source is not seeded here; the unit tests of `pick` check ±2 % with a fixed seed).
#[tokio::test]
async fn weights_shape_which_instance_comes_first() {
    let etcd = Etcd::start().await;
    for (n, weight) in [(1, 1), (2, 10), (3, 100)] {
        let value = format!(r#"{{"IP":"10.0.0.{n}","weight":{weight}}}"#);
        etcd.put(&format!("services/w/i{n}"), &value).await;
    }
    let dns = DnsServer::start_with(&etcd.endpoint, |c| c.max_answers = Some(1)).await;
    dns.wait_ready().await;
    let rounds = 3_000;
    let mut firsts: BTreeMap<String, u32> = BTreeMap::new();
    let mut queries = 0;
    while queries < rounds {
        let reply = ask(
            dns.addr,
            "w.services.local.",
            RecordType::A,
            Transport::Udp,
            false,
        )
        .await;
        if let Some(first) = addresses_in_order(&reply).first() {
            *firsts.entry(first.clone()).or_default() += 1;
            queries += 1;
        }
    }
    for (address, weight) in [("10.0.0.1", 1.0), ("10.0.0.2", 10.0), ("10.0.0.3", 100.0)] {
        let expected = weight / 111.0;
        let share = f64::from(firsts.get(address).copied().unwrap_or(0)) / f64::from(rounds);
        let sigma = (expected * (1.0 - expected) / f64::from(rounds)).sqrt();
        assert!(
            (share - expected).abs() <= 5.0 * sigma + 0.002,
            "{address} (weight {weight}) first in {share:.4} of answers, expected {expected:.4}: {firsts:?}"
        );
    }
}

/// The sorted A addresses of `name` over UDP (empty for NXDOMAIN or NODATA), with the rcode.
async fn tagged(addr: SocketAddr, name: &str, qtype: RecordType) -> (ResponseCode, Vec<String>) {
    let reply = ask(addr, name, qtype, Transport::Udp, false).await;
    let mut got: Vec<String> = reply
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            RData::SRV(srv) => Some(format!("{}:{}", srv.target, srv.port)),
            _ => None,
        })
        .collect();
    got.sort();
    (reply.metadata.response_code, got)
}

/// Tag lookups: `_<service>._<tag>.Z` answers A and SRV for the instances carrying the tag,
/// `_<service>._<t1>._<t2>.Z` for those carrying both (either order), `_tcp` every instance; a
/// tag no instance carries is NXDOMAIN, and a tag taken off an instance stops answering for it.
#[tokio::test]
async fn tags_select_instances() {
    let etcd = Etcd::start().await;
    for (n, tags) in [
        (1, r#"["canary","v2"]"#),
        (2, r#"["v2","EU"]"#),
        (3, r#"["v1","env=prod"]"#),
        (4, r#"[]"#),
    ] {
        let value = format!(r#"{{"IP":"10.0.0.{n}","port":80,"tags":{tags}}}"#);
        etcd.put(&format!("services/api/i{n}"), &value).await;
    }
    let dns = DnsServer::start(&etcd.endpoint).await;
    dns.wait_ready().await;
    let a = |list: &[u8]| -> Vec<String> { list.iter().map(|n| format!("10.0.0.{n}")).collect() };
    let ok = ResponseCode::NoError;
    let cases: [(&str, (ResponseCode, Vec<String>)); 8] = [
        ("_api._canary", (ok, a(&[1]))),
        ("_api._v2", (ok, a(&[1, 2]))),
        ("_api._eu", (ok, a(&[2]))),
        ("_API._V2._canary", (ok, a(&[1]))),
        ("_api._canary._v2", (ok, a(&[1]))),
        ("_api._v2._v1", (ResponseCode::NXDomain, vec![])),
        ("_api._nosuch", (ResponseCode::NXDomain, vec![])),
        ("api", (ok, a(&[1, 2, 3, 4]))),
    ];
    for (label, want) in &cases {
        let name = format!("{label}.services.local.");
        assert_eq!(
            &tagged(dns.addr, &name, RecordType::A).await,
            want,
            "{name} A"
        );
    }
    let srv = tagged(dns.addr, "_api._v2.services.local.", RecordType::SRV).await;
    assert_eq!(
        srv.1,
        ["i1.api.services.local.:80", "i2.api.services.local.:80"],
        "SRV of the v2 instances"
    );
    let all = tagged(dns.addr, "_api._tcp.services.local.", RecordType::SRV).await;
    assert_eq!(all.1.len(), 4, "_tcp keeps meaning every instance: {all:?}");
    // `env=prod` is no DNS label: kept in etcd, not a name.
    let (code, _) = tagged(dns.addr, "_api._env.services.local.", RecordType::A).await;
    assert_eq!(code, ResponseCode::NXDomain);
    // The canary loses its tag: the name goes with it.
    etcd.put(
        "services/api/i1",
        r#"{"IP":"10.0.0.1","port":80,"tags":["v2"]}"#,
    )
    .await;
    eventually("the canary tag gone", Duration::from_secs(5), || async {
        let (code, _) = tagged(dns.addr, "_api._canary.services.local.", RecordType::A).await;
        (code == ResponseCode::NXDomain).then_some(())
    })
    .await;
    assert_eq!(
        tagged(dns.addr, "_api._v2.services.local.", RecordType::A).await,
        (ok, a(&[1, 2]))
    );
}

/// A query for `name`/`qtype` carrying the Client Subnet `subnet`/`source`.
fn with_subnet(name: &str, qtype: RecordType, subnet: &str, source: u8) -> Message {
    with_scope(name, qtype, subnet, source, 0)
}

/// [`with_subnet`] with a SCOPE PREFIX-LENGTH, which a query must leave 0 (RFC 7871 §6).
fn with_scope(name: &str, qtype: RecordType, subnet: &str, source: u8, scope: u8) -> Message {
    use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
    let mut request = build_query(name, qtype);
    let ip = subnet.parse().expect("subnet address");
    if let Some(edns) = request.edns.as_mut() {
        edns.options_mut()
            .insert(EdnsOption::Subnet(ClientSubnet::new(ip, source, scope)));
    }
    request
}

/// The Client Subnet of a reply, as (address, source, scope).
fn reply_subnet(reply: &Message) -> Option<(String, u8, u8)> {
    use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
    match reply.edns.as_ref()?.options().get(EdnsCode::Subnet)? {
        EdnsOption::Subnet(subnet) => Some((
            subnet.addr().to_string(),
            subnet.source_prefix(),
            subnet.scope_prefix(),
        )),
        _ => None,
    }
}

/// `request` over UDP from `source` (a loopback address of the test's choosing) to `server`.
async fn ask_from(source: &str, server: SocketAddr, request: &Message) -> Message {
    let socket = tokio::net::UdpSocket::bind((source, 0))
        .await
        .expect("bind a loopback source address");
    let bytes = request.to_vec().expect("encode");
    socket.send_to(&bytes, server).await.expect("send");
    let mut buf = vec![0u8; 65_535];
    let (len, _) = tokio::time::timeout(Duration::from_secs(2), socket.recv_from(&mut buf))
        .await
        .expect("an answer within 2 s")
        .expect("receive");
    Message::from_vec(&buf[..len]).expect("reply parses")
}

/// Locality: instances in zones a (3), b (2) and none (1). A client at 127.0.0.1 is in zone a
/// by `--locality`, one at 127.0.0.2 in zone b; a Client Subnet from the trusted forwarder
/// (127.0.0.1) puts its client in zone b or nowhere; with `--locality-min 3` zone b has too few
/// and every instance answers.
/// Metrics count local and fallback answers; untrusted ECS is neither used nor echoed.
#[tokio::test]
async fn locality_prefers_the_clients_zone() {
    let etcd = Etcd::start().await;
    for (n, zone) in [(1, "a"), (2, "a"), (3, "a"), (4, "b"), (5, "b"), (6, "")] {
        let value = format!(r#"{{"IP":"10.0.0.{n}","port":80,"zone":"{zone}"}}"#);
        etcd.put(&format!("services/api/i{n}"), &value).await;
    }
    let start = |min: u16, trust: &'static str| {
        let endpoint = etcd.endpoint.clone();
        async move {
            let dns = DnsServer::start_with(&endpoint, move |c| {
                c.locality = Some(
                    etcd_dns::dns::locality::Locality::parse(
                        "127.0.0.0/8=a, 127.0.0.2/32=b, 10.2.0.0/16=b",
                        trust,
                        min,
                    )
                    .expect("locality"),
                );
            })
            .await;
            dns.wait_ready().await;
            dns
        }
    };
    let addrs = |reply: &Message| {
        let mut got = addresses_in_order(reply);
        got.sort();
        got
    };
    let a = |list: &[u8]| -> Vec<String> { list.iter().map(|n| format!("10.0.0.{n}")).collect() };
    let name = "api.services.local.";
    let dns = start(1, "127.0.0.1").await;
    // From 127.0.0.1, zone a.
    let reply = ask(dns.addr, name, RecordType::A, Transport::Udp, false).await;
    assert_eq!(addrs(&reply), a(&[1, 2, 3]));
    assert_eq!(reply_subnet(&reply), None, "no ECS asked, none echoed");
    let reply = ask(dns.addr, name, RecordType::SRV, Transport::Tcp, false).await;
    assert_eq!(reply.answers.len(), 3, "SRV local too, over TCP: {reply:?}");
    assert_eq!(reply.additionals.len(), 3, "with the targets' addresses");
    // Another source address, in zone b.
    let reply = ask_from("127.0.0.2", dns.addr, &build_query(name, RecordType::A)).await;
    assert_eq!(addrs(&reply), a(&[4, 5]), "127.0.0.2 is in zone b");
    // The instance's own name is not shaped.
    let reply = ask(
        dns.addr,
        "i4.api.services.local.",
        RecordType::A,
        Transport::Udp,
        false,
    )
    .await;
    assert_eq!(addrs(&reply), a(&[4]));
    // Client Subnet from a trusted forwarder: 10.2.3.0/24 is in zone b, scope 16.
    let request = with_subnet(name, RecordType::A, "10.2.3.0", 24);
    let reply = exchange_message(dns.addr, &request, Transport::Udp).await;
    assert_eq!(addrs(&reply), a(&[4, 5]));
    assert_eq!(reply_subnet(&reply), Some(("10.2.3.0".into(), 24, 16)));
    // 192.0.2.0/24 is in no zone: every instance; the scope tells it apart from both networks.
    let request = with_subnet(name, RecordType::A, "192.0.2.0", 24);
    let reply = exchange_message(dns.addr, &request, Transport::Udp).await;
    assert_eq!(addrs(&reply), a(&[1, 2, 3, 4, 5, 6]));
    assert_eq!(reply_subnet(&reply), Some(("192.0.2.0".into(), 24, 1)));
    // A malformed Client Subnet (a scope in a query, RFC 7871 §6) is ignored, as Knot ignores it:
    // the source address decides, nothing is echoed.
    let request = with_scope(name, RecordType::A, "10.2.3.0", 24, 8);
    let reply = exchange_message(dns.addr, &request, Transport::Udp).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert_eq!(addrs(&reply), a(&[1, 2, 3]));
    assert_eq!(reply_subnet(&reply), None);
    // A name locality does not shape: scope 0.
    let request = with_subnet("i1.api.services.local.", RecordType::A, "10.2.3.0", 24);
    let reply = exchange_message(dns.addr, &request, Transport::Udp).await;
    assert_eq!(reply_subnet(&reply), Some(("10.2.3.0".into(), 24, 0)));
    let (_, metrics) = http_get(dns.http, "/metrics").await;
    let count = |answer: &str| {
        metric(
            &metrics,
            &format!(r#"etcd_dns_locality_answers_total{{answer="{answer}"}}"#),
        )
    };
    assert_eq!(count("local"), Some(5.0), "{metrics}");
    assert_eq!(count("fallback"), Some(1.0), "{metrics}");
    drop(dns);

    // Not trusted: ECS neither used nor echoed; the source address (zone a) decides.
    let dns = start(1, "192.0.2.1").await;
    let request = with_subnet(name, RecordType::A, "10.2.3.0", 24);
    let reply = exchange_message(dns.addr, &request, Transport::Udp).await;
    assert_eq!(addrs(&reply), a(&[1, 2, 3]));
    assert_eq!(reply_subnet(&reply), None);
    drop(dns);

    // --locality-min 3: zone b's two instances are too few.
    let dns = start(3, "127.0.0.1").await;
    let request = with_subnet(name, RecordType::A, "10.2.3.0", 24);
    let reply = exchange_message(dns.addr, &request, Transport::Udp).await;
    assert_eq!(addrs(&reply), a(&[1, 2, 3, 4, 5, 6]));
    let reply = ask(dns.addr, name, RecordType::A, Transport::Udp, false).await;
    assert_eq!(addrs(&reply), a(&[1, 2, 3]), "zone a has three");
    let reply = ask_from("127.0.0.2", dns.addr, &build_query(name, RecordType::A)).await;
    assert_eq!(
        addrs(&reply),
        a(&[1, 2, 3, 4, 5, 6]),
        "zone b has two of three"
    );
}
