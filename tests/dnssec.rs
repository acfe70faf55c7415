//! DNSSEC online signing checked by validators that are not ours: unbound (with the DS that
//! `etcd-dns dnssec ds` prints as its trust anchor) and BIND's delv validate positive answers,
//! SRV, denials of names and of types, the apex; right after a registration and right after a
//! removal; a wrong anchor makes unbound refuse (the validation is real). The key comes from
//! BIND's dnssec-keygen, as users make it; bad keys stop the server at start.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::validator::{delv, delv_anchors, tool, Unbound};
use common::*;
use hickory_proto::dnssec::rdata::DNSSECRData;
use hickory_proto::dnssec::Verifier;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{DNSClass, RData, RecordType};

const ZONE: &str = "services.local";
/// How long a change may take to show, and unbound to start.
const SETTLE: Duration = Duration::from_secs(15);

/// A key made by BIND's dnssec-keygen in `dir`: the path of its .private file.
fn bind_key(dir: &Path) -> PathBuf {
    let output = Command::new(tool("dnssec-keygen", "bind9-utils"))
        .args(["-a", "ECDSAP256SHA256", "-n", "ZONE", "-f", "KSK", "-K"])
        .arg(dir)
        .arg(ZONE)
        .output()
        .expect("run dnssec-keygen");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stem = String::from_utf8_lossy(&output.stdout).trim().to_string();
    dir.join(format!("{stem}.private"))
}

/// `etcd-dns dnssec ARGS`: stdout lines, or a panic with stderr.
fn dnssec_cli(args: &[&str]) -> Vec<String> {
    let output = Command::new(bin("etcd-dns"))
        .arg("dnssec")
        .args(args)
        .output()
        .expect("run etcd-dns dnssec");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(String::from)
        .collect()
}

/// Waits until `name` answers the one address `ip` (over UDP).
async fn wait_address(addr: SocketAddr, name: &str, ip: &str) {
    eventually(&format!("{name} → {ip}"), SETTLE, || async {
        (lookup_a(addr, name, Transport::Udp).await == [ip]).then_some(())
    })
    .await;
}

/// A query with DO (and AD, as a stub asking a validator does).
fn signed_query(name: &str, qtype: RecordType) -> Message {
    let mut query = build_query(name, qtype);
    query.metadata.authentic_data = true;
    if let Some(edns) = query.edns.as_mut() {
        edns.set_dnssec_ok(true);
    }
    query
}

/// unbound's answer to `name`/`qtype`, asserted validated (AD) with `rcode`.
async fn validated(
    unbound: &Unbound,
    name: &str,
    qtype: RecordType,
    rcode: ResponseCode,
) -> Message {
    // Over TCP: a validated answer may be larger than a UDP reply from unbound can carry.
    let reply = exchange_message(unbound.addr, &signed_query(name, qtype), Transport::Tcp).await;
    assert_eq!(
        reply.metadata.response_code,
        rcode,
        "{name} {qtype}: {reply}\n{}",
        unbound.log()
    );
    assert!(
        reply.metadata.authentic_data,
        "{name} {qtype} not validated (no AD): {reply}\n{}",
        unbound.log()
    );
    reply
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validators_accept_every_answer_of_the_signed_zone_also_right_after_changes() {
    let etcd = Etcd::start().await;
    etcd.put("services/s-test", r#"{"IP":"192.168.1.26"}"#)
        .await;
    etcd.put("services/web/n1", r#"{"IP":"10.0.0.1","port":8080}"#)
        .await;
    etcd.put("services/web/n2", r#"{"IP":"10.0.0.2","port":8081}"#)
        .await;
    let keys = tempfile::tempdir().expect("dir");
    let key = bind_key(keys.path());
    let server = Daemon::etcd_dns(
        &etcd.endpoint,
        &["--dnssec-key".into(), key.display().to_string()],
    );
    let addr = server.dns_addr().await;
    wait_address(addr, "s-test.services.local", "192.168.1.26").await;

    // The DS that `etcd-dns dnssec ds` prints is unbound's trust anchor.
    let printed = dnssec_cli(&["ds", &key.display().to_string()]);
    let ds = printed
        .iter()
        .find(|l| l.contains(" DS "))
        .expect("a DS line");
    let dnskey = printed
        .iter()
        .find(|l| l.contains(" DNSKEY "))
        .expect("a DNSKEY line");
    let unbound = Unbound::start(ZONE, ds, addr);
    eventually("unbound answers", SETTLE, || async {
        try_query(
            unbound.addr,
            "s-test.services.local",
            RecordType::A,
            Duration::from_secs(1),
        )
        .await
        .filter(|m| m.metadata.response_code == ResponseCode::NoError)
    })
    .await;

    let reply = validated(
        &unbound,
        "s-test.services.local",
        RecordType::A,
        ResponseCode::NoError,
    )
    .await;
    assert_eq!(addresses(&reply), ["192.168.1.26"]);
    let reply = validated(
        &unbound,
        "web.services.local",
        RecordType::SRV,
        ResponseCode::NoError,
    )
    .await;
    assert_eq!(srv_records(&reply).len(), 2, "{reply}");
    let reply = validated(
        &unbound,
        "_web._tcp.services.local",
        RecordType::SRV,
        ResponseCode::NoError,
    )
    .await;
    assert_eq!(srv_records(&reply).len(), 2, "{reply}");
    validated(
        &unbound,
        "n1.web.services.local",
        RecordType::A,
        ResponseCode::NoError,
    )
    .await;
    // Compact denial: a missing name is NOERROR with an NSEC that says it has no types;
    // a missing type is NODATA. Both proven, both validated.
    let reply = validated(
        &unbound,
        "nope.services.local",
        RecordType::A,
        ResponseCode::NoError,
    )
    .await;
    assert!(reply.answers.is_empty(), "{reply}");
    let reply = validated(
        &unbound,
        "s-test.services.local",
        RecordType::AAAA,
        ResponseCode::NoError,
    )
    .await;
    assert!(reply.answers.is_empty(), "{reply}");
    validated(
        &unbound,
        "services.local",
        RecordType::SOA,
        ResponseCode::NoError,
    )
    .await;
    validated(
        &unbound,
        "services.local",
        RecordType::DNSKEY,
        ResponseCode::NoError,
    )
    .await;
    validated(
        &unbound,
        "services.local",
        RecordType::TXT,
        ResponseCode::NoError,
    )
    .await;

    // SRV's additional records come signed: hickory's validator checks each RRSIG there
    // against the DNSKEY the zone publishes.
    let direct = exchange_message(
        addr,
        &signed_query("web.services.local", RecordType::SRV),
        Transport::Udp,
    )
    .await;
    let keys_reply = exchange_message(
        addr,
        &signed_query(ZONE, RecordType::DNSKEY),
        Transport::Udp,
    )
    .await;
    let zone_key = keys_reply
        .answers
        .iter()
        .find_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::DNSKEY(key)) => Some(key.clone()),
            _ => None,
        })
        .expect("DNSKEY at the apex");
    let mut checked = 0;
    for sig in &direct.additionals {
        let RData::DNSSEC(DNSSECRData::RRSIG(rrsig)) = &sig.data else {
            continue;
        };
        let covered = direct
            .additionals
            .iter()
            .filter(|r| r.name == sig.name && r.record_type() == RecordType::A);
        zone_key
            .verify_rrsig(&sig.name, DNSClass::IN, rrsig, covered)
            .unwrap_or_else(|e| panic!("additional {} does not verify: {e}", sig.name));
        checked += 1;
    }
    assert_eq!(checked, 2, "an RRSIG per target's address set: {direct}");
    let tag = zone_key.calculate_key_tag().expect("tag");
    assert!(
        ds.contains(&format!(" DS {tag} 13 2 ")),
        "the DS names the served key: {ds}"
    );

    // Right after a registration and right after a removal, what etcd-dns answers validates
    // (delv keeps no cache between runs): no window where an old signature meets new records.
    let anchors = delv_anchors(
        keys.path(),
        ZONE,
        dnskey.split(" DNSKEY ").nth(1).expect("rdata"),
    );
    for round in 0..5 {
        let ip = format!("10.1.0.{round}");
        etcd.put("services/fresh", &format!(r#"{{"IP":"{ip}"}}"#))
            .await;
        wait_address(addr, "fresh.services.local", ip.as_str()).await;
        let out = delv(addr, &anchors, ZONE, "fresh.services.local", "A");
        assert!(
            out.contains("; fully validated") && out.contains(&ip),
            "round {round} after the put: {out}"
        );
        let out = delv(addr, &anchors, ZONE, "web.services.local", "SRV");
        assert!(out.contains("; fully validated"), "{out}");
        etcd.delete("services/fresh").await;
        wait_rcode(
            addr,
            "fresh.services.local",
            RecordType::A,
            ResponseCode::NXDomain,
            SETTLE,
        )
        .await;
        let out = delv(addr, &anchors, ZONE, "fresh.services.local", "A");
        assert!(
            out.contains("; negative response, fully validated"),
            "round {round} after the delete: {out}"
        );
    }
    // A name unbound never saw, registered now: validated at once.
    etcd.put("services/late", r#"{"IP":"10.2.0.1"}"#).await;
    wait_address(addr, "late.services.local", "10.2.0.1").await;
    validated(
        &unbound,
        "late.services.local",
        RecordType::A,
        ResponseCode::NoError,
    )
    .await;

    // A set too large for one UDP answer with its RRSIG: unbound gets TC, asks over TCP, and
    // validates all 40 records.
    for i in 0..40 {
        etcd.put(
            &format!("services/big/i{i}"),
            &format!(r#"{{"IP":"10.3.0.{i}","port":{}}}"#, 9000 + i),
        )
        .await;
    }
    eventually("40 instances of big", SETTLE, || async {
        (lookup_srv(addr, "big.services.local", Transport::Tcp)
            .await
            .len()
            == 40)
            .then_some(())
    })
    .await;
    let reply = validated(
        &unbound,
        "big.services.local",
        RecordType::SRV,
        ResponseCode::NoError,
    )
    .await;
    assert_eq!(srv_records(&reply).len(), 40, "{reply}");
    let direct = exchange_message(
        addr,
        &signed_query("big.services.local", RecordType::SRV),
        Transport::Udp,
    )
    .await;
    let srv = direct
        .answers
        .iter()
        .filter(|r| r.record_type() == RecordType::SRV)
        .count();
    assert!(
        direct.metadata.truncation || srv == 40,
        "a cut signed answer says TC: {srv} records"
    );

    // The types a signer answers specially: NSEC (the record itself, validated), RRSIG
    // (refused, as Knot's onlinesign does), NXNAME (FORMERR, RFC 9824 §3.5).
    let out = delv(addr, &anchors, ZONE, "s-test.services.local", "NSEC");
    assert!(
        out.contains("; fully validated") && out.contains("NSEC"),
        "{out}"
    );
    let reply = exchange_message(
        addr,
        &signed_query("s-test.services.local", RecordType::RRSIG),
        Transport::Udp,
    )
    .await;
    assert_eq!(reply.metadata.response_code, ResponseCode::Refused);
    let reply = exchange_message(
        addr,
        &build_query("s-test.services.local", RecordType::Unknown(128)),
        Transport::Udp,
    )
    .await;
    assert_eq!(reply.metadata.response_code, ResponseCode::FormErr);

    // The same zone against another key's anchor: unbound refuses it (bogus → SERVFAIL).
    let other = bind_key(keys.path());
    let other_ds = dnssec_cli(&["ds", &other.display().to_string()]);
    let wrong = Unbound::start(ZONE, &other_ds[0], addr);
    let (reply, _) = eventually("the wrong anchor's verdict", SETTLE, || async {
        try_query(
            wrong.addr,
            "s-test.services.local",
            RecordType::A,
            Duration::from_secs(2),
        )
        .await
    })
    .await;
    assert_eq!(
        reply.metadata.response_code,
        ResponseCode::ServFail,
        "{reply}"
    );
    assert!(reply.answers.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_without_do_are_unchanged_and_bad_keys_stop_the_server() {
    let etcd = Etcd::start().await;
    etcd.put("services/web/n1", r#"{"IP":"10.0.0.1","port":8080}"#)
        .await;
    let keys = tempfile::tempdir().expect("dir");
    // etcd-dns's own generator, read back by `ds`: the same DS.
    let made = dnssec_cli(&["keygen", ZONE, "--dir", &keys.path().display().to_string()]);
    let key = PathBuf::from(&made[0]);
    assert!(
        key.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("Kservices.local.+013+") && n.ends_with(".private")),
        "{made:?}"
    );
    assert_eq!(dnssec_cli(&["ds", &made[0]])[0], made[1]);

    let signed = Daemon::etcd_dns(&etcd.endpoint, &["--dnssec-key".into(), made[0].clone()]);
    let plain = Daemon::etcd_dns(&etcd.endpoint, &[]);
    let (signed_addr, plain_addr): (SocketAddr, SocketAddr) =
        (signed.dns_addr().await, plain.dns_addr().await);
    for addr in [signed_addr, plain_addr] {
        wait_address(addr, "web.services.local", "10.0.0.1").await;
    }
    // Without DO: the same bytes from both (but the ID).
    for (name, qtype) in [
        ("web.services.local", RecordType::A),
        ("web.services.local", RecordType::SRV),
        ("nope.services.local", RecordType::A),
        ("web.services.local", RecordType::AAAA),
        ("nope.services.local", RecordType::DNSKEY),
        ("web.services.local", RecordType::DNSKEY),
    ] {
        let query = build_query(name, qtype).to_vec().expect("encode");
        let a = exchange(signed_addr, &query, Transport::Udp).await;
        let b = exchange(plain_addr, &query, Transport::Udp).await;
        assert_eq!(a, b, "{name} {qtype}: signing changed an answer without DO");
    }
    // With DO the signed server adds RRSIGs and keeps the NXDOMAIN as a compact answer.
    let reply = exchange_message(
        signed_addr,
        &signed_query("nope.services.local", RecordType::A),
        Transport::Tcp,
    )
    .await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    let types: Vec<RecordType> = reply.authorities.iter().map(|r| r.record_type()).collect();
    assert_eq!(
        types,
        [
            RecordType::SOA,
            RecordType::RRSIG,
            RecordType::NSEC,
            RecordType::RRSIG
        ]
    );
    // With CO (Compact Answers OK, RFC 9824 §5) as well, a missing name says NXDOMAIN, and
    // every reply says CO.
    let mut co = signed_query("nope.services.local", RecordType::A);
    if let Some(edns) = co.edns.as_mut() {
        edns.flags_mut().z = 0x4000;
    }
    let reply = exchange_message(signed_addr, &co, Transport::Udp).await;
    assert_eq!(
        reply.metadata.response_code,
        ResponseCode::NXDomain,
        "{reply}"
    );
    assert_eq!(
        reply.edns.as_ref().map(|e| e.flags().z & 0x4000),
        Some(0x4000),
        "{reply}"
    );
    assert_eq!(reply.authorities.len(), 4, "{reply}");
    co.queries[0] = hickory_proto::op::Query::query(
        "web.services.local.".parse().expect("name"),
        RecordType::A,
    );
    let reply = exchange_message(signed_addr, &co, Transport::Udp).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert_eq!(
        reply.edns.as_ref().map(|e| e.flags().z & 0x4000),
        Some(0x4000),
        "{reply}"
    );

    // DNSKEY is answered with or without DO.
    let reply = query(signed_addr, ZONE, RecordType::DNSKEY, Transport::Udp).await;
    assert_eq!(reply.answers.len(), 1, "{reply}");
    let (_, metrics) = http_get(signed.http_addr().await, "/metrics").await;
    assert!(
        metric(&metrics, "etcd_dns_dnssec_signatures_total").is_some_and(|n| n >= 2.0),
        "{metrics}"
    );

    // A second key for the zone is published (a rollover's next key) and signs nothing.
    let next = dnssec_cli(&["keygen", ZONE, "--dir", &keys.path().display().to_string()]);
    let both = Daemon::etcd_dns(
        &etcd.endpoint,
        &[
            "--dnssec-key".into(),
            made[0].clone(),
            "--dnssec-key".into(),
            next[0].clone(),
        ],
    );
    let both_addr = both.dns_addr().await;
    wait_address(both_addr, "web.services.local", "10.0.0.1").await;
    let reply = exchange_message(
        both_addr,
        &signed_query(ZONE, RecordType::DNSKEY),
        Transport::Udp,
    )
    .await;
    let counts = |t: RecordType| {
        reply
            .answers
            .iter()
            .filter(|r| r.record_type() == t)
            .count()
    };
    assert_eq!(
        (counts(RecordType::DNSKEY), counts(RecordType::RRSIG)),
        (2, 1),
        "{reply}"
    );
    let dnskey = dnssec_cli(&["ds", &made[0]])[1].clone();
    let anchors = delv_anchors(
        keys.path(),
        ZONE,
        dnskey.split(" DNSKEY ").nth(1).expect("rdata"),
    );
    let out = delv(both_addr, &anchors, ZONE, "web.services.local", "A");
    assert!(out.contains("; fully validated"), "{out}");

    // Answers cut to --max-answers are signed as cut (a rotating window, cached per window).
    for i in 0..5 {
        etcd.put(
            &format!("services/many/i{i}"),
            &format!(r#"{{"IP":"10.4.0.{i}"}}"#),
        )
        .await;
    }
    let capped = Daemon::etcd_dns(
        &etcd.endpoint,
        &[
            "--max-answers".into(),
            "2".into(),
            "--dnssec-key".into(),
            made[0].clone(),
        ],
    );
    let capped_addr = capped.dns_addr().await;
    eventually("five instances of many", SETTLE, || async {
        let reply = query(
            capped_addr,
            "many.services.local",
            RecordType::A,
            Transport::Udp,
        )
        .await;
        (reply.answers.len() == 2).then_some(())
    })
    .await;
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..5 {
        let out = delv(capped_addr, &anchors, ZONE, "many.services.local", "A");
        assert!(out.contains("; fully validated"), "{out}");
        let answered: Vec<&str> = out.lines().filter(|l| l.contains("\tA\t")).collect();
        assert_eq!(answered.len(), 2, "{out}");
        seen.extend(answered.iter().map(|l| l.to_string()));
    }
    assert!(seen.len() > 2, "the window moves: {seen:?}");

    // Keys that cannot be used stop the server at start, saying why.
    let other_zone = dnssec_cli(&[
        "keygen",
        "example.test",
        "--dir",
        &keys.path().display().to_string(),
    ]);
    let zones = tempfile::tempdir().expect("dir");
    std::fs::write(
        zones.path().join("services.local.zone"),
        "$TTL 60\n@ IN SOA ns hostmaster 1 60 10 3600 5\n@ IN NS ns\nns IN A 127.0.0.1\nteam IN NS ns.team\nns.team IN A 127.0.0.2\n",
    )
    .expect("zone file");
    let zones_arg = zones.path().display().to_string();
    let missing = keys.path().join("Kmissing.private").display().to_string();
    for (args, why) in [
        (vec![other_zone[0].clone()], "not a live zone"),
        (vec![missing], "Kmissing.private"),
        (
            vec![made[0].clone(), made[0].replace(".private", ".key")],
            "is given twice",
        ),
    ] {
        let mut flags = Vec::new();
        for key in args {
            flags.extend(["--dnssec-key".to_string(), key]);
        }
        let mut server = Daemon::etcd_dns(&etcd.endpoint, &flags);
        let (code, _, log) = server.wait_exit(SETTLE).await;
        assert_eq!(code, Some(1), "{why}: {log}");
        assert!(
            log.contains("bad --dnssec-key") && log.contains(why),
            "{why}: {log}"
        );
    }
    // A delegation in the signed zone's file: refused (its NS would be signed as the zone's).
    let output = Command::new(bin("etcd-dns"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--no-http",
            "--no-forward",
            "--etcd",
            &etcd.endpoint,
        ])
        .args(["--zones", &zones_arg, "--dnssec-key", &made[0]])
        .output()
        .expect("run etcd-dns");
    let log = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{log}");
    assert!(log.contains("delegates team.services.local"), "{log}");
}
