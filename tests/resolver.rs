//! etcd-dns as a host's resolver: static zones, forwarding with a cache, reverse names,
//! protocol hygiene, and glibc's own resolver pointed at it.

mod common;

use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use etcd_dns::dns::acl::Acl;
use etcd_dns::dns::zones;
use etcd_dns::server::ServerConfig;
use etcd_dns::zone::StaticRecords;
use hickory_proto::op::{Edns, OpCode, ResponseCode};
use hickory_proto::rr::{RData, RecordType};

/// Upstream zones: a forward zone and a reverse zone, served by a second etcd-dns.
const UPSTREAM_ZONE: &str = "$TTL 300\n@ IN SOA ns hostmaster 1 60 10 3600 60\n@ IN NS ns\n\
     ns IN A 127.0.0.1\nwww IN A 192.0.2.80\nother IN A 192.0.2.81\n";
const UPSTREAM_REVERSE: &str =
    "$TTL 300\n@ IN SOA ns.example.test. hm.example.test. 1 60 10 3600 60\n\
     @ IN NS ns.example.test.\n1 IN PTR host.example.test.\n";
/// A zone file for the live zone itself.
const LIVE_ZONE: &str =
    "$TTL 5\n@ IN SOA ns1.services.local. admin.services.local. 1 60 10 3600 5\n\
     @ IN NS ns1.services.local.\nns1 IN A 127.0.0.1\ngateway IN A 192.0.2.1\n\
     gateway IN TXT \"static=true\"\n";

fn zone_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).expect("write zone");
    }
    dir
}

/// A second etcd-dns that serves `example.test.` and `2.0.192.in-addr.arpa.` from zone files
/// and forwards nothing: the upstream of the server under test.
async fn upstream(etcd: &Etcd) -> DnsServer {
    let dir = zone_dir(&[
        ("example.test.zone", UPSTREAM_ZONE),
        ("2.0.192.in-addr.arpa.zone", UPSTREAM_REVERSE),
    ]);
    let files = zones::load_dir(dir.path(), true).expect("upstream zones");
    DnsServer::start_with(&etcd.endpoint, |c| c.catalog.zone_files = files).await
}

async fn forwarding_to(etcd: &Etcd, upstream: SocketAddr) -> DnsServer {
    let dns = DnsServer::start_with(&etcd.endpoint, |c| {
        c.catalog.upstreams = Some(vec![upstream])
    })
    .await;
    dns.wait_ready().await;
    dns
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_other_names_and_caches_them() {
    let etcd = Etcd::start().await;
    let up = upstream(&etcd).await;
    let dns = forwarding_to(&etcd, up.addr).await;

    let m = query(dns.addr, "www.example.test.", RecordType::A, Transport::Udp).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(addresses(&m), vec!["192.0.2.80"]);
    // Without RD a resolver does not recurse for the client: REFUSED, as the catalog does.
    let mut no_rd = build_query("www.example.test.", RecordType::A);
    no_rd.metadata.recursion_desired = false;
    let refused = exchange_message(dns.addr, &no_rd, Transport::Udp).await;
    assert_eq!(refused.metadata.response_code, ResponseCode::Refused);
    assert!(m.metadata.recursion_available, "RA on forwarded answers");
    assert!(!m.metadata.authoritative, "not our zone: no AA");
    let m = query(
        dns.addr,
        "nope.example.test.",
        RecordType::A,
        Transport::Tcp,
    )
    .await;
    assert_eq!(
        m.metadata.response_code,
        ResponseCode::NXDomain,
        "upstream NXDOMAIN passes through"
    );

    // Forwarded reverse names: ours are answered by us, the rest upstream.
    let ptr = lookup_ptr(dns.addr, "1.2.0.192.in-addr.arpa.", Transport::Udp).await;
    assert_eq!(ptr, vec!["host.example.test."]);

    // The upstream goes away: the cached answer survives (its TTL is 300 s), a new name fails
    // fast with SERVFAIL instead of hanging.
    let up_addr = up.addr;
    drop(up);
    eventually("upstream stopped", Duration::from_secs(5), || async {
        let probe = "probe.example.test.";
        try_query(up_addr, probe, RecordType::A, Duration::from_millis(300))
            .await
            .is_none()
            .then_some(())
    })
    .await;
    let m = query(dns.addr, "www.example.test.", RecordType::A, Transport::Udp).await;
    assert_eq!(addresses(&m), vec!["192.0.2.80"], "answered from the cache");
    let started = Instant::now();
    let (m, _) = eventually(
        "SERVFAIL for an uncached name",
        Duration::from_secs(10),
        || async {
            let m = query(
                dns.addr,
                "other.example.test.",
                RecordType::A,
                Transport::Tcp,
            )
            .await;
            (m.metadata.response_code == ResponseCode::ServFail).then_some(m)
        },
    )
    .await;
    assert!(m.answers.is_empty());
    eprintln!("upstream down → SERVFAIL in {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_forward_refuses_other_names() {
    let (_etcd, dns) = etcd_and_dns().await;
    for name in ["www.example.test.", "1.2.0.192.in-addr.arpa."] {
        let m = query(dns.addr, name, RecordType::A, Transport::Udp).await;
        assert_eq!(m.metadata.response_code, ResponseCode::Refused, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zone_file_for_the_live_zone_adds_static_records() {
    let etcd = Etcd::start().await;
    etcd.put("services/gateway", r#"{"IP":"10.0.0.1"}"#).await;
    etcd.put("services/s-test", r#"{"IP":"192.168.1.26"}"#)
        .await;
    let dir = zone_dir(&[
        ("services.local.zone", LIVE_ZONE),
        ("example.test.zone", UPSTREAM_ZONE),
    ]);
    let files = zones::load_dir(dir.path(), true).expect("zones");
    let live_zone = hickory_proto::rr::Name::from_ascii("services.local.").expect("zone");
    let (statics, others): (Option<StaticRecords>, _) = zones::split_live(files, &live_zone);
    assert!(statics.is_some());
    let dns = DnsServer::start_with(&etcd.endpoint, |c| {
        c.live = etcd_dns::sources::Live::native(etcd_dns::zone::ZoneConfig {
            statics: statics.map(Arc::new),
            ..test_zone()
        });
        c.catalog.zone_files = others;
    })
    .await;
    dns.wait_ready().await;

    // Static and live addresses at one name form one RRset.
    let a = lookup_a(dns.addr, "gateway.services.local.", Transport::Udp).await;
    assert_eq!(a, vec!["10.0.0.1", "192.0.2.1"]);
    let txt = lookup_txt(dns.addr, "gateway.services.local.", Transport::Udp).await;
    assert_eq!(txt, vec!["static=true"]);
    let a = lookup_a(dns.addr, "s-test.services.local.", Transport::Udp).await;
    assert_eq!(a, vec!["192.168.1.26"]);
    // SOA names and NS from the file; the serial is still the etcd revision.
    let m = query(dns.addr, "services.local.", RecordType::SOA, Transport::Udp).await;
    match &m.answers[0].data {
        RData::SOA(soa) => {
            assert_eq!(soa.mname.to_ascii(), "ns1.services.local.");
            assert!(
                soa.serial >= 3,
                "serial follows the revision, not the file's 1"
            );
        }
        other => panic!("not a SOA: {other:?}"),
    }
    let m = query(dns.addr, "services.local.", RecordType::NS, Transport::Udp).await;
    assert_eq!(m.answers[0].data.to_string(), "ns1.services.local.");
    // Another static zone is authoritative as it is.
    let m = query(dns.addr, "www.example.test.", RecordType::A, Transport::Udp).await;
    assert!(m.metadata.authoritative);
    assert_eq!(addresses(&m), vec!["192.0.2.80"]);
    let m = query(
        dns.addr,
        "missing.example.test.",
        RecordType::A,
        Transport::Udp,
    )
    .await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert!(authority_soa(&m).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ptr_for_registered_addresses_follows_the_registry() {
    let (etcd, dns) = etcd_and_dns().await;
    etcd.put("services/web/n1", r#"{"IP":"10.0.0.1"}"#).await;
    etcd.put("services/db", r#"{"ip":"2001:db8::7"}"#).await;
    let (m, _) = wait_rcode(
        dns.addr,
        "1.0.0.10.in-addr.arpa.",
        RecordType::PTR,
        ResponseCode::NoError,
        Duration::from_secs(1),
    )
    .await;
    assert!(m.metadata.authoritative);
    assert_eq!(ptr_targets(&m), vec!["n1.web.services.local."]);
    let v6 = "7.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.";
    let (m, _) = wait_rcode(
        dns.addr,
        v6,
        RecordType::PTR,
        ResponseCode::NoError,
        Duration::from_secs(1),
    )
    .await;
    assert_eq!(ptr_targets(&m), vec!["db.services.local."]);
    etcd.delete("services/web/n1").await;
    // Gone from our table: the name is no longer ours (no forwarding here: REFUSED).
    wait_rcode(
        dns.addr,
        "1.0.0.10.in-addr.arpa.",
        RecordType::PTR,
        ResponseCode::Refused,
        Duration::from_secs(1),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_truncates_at_the_clients_size_and_tcp_is_complete() {
    let etcd = Etcd::start().await;
    let mut client = etcd.client().await;
    for i in 0..200u32 {
        let value = format!(r#"{{"IP":"10.7.{}.{}","port":8080}}"#, i / 250, i % 250 + 1);
        client
            .put(format!("services/big/n{i}"), value, None)
            .await
            .expect("put");
    }
    let dns = DnsServer::start(&etcd.endpoint).await;
    dns.wait_ready().await;

    // EDNS 1232 (our maximum too): 200 A records do not fit.
    let m = query(
        dns.addr,
        "big.services.local.",
        RecordType::A,
        Transport::Udp,
    )
    .await;
    assert!(m.metadata.truncation, "TC set");
    // As many of the 200 as fit, each once, all of the set (never an empty or wrong answer).
    let mut seen = std::collections::HashSet::new();
    for record in &m.answers {
        assert_eq!(record.record_type(), RecordType::A);
        assert!(seen.insert(record.data.to_string()), "no repeats");
    }
    assert!(
        (20..200).contains(&m.answers.len()),
        "{} of 200 records in 1232 bytes",
        m.answers.len()
    );
    let edns = m.edns.as_ref().expect("EDNS echoed");
    assert_eq!(edns.max_payload(), 1232, "our payload size");
    // Without EDNS: 512 bytes.
    let mut plain = build_query("big.services.local.", RecordType::A);
    plain.edns = None;
    let reply = exchange(dns.addr, &plain.to_vec().expect("encode"), Transport::Udp).await;
    assert!(reply.len() <= 512);
    let m = parse_reply(&reply, plain.metadata.id);
    assert!(m.metadata.truncation);
    assert!(!m.answers.is_empty(), "as many records as fit 512 bytes");
    // TCP: all of them.
    for qtype in [RecordType::A, RecordType::SRV] {
        let m = query(dns.addr, "big.services.local.", qtype, Transport::Tcp).await;
        assert!(!m.metadata.truncation);
        assert_eq!(m.answers.len(), 200, "{qtype} over TCP");
    }
    // Only the additional section does not fit: it is dropped, without TC (RFC 2181 §9).
    for i in 0..20u32 {
        let value = format!(r#"{{"IP":"10.8.0.{}","port":80}}"#, i + 1);
        client
            .put(format!("services/mid/instance-{i}"), value, None)
            .await
            .expect("put");
    }
    let m = wait_answers(
        dns.addr,
        "mid.services.local.",
        RecordType::SRV,
        20,
        Duration::from_secs(2),
    )
    .await;
    let full = query(
        dns.addr,
        "mid.services.local.",
        RecordType::SRV,
        Transport::Tcp,
    )
    .await;
    assert_eq!(
        full.additionals.len(),
        20,
        "over TCP the targets' addresses come along"
    );
    assert!(
        full.to_vec().expect("encode").len() > 1232,
        "the whole answer exceeds UDP"
    );
    assert!(!m.metadata.truncation, "answers complete: no TC");
    // The targets' addresses as fit (RFC 2181 §9: no TC for the additional section), each the
    // address of an answered target.
    assert!(
        (1..20).contains(&m.additionals.len()),
        "{} additional records",
        m.additionals.len()
    );
    let targets: std::collections::HashSet<String> = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            hickory_proto::rr::RData::SRV(srv) => Some(srv.target.to_string()),
            _ => None,
        })
        .collect();
    assert!(m
        .additionals
        .iter()
        .all(|r| targets.contains(&r.name.to_string())));
    assert!(m.edns.is_some(), "OPT kept");

    // A client advertising 4096 still gets at most our 1232.
    let mut big = build_query("big.services.local.", RecordType::A);
    let mut edns = Edns::new();
    edns.set_max_payload(4096);
    big.set_edns(edns);
    let reply = exchange(dns.addr, &big.to_vec().expect("encode"), Transport::Udp).await;
    assert!(reply.len() <= 1232, "reply of {} bytes", reply.len());
    parse_reply(&reply, big.metadata.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_axfr_opcodes_and_malformed_packets() {
    let etcd = Etcd::start().await;
    etcd.put(
        "services/web/n1",
        r#"{"IP":"10.0.0.1","port":80,"txt":["v=1"]}"#,
    )
    .await;
    let dns = DnsServer::start(&etcd.endpoint).await;
    dns.wait_ready().await;
    let name = "web.services.local.";

    // RFC 8482: ANY gets one RRset, not A + SRV + TXT.
    let m = query(dns.addr, name, RecordType::ANY, Transport::Udp).await;
    let types: std::collections::BTreeSet<_> = m.answers.iter().map(|r| r.record_type()).collect();
    assert_eq!(types.len(), 1, "one RRset: {types:?}");

    // QCLASS ANY is answered like IN (as Knot does); other classes are not ours.
    let mut any_class = build_query(name, RecordType::A);
    any_class.queries[0].set_query_class(hickory_proto::rr::DNSClass::ANY);
    let m = exchange_message(dns.addr, &any_class, Transport::Udp).await;
    assert_eq!(addresses(&m), vec!["10.0.0.1"]);
    let mut chaos = build_query(name, RecordType::A);
    chaos.queries[0].set_query_class(hickory_proto::rr::DNSClass::CH);
    let m = exchange_message(dns.addr, &chaos, Transport::Udp).await;
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    assert!(m.answers.is_empty());

    // The DO bit is copied (RFC 3225), on live and catalog answers alike.
    for qname in [name, "www.example.test."] {
        let mut dnssec = build_query(qname, RecordType::A);
        let mut edns = Edns::new();
        edns.set_max_payload(1232);
        edns.set_dnssec_ok(true);
        dnssec.set_edns(edns);
        let m = exchange_message(dns.addr, &dnssec, Transport::Udp).await;
        assert!(m.edns.expect("OPT").flags().dnssec_ok, "{qname}: DO echoed");
    }

    // Zone transfers are refused by default, over UDP and TCP.
    for qtype in [RecordType::AXFR, RecordType::IXFR] {
        let m = query(dns.addr, "services.local.", qtype, Transport::Tcp).await;
        assert_eq!(m.metadata.response_code, ResponseCode::Refused, "{qtype}");
        assert!(
            !m.metadata.authoritative,
            "{qtype}: a refusal is not authoritative"
        );
    }

    // Opcodes other than QUERY: NOTIMP.
    for opcode in [OpCode::Notify, OpCode::Update, OpCode::Status] {
        let mut request = build_query(name, RecordType::A);
        request.metadata.op_code = opcode;
        let m = exchange_message(dns.addr, &request, Transport::Udp).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NotImp, "{opcode:?}");
    }

    // EDNS version 1: BADVERS.
    let mut request = build_query(name, RecordType::A);
    let mut edns = Edns::new();
    edns.set_version(1);
    request.set_edns(edns);
    let m = exchange_message(dns.addr, &request, Transport::Udp).await;
    // BADVERS is extended rcode 16 (it shares the number with TSIG's BADSIG).
    assert_eq!(u16::from(m.metadata.response_code), 16);

    // Garbage after a valid header: FORMERR with the same ID. Shorter garbage is dropped.
    let id = rand_id();
    let mut garbage = id.to_be_bytes().to_vec();
    garbage.extend_from_slice(&[0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0]);
    garbage.extend_from_slice(&[0xff; 40]);
    let reply = exchange(dns.addr, &garbage, Transport::Udp).await;
    let m = parse_reply(&reply, id);
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
    assert!(
        m.edns.is_none(),
        "no OPT the query did not clearly have (RFC 6891 §7)"
    );
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket.send_to(b"\x01\x02\x03", dns.addr).expect("send");
    // Still serving after all of it.
    let m = query(dns.addr, name, RecordType::A, Transport::Tcp).await;
    assert_eq!(addresses(&m), vec!["10.0.0.1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axfr_for_allowed_clients_returns_the_current_table() {
    let etcd = Etcd::start().await;
    etcd.put("services/web/n1", r#"{"IP":"10.0.0.1","port":80}"#)
        .await;
    etcd.put("services/s-test", r#"{"IP":"192.168.1.26"}"#)
        .await;
    let dns = DnsServer::start_with(&etcd.endpoint, |c| {
        c.catalog.allow_transfer = Acl::parse("127.0.0.0/8").expect("acl");
    })
    .await;
    dns.wait_ready().await;
    let m = query(
        dns.addr,
        "services.local.",
        RecordType::AXFR,
        Transport::Tcp,
    )
    .await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    let first = m.answers.first().expect("records");
    let last = m.answers.last().expect("records");
    assert_eq!(first.record_type(), RecordType::SOA);
    assert_eq!(last.record_type(), RecordType::SOA);
    let text: Vec<String> = m
        .answers
        .iter()
        .map(|r| format!("{} {} {}", r.name, r.record_type(), r.data))
        .collect();
    for want in [
        "s-test.services.local. A 192.168.1.26",
        "n1.web.services.local. A 10.0.0.1",
        "web.services.local. SRV 10 10 80 n1.web.services.local.",
        "services.local. NS ns.services.local.",
    ] {
        assert!(
            text.iter().any(|t| t == want),
            "{want} missing from {text:#?}"
        );
    }
    assert!(
        !text.iter().any(|t| t.contains("in-addr.arpa")),
        "reverse names are not in the zone"
    );
}

/// glibc's resolver, in a private mount namespace whose /etc/resolv.conf points at etcd-dns
/// on port 53 of a loopback address of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn glibc_getent_resolves_services_and_upstream_names() {
    let etcd = Etcd::start().await;
    etcd.put("services/s-test", r#"{"IP":"192.168.1.26"}"#)
        .await;
    let up = upstream(&etcd).await;
    let up_addr = up.addr;
    let (ip, dns) =
        start_on_loopback_port_53(&etcd, |c| c.catalog.upstreams = Some(vec![up_addr])).await;
    dns.wait_ready().await;

    let dir = tempfile::tempdir().expect("dir");
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(
        &resolv,
        format!("nameserver {ip}\noptions timeout:2 attempts:1\n"),
    )
    .expect("resolv.conf");
    // nss-mdns would claim .local before DNS: this namespace resolves hosts by files, then DNS.
    let nsswitch = dir.path().join("nsswitch.conf");
    std::fs::write(&nsswitch, "hosts: files dns\n").expect("nsswitch.conf");
    let getent = |name: &str| getent_in_namespace(&resolv, &nsswitch, name);

    let out = getent("s-test.services.local");
    assert!(out.starts_with("192.168.1.26"), "getent said {out:?}");
    let out = getent("www.example.test");
    assert!(out.starts_with("192.0.2.80"), "getent said {out:?}");
    eprintln!(
        "getent transcript:\n{}\n{}",
        getent("s-test.services.local"),
        out
    );
}

/// Starts etcd-dns on port 53 of a random loopback address, trying another while one is taken.
async fn start_on_loopback_port_53(
    etcd: &Etcd,
    edit: impl Fn(&mut ServerConfig),
) -> (IpAddr, DnsServer) {
    // resolv.conf has no port, so glibc only asks port 53: the one fixed port in the tests. A
    // random 127.x.y.53 keeps concurrent runs apart; binding port 53 needs root (as in CI).
    const ATTEMPTS: usize = 20;
    let mut last = None;
    for _ in 0..ATTEMPTS {
        let ip = IpAddr::V4(Ipv4Addr::new(
            127,
            rand::random_range(100..=254),
            rand::random(),
            53,
        ));
        let listen = SocketAddr::new(ip, 53);
        match DnsServer::start_on(&etcd.endpoint, listen, &edit).await {
            Ok(dns) => return (ip, dns),
            Err(e) if e.kind() == ErrorKind::AddrInUse => last = Some(e),
            Err(e) => panic!("cannot bind {listen} (run the tests as root, as CI does): {e}"),
        }
    }
    panic!("no free loopback address for port 53 in {ATTEMPTS} tries: {last:?}");
}

fn getent_in_namespace(resolv: &Path, nsswitch: &Path, name: &str) -> String {
    let script = format!(
        "mount --bind {} /etc/resolv.conf && mount --bind {} /etc/nsswitch.conf && getent hosts {name}",
        resolv.display(),
        nsswitch.display()
    );
    let output = Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .output()
        .unwrap_or_else(|e| panic!("cannot run unshare (util-linux): {e}"));
    assert!(
        output.status.success(),
        "getent hosts {name} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_registrations_lands_quickly_and_oversized_tcp_answers_are_partial() {
    let (etcd, dns) = etcd_and_dns().await;
    // 2,500 instances of one service, written in transactions as a deployment tool would.
    let mut client = etcd.client().await;
    let started = Instant::now();
    for batch in 0..25u32 {
        let ops: Vec<etcd_client::TxnOp> = (0..100u32)
            .map(|i| {
                let n = batch * 100 + i;
                let value = format!(
                    r#"{{"IP":"10.{}.{}.{}","port":8080}}"#,
                    20 + n / 62500,
                    (n / 250) % 250,
                    n % 250 + 1
                );
                etcd_client::TxnOp::put(format!("services/huge/instance-{n}"), value, None)
            })
            .collect();
        client
            .txn(etcd_client::Txn::new().and_then(ops))
            .await
            .expect("txn");
    }
    let (m, _) = eventually(
        "2,500 addresses over TCP",
        Duration::from_secs(10),
        || async {
            let m = query(
                dns.addr,
                "huge.services.local.",
                RecordType::A,
                Transport::Tcp,
            )
            .await;
            (m.answers.len() == 2500).then_some(m)
        },
    )
    .await;
    eprintln!(
        "2,500 registrations → all answered over TCP: {:?}",
        started.elapsed()
    );
    assert!(!m.metadata.truncation);
    let m = query(
        dns.addr,
        "huge.services.local.",
        RecordType::A,
        Transport::Udp,
    )
    .await;
    assert!(m.metadata.truncation, "2,500 addresses do not fit UDP");
    assert!(!m.answers.is_empty(), "as many as fit");
    // 2,500 SRV records exceed even a TCP message (64 KiB): as many as fit, never SERVFAIL.
    let m = query(
        dns.addr,
        "huge.services.local.",
        RecordType::SRV,
        Transport::Tcp,
    )
    .await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(
        (500..2500).contains(&m.answers.len()),
        "{} SRV records in one TCP message",
        m.answers.len()
    );
    assert!(m.answers.iter().all(|r| r.record_type() == RecordType::SRV));
}
