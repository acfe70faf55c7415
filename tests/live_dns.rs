//! The live zone end to end: a real etcd, etcd-dns on port 0, real DNS queries over UDP and TCP.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};

const ZONE: &str = "services.local.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_format_key_written_by_etcdctl_resolves() {
    let (etcd, dns) = etcd_and_dns().await;
    let etcdctl = std::env::var("ETCDCTL_BIN").unwrap_or_else(|_| "etcdctl".into());
    let status = std::process::Command::new(&etcdctl)
        .env("ETCDCTL_API", "3")
        .args(["--endpoints", &etcd.endpoint, "put", "services/s-test"])
        .arg(r#"{"IP":"192.168.1.26"}"#)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap_or_else(|e| {
            panic!("cannot run {etcdctl}: {e}; install it with `apt-get install -y etcd-client`")
        });
    assert!(status.success(), "etcdctl put failed");
    for transport in Transport::BOTH {
        let (answer, _) = eventually("s-test resolves", Duration::from_secs(1), || async {
            let m = query(dns.addr, "s-test.services.local.", RecordType::A, transport).await;
            (!m.answers.is_empty()).then_some(m)
        })
        .await;
        assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
        assert!(answer.metadata.authoritative, "AA set");
        assert_eq!(addresses(&answer), vec!["192.168.1.26"]);
        assert_eq!(answer.answers[0].ttl, 5, "default --ttl");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_keep_the_query_case() {
    let etcd = Etcd::start().await;
    etcd.put("services/s-test", r#"{"IP":"192.168.1.26"}"#)
        .await;
    let dns = DnsServer::start(&etcd.endpoint).await;
    dns.wait_ready().await;
    let m = query(
        dns.addr,
        "S-Test.Services.LOCAL.",
        RecordType::A,
        Transport::Udp,
    )
    .await;
    assert_eq!(addresses(&m), vec!["192.168.1.26"]);
    assert_eq!(m.answers[0].name.to_ascii(), "S-Test.Services.LOCAL.");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_give_two_a_and_two_srv_with_additionals() {
    let (etcd, dns) = etcd_and_dns().await;
    etcd.put("services/web/n1", r#"{"IP":"10.0.0.1","port":8080}"#)
        .await;
    etcd.put(
        "services/web/n2",
        r#"{"IP":"10.0.0.2","port":8081,"priority":1,"weight":5}"#,
    )
    .await;
    let a = wait_answers(
        dns.addr,
        "web.services.local.",
        RecordType::A,
        2,
        Duration::from_secs(1),
    )
    .await;
    assert_eq!(addresses(&a), vec!["10.0.0.1", "10.0.0.2"]);

    for name in [
        "web.services.local.",
        "_web._tcp.services.local.",
        "_web._udp.services.local.",
    ] {
        for transport in Transport::BOTH {
            let m = query(dns.addr, name, RecordType::SRV, transport).await;
            assert_eq!(
                srv_records(&m),
                vec![
                    "1 5 8081 n2.web.services.local.",
                    "10 10 8080 n1.web.services.local."
                ],
                "{name} over {transport:?}"
            );
            assert_eq!(
                additional_addresses(&m),
                vec![
                    "n1.web.services.local. 10.0.0.1",
                    "n2.web.services.local. 10.0.0.2"
                ]
            );
        }
    }
    // Each instance alone at its own name.
    let one = lookup_a(dns.addr, "n2.web.services.local.", Transport::Udp).await;
    assert_eq!(one, vec!["10.0.0.2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_rotates_across_answers() {
    let etcd = Etcd::start().await;
    for i in 1..=3 {
        etcd.put(
            &format!("services/api/n{i}"),
            &format!(r#"{{"IP":"10.0.1.{i}"}}"#),
        )
        .await;
    }
    let dns = DnsServer::start(&etcd.endpoint).await;
    dns.wait_ready().await;
    let mut firsts = BTreeSet::new();
    for _ in 0..6 {
        let m = query(
            dns.addr,
            "api.services.local.",
            RecordType::A,
            Transport::Udp,
        )
        .await;
        assert_eq!(m.answers.len(), 3, "all instances, no duplicates");
        firsts.insert(m.answers[0].data.to_string());
    }
    assert!(
        firsts.len() > 1,
        "the first address never changed: {firsts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aaaa_txt_and_value_ttl() {
    let etcd = Etcd::start().await;
    etcd.put(
        "services/db",
        r#"{"ip":"2001:db8::7","ttl":30,"txt":{"role":"primary"}}"#,
    )
    .await;
    etcd.put("services/cache", r#"{"IP":"10.0.0.9","txt":["a=1","b=2"]}"#)
        .await;
    let dns = DnsServer::start(&etcd.endpoint).await;
    dns.wait_ready().await;

    let m = query(
        dns.addr,
        "db.services.local.",
        RecordType::AAAA,
        Transport::Udp,
    )
    .await;
    assert_eq!(addresses(&m), vec!["2001:db8::7"]);
    assert_eq!(m.answers[0].ttl, 30, "ttl from the value");

    let txt = lookup_txt(dns.addr, "db.services.local.", Transport::Tcp).await;
    assert_eq!(txt, vec!["role=primary"]);
    let txt = lookup_txt(dns.addr, "cache.services.local.", Transport::Udp).await;
    assert_eq!(txt, vec!["a=1", "b=2"]);

    // An IPv6-only service has no A: NODATA, not NXDOMAIN.
    let m = query(
        dns.addr,
        "db.services.local.",
        RecordType::A,
        Transport::Udp,
    )
    .await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodata_and_nxdomain_carry_the_soa_with_the_negative_ttl() {
    let etcd = Etcd::start().await;
    etcd.put("services/s-test", r#"{"IP":"192.168.1.26"}"#)
        .await;
    etcd.put("services/api.v2/n1", r#"{"IP":"10.2.0.1"}"#).await;
    let dns = DnsServer::start_with(&etcd.endpoint, |c| {
        c.live = etcd_dns::sources::Live::native(etcd_dns::zone::ZoneConfig {
            negative_ttl: 3,
            ..test_zone()
        })
    })
    .await;
    dns.wait_ready().await;

    let cases = [
        (
            "missing.services.local.",
            RecordType::A,
            ResponseCode::NXDomain,
        ),
        (
            "x.s-test.services.local.",
            RecordType::A,
            ResponseCode::NXDomain,
        ),
        (
            "s-test.services.local.",
            RecordType::MX,
            ResponseCode::NoError,
        ),
        (
            "s-test.services.local.",
            RecordType::AAAA,
            ResponseCode::NoError,
        ),
        // An empty non-terminal exists (RFC 8020): NODATA.
        ("v2.services.local.", RecordType::A, ResponseCode::NoError),
        ("services.local.", RecordType::A, ResponseCode::NoError),
    ];
    for (name, qtype, rcode) in cases {
        for transport in Transport::BOTH {
            let m = query(dns.addr, name, qtype, transport).await;
            assert_eq!(m.metadata.response_code, rcode, "{name} {qtype}");
            assert!(m.answers.is_empty(), "{name} {qtype}: no answer");
            assert!(m.metadata.authoritative, "{name} {qtype}: AA");
            let soa = authority_soa(&m).unwrap_or_else(|| panic!("{name} {qtype}: SOA"));
            assert_eq!(soa.ttl, 3, "negative TTL on the SOA");
            match &soa.data {
                RData::SOA(s) => assert_eq!(s.minimum, 3, "SOA MINIMUM = negative TTL"),
                other => panic!("not a SOA: {other:?}"),
            }
        }
    }
    let a = lookup_a(dns.addr, "n1.api.v2.services.local.", Transport::Udp).await;
    assert_eq!(a, vec!["10.2.0.1"], "dotted service names work");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apex_soa_serial_is_the_revision_and_ns_exists() {
    let (etcd, dns) = etcd_and_dns().await;
    let serial = |m: &hickory_proto::op::Message| match &m.answers[0].data {
        RData::SOA(s) => s.serial,
        other => panic!("not a SOA: {other:?}"),
    };
    let before = serial(&query(dns.addr, ZONE, RecordType::SOA, Transport::Udp).await);
    let put = etcd
        .client()
        .await
        .put("services/x", r#"{"IP":"10.9.9.9"}"#, None)
        .await
        .expect("put");
    let revision = put.header().expect("header").revision() as u32;
    let (after, _) = eventually(
        "serial follows the revision",
        Duration::from_secs(1),
        || async {
            let s = serial(&query(dns.addr, ZONE, RecordType::SOA, Transport::Udp).await);
            (s == revision).then_some(s)
        },
    )
    .await;
    assert!(after > before);
    let ns = query(dns.addr, ZONE, RecordType::NS, Transport::Tcp).await;
    assert_eq!(ns.answers.len(), 1);
    assert_eq!(ns.answers[0].record_type(), RecordType::NS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_values_are_skipped_and_neighbours_keep_answering() {
    let etcd = Etcd::start().await;
    etcd.put("services/good", r#"{"IP":"10.0.0.1"}"#).await;
    etcd.put("services/broken", r#"{"IP":"#).await;
    etcd.put("services/bad key", r#"{"IP":"10.0.0.3"}"#).await;
    let dns = DnsServer::start(&etcd.endpoint).await;
    dns.wait_ready().await;
    let a = lookup_a(dns.addr, "good.services.local.", Transport::Udp).await;
    assert_eq!(a, vec!["10.0.0.1"]);
    let m = query(
        dns.addr,
        "broken.services.local.",
        RecordType::A,
        Transport::Udp,
    )
    .await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);

    // A live key whose value turns invalid loses its records; its neighbour stays.
    etcd.put("services/flaky", r#"{"IP":"10.0.0.4"}"#).await;
    wait_rcode(
        dns.addr,
        "flaky.services.local.",
        RecordType::A,
        ResponseCode::NoError,
        Duration::from_secs(1),
    )
    .await;
    etcd.put("services/flaky", r#"{"IP":"not-an-ip"}"#).await;
    wait_rcode(
        dns.addr,
        "flaky.services.local.",
        RecordType::A,
        ResponseCode::NXDomain,
        Duration::from_secs(1),
    )
    .await;
    let a = lookup_a(dns.addr, "good.services.local.", Transport::Tcp).await;
    assert_eq!(a, vec!["10.0.0.1"]);

    // Fixing it brings it back.
    etcd.put("services/broken", r#"{"IP":"10.0.0.2"}"#).await;
    let (m, _) = wait_rcode(
        dns.addr,
        "broken.services.local.",
        RecordType::A,
        ResponseCode::NoError,
        Duration::from_secs(1),
    )
    .await;
    assert_eq!(addresses(&m), vec!["10.0.0.2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_key_removes_the_name() {
    let etcd = Etcd::start().await;
    etcd.put("services/gone", r#"{"IP":"10.0.0.5"}"#).await;
    let dns = DnsServer::start(&etcd.endpoint).await;
    dns.wait_ready().await;
    wait_rcode(
        dns.addr,
        "gone.services.local.",
        RecordType::A,
        ResponseCode::NoError,
        Duration::from_secs(1),
    )
    .await;
    etcd.delete("services/gone").await;
    wait_rcode(
        dns.addr,
        "gone.services.local.",
        RecordType::A,
        ResponseCode::NXDomain,
        Duration::from_secs(1),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servfail_until_the_registry_is_read() {
    // Nothing listens at this endpoint: the first read never completes.
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    let dns = DnsServer::start(&endpoint).await;
    for transport in Transport::BOTH {
        let m = query(dns.addr, "s-test.services.local.", RecordType::A, transport).await;
        assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    }
    // Names outside the zone are not ours: REFUSED (no forwarding configured here).
    let m = query(dns.addr, "example.com.", RecordType::A, Transport::Udp).await;
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
}

/// A registry whose values add up to more than the etcd client's 4 MiB message limit within
/// one page is still read whole: pages are sized from the values seen, and a page that comes
/// back too large is asked again shorter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_values_do_not_stop_the_initial_read() {
    let etcd = Etcd::start().await;
    let mut client = etcd.client().await;
    // 700 × 7 KB ≈ 4.9 MB, all within the first page of 1,000 keys. Unknown fields are ignored.
    let padding = "x".repeat(7_000);
    for i in 0..700u32 {
        let value = format!(
            r#"{{"IP":"10.1.{}.{}","note":"{padding}"}}"#,
            i / 256,
            i % 256
        );
        client
            .put(format!("services/big{i}"), value, None)
            .await
            .expect("put");
    }
    let dns = DnsServer::start(&etcd.endpoint).await;
    dns.wait_ready().await;
    for (name, want) in [("big0", "10.1.0.0"), ("big699", "10.1.2.187")] {
        let a = lookup_a(dns.addr, &format!("{name}.services.local."), Transport::Udp).await;
        assert_eq!(a, vec![want], "{name}");
    }
}
