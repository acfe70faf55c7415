//! Real secondaries follow the live zone: Knot, NSD and BIND (Debian's), each started on a free
//! loopback port with its own configuration, transfer the zone from etcd-dns (AXFR, in as many
//! messages as it takes), are told of every change by NOTIFY, and answer registrations and
//! revocations themselves.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::secondary::{Kind, Secondary};
use common::*;
use etcd_client::PutOptions;
use etcd_dns::dns::acl::Acl;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};

const ZONE: &str = "services.local";

/// How long a change may take to reach a secondary: NOTIFY, its SOA query, the transfer.
const FOLLOWS_WITHIN: Duration = Duration::from_secs(20);

/// etcd-dns allowing transfers to 127.0.0.1 and notifying `notify`.
async fn primary(etcd: &Etcd, notify: Vec<SocketAddr>) -> DnsServer {
    primary_with_history(etcd, notify, etcd_dns::table::journal::DEFAULT_IXFR_HISTORY).await
}

/// [`primary`] keeping `history` changes for IXFR.
async fn primary_with_history(etcd: &Etcd, notify: Vec<SocketAddr>, history: usize) -> DnsServer {
    let dns = DnsServer::start_with(&etcd.endpoint, move |c| {
        c.catalog.allow_transfer = Acl::parse("127.0.0.1").expect("acl");
        c.notify = notify;
        c.ixfr_history = history;
    })
    .await;
    dns.wait_ready().await;
    dns
}

/// Free ports for the three secondaries, and their addresses (the NOTIFY targets).
fn ports() -> (Vec<u16>, Vec<SocketAddr>) {
    let ports: Vec<u16> = Kind::ALL.iter().map(|_| free_port()).collect();
    let addrs = ports
        .iter()
        .map(|p| SocketAddr::from(([127, 0, 0, 1], *p)))
        .collect();
    (ports, addrs)
}

/// The three secondaries of the zone on `ports`, following `primaries`.
fn secondaries(ports: &[u16], primaries: &[SocketAddr]) -> Vec<Secondary> {
    Kind::ALL
        .iter()
        .zip(ports)
        .map(|(kind, port)| Secondary::start(*kind, ZONE, *port, primaries))
        .collect()
}

/// The sorted A addresses `name` answers at `addr`, or the rcode when it is not NOERROR.
async fn answer(addr: SocketAddr, name: &str) -> Result<Vec<String>, ResponseCode> {
    let Some(reply) = try_query(addr, name, RecordType::A, Duration::from_millis(250)).await else {
        return Err(ResponseCode::ServFail);
    };
    if reply.metadata.response_code != ResponseCode::NoError {
        return Err(reply.metadata.response_code);
    }
    let mut got = addresses(&reply);
    got.sort();
    Ok(got)
}

/// The SOA serial `addr` serves for the zone, if it answers one.
async fn serial(addr: SocketAddr) -> Option<u32> {
    let reply = try_query(
        addr,
        &format!("{ZONE}."),
        RecordType::SOA,
        Duration::from_secs(1),
    )
    .await?;
    reply.answers.iter().find_map(|r| match &r.data {
        RData::SOA(soa) => Some(soa.serial),
        _ => None,
    })
}

/// Waits until every secondary answers `name` with `want` (addresses, or an rcode); how long
/// each took.
async fn all_answer(
    secondaries: &[Secondary],
    name: &str,
    want: Result<Vec<String>, ResponseCode>,
) -> Vec<(Kind, Duration)> {
    let started = Instant::now();
    let mut took = Vec::new();
    for secondary in secondaries {
        let what = format!("{:?} answers {name} with {want:?}", secondary.kind);
        let want = &want;
        eventually(&what, FOLLOWS_WITHIN, || async move {
            (answer(secondary.addr, name).await == *want).then_some(())
        })
        .await;
        took.push((secondary.kind, started.elapsed()));
    }
    took
}

/// Waits until every secondary serves serial `want`, each within `limit`; how long each took.
async fn all_at_serial(
    secondaries: &[Secondary],
    want: u32,
    limit: Duration,
) -> Vec<(Kind, Duration)> {
    let started = Instant::now();
    let mut took = Vec::new();
    for secondary in secondaries {
        let what = format!("{:?} at serial {want}", secondary.kind);
        eventually(&what, limit, || async move {
            (serial(secondary.addr).await == Some(want)).then_some(())
        })
        .await;
        took.push((secondary.kind, started.elapsed()));
    }
    took
}

/// Registrations, a lease revoked, a key deleted: each secondary answers every step itself,
/// told by NOTIFY (the SOA refresh is 60 s, the wait at most 20 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secondaries_follow_registrations_and_revocations() {
    let etcd = Etcd::start().await;
    etcd.put("services/s-test", r#"{"IP":"192.168.1.26"}"#)
        .await;
    let (ports, targets) = ports();
    let dns = primary(&etcd, targets).await;
    let secondaries = secondaries(&ports, &[dns.addr]);
    let took = all_answer(
        &secondaries,
        "s-test.services.local.",
        Ok(vec!["192.168.1.26".into()]),
    )
    .await;
    eprintln!("first transfer: {took:?}");
    // An AXFR asked with EDNS carries an OPT in its messages, as Knot's do.
    let reply = query(
        dns.addr,
        &format!("{ZONE}."),
        RecordType::AXFR,
        Transport::Tcp,
    )
    .await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(reply.edns.is_some(), "OPT in the transfer: {reply:?}");

    // A registration under a lease, as `register` makes it.
    let mut client = etcd.client().await;
    let lease = client.lease_grant(30, None).await.expect("lease").id();
    client
        .put(
            "services/web/n1",
            r#"{"IP":"10.1.0.1","port":80}"#,
            Some(PutOptions::new().with_lease(lease)),
        )
        .await
        .expect("put");
    etcd.put("services/web/n2", r#"{"IP":"10.1.0.2","port":80}"#)
        .await;
    let took = all_answer(
        &secondaries,
        "web.services.local.",
        Ok(vec!["10.1.0.1".into(), "10.1.0.2".into()]),
    )
    .await;
    eprintln!("put → answered by every secondary: {took:?}");
    // The lease revoked: n1 goes.
    client.lease_revoke(lease).await.expect("revoke");
    let took = all_answer(
        &secondaries,
        "web.services.local.",
        Ok(vec!["10.1.0.2".into()]),
    )
    .await;
    eprintln!("revoke → gone from every secondary: {took:?}");
    all_answer(
        &secondaries,
        "n1.web.services.local.",
        Err(ResponseCode::NXDomain),
    )
    .await;
    // A delete: the name goes.
    etcd.delete("services/s-test").await;
    all_answer(
        &secondaries,
        "s-test.services.local.",
        Err(ResponseCode::NXDomain),
    )
    .await;
    // Every secondary ends at the primary's serial.
    let want = serial(dns.addr).await.expect("the primary's serial");
    all_at_serial(&secondaries, want, FOLLOWS_WITHIN).await;
    let (_, metrics) = http_get(dns.http, "/metrics").await;
    let acknowledged = metric(&metrics, "etcd_dns_notify_acknowledged_total").unwrap_or(0.0);
    assert!(
        acknowledged >= 3.0,
        "NOTIFYs acknowledged: {acknowledged}\n{metrics}"
    );
    // After the first AXFR, each secondary asked IXFR and got the differences.
    let transfers = |kind: &str| {
        metric(
            &metrics,
            &format!(r#"etcd_dns_transfers_total{{kind="{kind}"}}"#),
        )
        .unwrap_or(0.0)
    };
    assert!(
        transfers("ixfr") >= 3.0 * 3.0,
        "incremental transfers:\n{metrics}"
    );
    assert_eq!(transfers("ixfr_full"), 0.0, "{metrics}");
}

/// A secondary stopped while the zone changes catches up when it starts again: incrementally
/// while the history reaches back to its serial, with the whole zone once it does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_secondary_catches_up() {
    let etcd = Etcd::start().await;
    etcd.put("services/base", r#"{"IP":"10.3.0.1"}"#).await;
    let port = free_port();
    let target = SocketAddr::from(([127, 0, 0, 1], port));
    // A history of 10 changes.
    let dns = primary_with_history(&etcd, vec![target], 10).await;
    let mut knot = Secondary::start(Kind::Knot, ZONE, port, &[dns.addr]);
    let one = std::slice::from_ref(&knot);
    all_answer(one, "base.services.local.", Ok(vec!["10.3.0.1".into()])).await;
    let transfers = |metrics: &str, kind: &str| {
        metric(
            metrics,
            &format!(r#"etcd_dns_transfers_total{{kind="{kind}"}}"#),
        )
        .unwrap_or(0.0)
    };
    for (round, changes) in [(1u32, 5u32), (2, 30)] {
        knot.stop();
        for n in 0..changes {
            etcd.put(
                &format!("services/r{round}/i{n}"),
                &format!(r#"{{"IP":"10.4.{round}.{n}"}}"#),
            )
            .await;
        }
        etcd.delete("services/base").await;
        etcd.put(
            "services/base",
            &format!(r#"{{"IP":"10.3.0.{}"}}"#, round + 1),
        )
        .await;
        let (_, before) = http_get(dns.http, "/metrics").await;
        knot.spawn();
        let one = std::slice::from_ref(&knot);
        let want = serial(dns.addr).await.expect("serial");
        all_at_serial(one, want, FOLLOWS_WITHIN).await;
        all_answer(
            one,
            "base.services.local.",
            Ok(vec![format!("10.3.0.{}", round + 1)]),
        )
        .await;
        let name = format!("i{}.r{round}.services.local.", changes - 1);
        all_answer(
            one,
            &name,
            Ok(vec![format!("10.4.{round}.{}", changes - 1)]),
        )
        .await;
        let (_, after) = http_get(dns.http, "/metrics").await;
        // 7 changes fit the history of 10; 32 do not.
        let kind = if round == 1 { "ixfr" } else { "ixfr_full" };
        assert!(
            transfers(&after, kind) > transfers(&before, kind),
            "round {round}: no {kind} transfer\n{after}"
        );
    }
}

/// A zone of 100,000 instances (100 services of 1,000: BIND cannot hold an RRset over 64 KiB,
/// about 2,000 SRV records) is transferred to each secondary in many messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_instances_reach_every_secondary() {
    let etcd = Etcd::start().await;
    etcd.put_many(100_000, |n| {
        let value = format!(
            r#"{{"IP":"10.{}.{}.{}","port":8080}}"#,
            n >> 16 & 0xff,
            n >> 8 & 0xff,
            n & 0xff
        );
        (format!("services/svc{}/i{n}", n % 100), value)
    })
    .await;
    let (ports, targets) = ports();
    let dns = primary(&etcd, targets).await;
    let want = serial(dns.addr).await.expect("the primary's serial");
    let started = Instant::now();
    let secondaries = secondaries(&ports, &[dns.addr]);
    // A debug build writes the transfer to all three at once: generous.
    let took = all_at_serial(&secondaries, want, Duration::from_secs(180)).await;
    eprintln!(
        "100,000 instances at each secondary after {took:?} (started {:?} ago)",
        started.elapsed()
    );
    for secondary in &secondaries {
        assert_eq!(
            answer(secondary.addr, "i99999.svc99.services.local.").await,
            Ok(vec!["10.1.134.159".into()]),
            "{:?}",
            secondary.kind
        );
        let reply = query(
            secondary.addr,
            "svc7.services.local.",
            RecordType::SRV,
            Transport::Tcp,
        )
        .await;
        assert_eq!(
            reply.answers.len(),
            1_000,
            "{:?}: every SRV record",
            secondary.kind
        );
    }
}

/// A secondary listing two etcd-dns replicas of one etcd keeps following when one stops: the
/// replicas hand out the same serial for the same state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secondary_of_two_primaries_follows_when_one_stops() {
    let etcd = Etcd::start().await;
    etcd.put("services/a", r#"{"IP":"10.2.0.1"}"#).await;
    let (ports, targets) = ports();
    let one = primary(&etcd, targets.clone()).await;
    let two = primary(&etcd, targets).await;
    assert_eq!(
        serial(one.addr).await,
        serial(two.addr).await,
        "one serial for one state"
    );
    let secondaries = secondaries(&ports, &[one.addr, two.addr]);
    all_answer(
        &secondaries,
        "a.services.local.",
        Ok(vec!["10.2.0.1".into()]),
    )
    .await;
    drop(one);
    etcd.put("services/b", r#"{"IP":"10.2.0.2"}"#).await;
    all_answer(
        &secondaries,
        "b.services.local.",
        Ok(vec!["10.2.0.2".into()]),
    )
    .await;
}

/// TSIG: with `--allow-transfer key:xfr`, secondaries holding the key follow (their SOA
/// queries, transfers and the primary's NOTIFYs all signed); one with the wrong secret, and
/// an unsigned transfer, get nothing; each refusal is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tsig_keys_decide_who_transfers() {
    const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA==";
    const WRONG: &str = "d3JvbmctZXZlcnl0aGluZy13cm9uZy1ldmVyeXRoaW5nLXc=";
    let etcd = Etcd::start().await;
    etcd.put("services/s-test", r#"{"IP":"192.168.1.26"}"#)
        .await;
    let (mut ports, mut targets) = ports();
    let wrong_port = free_port();
    ports.push(wrong_port);
    targets.push(SocketAddr::from(([127, 0, 0, 1], wrong_port)));
    let key = etcd_dns::dns::tsig::parse_key_arg(&format!("xfr:{SECRET}")).expect("key");
    let dns = DnsServer::start_with(&etcd.endpoint, move |c| {
        c.catalog.allow_transfer = Acl::parse("key:xfr").expect("acl");
        c.notify = targets;
        c.notify_key = key.first().cloned();
        c.tsig_keys = key;
    })
    .await;
    dns.wait_ready().await;
    let signed: Vec<Secondary> = Kind::ALL
        .iter()
        .zip(&ports)
        .map(|(kind, port)| {
            Secondary::start_with_key(*kind, ZONE, *port, &[dns.addr], Some(("xfr", SECRET)))
        })
        .collect();
    let wrong = Secondary::start_with_key(
        Kind::Knot,
        ZONE,
        wrong_port,
        &[dns.addr],
        Some(("xfr", WRONG)),
    );
    all_answer(
        &signed,
        "s-test.services.local.",
        Ok(vec!["192.168.1.26".into()]),
    )
    .await;
    etcd.put("services/web/n1", r#"{"IP":"10.1.0.1"}"#).await;
    all_answer(&signed, "web.services.local.", Ok(vec!["10.1.0.1".into()])).await;
    // An unsigned AXFR is refused.
    let reply = query(
        dns.addr,
        &format!("{ZONE}."),
        RecordType::AXFR,
        Transport::Tcp,
    )
    .await;
    assert_eq!(reply.metadata.response_code, ResponseCode::Refused);
    // The wrong secret: refused, counted, and the secondary has no zone to answer from.
    let (metrics, _) = eventually("a bad signature counted", FOLLOWS_WITHIN, || async {
        let (_, metrics) = http_get(dns.http, "/metrics").await;
        let bad = metric(&metrics, r#"etcd_dns_tsig_refused_total{reason="badsig"}"#);
        bad.is_some_and(|n| n >= 1.0).then_some(metrics)
    })
    .await;
    let unsigned = metric(
        &metrics,
        r#"etcd_dns_tsig_refused_total{reason="unsigned"}"#,
    );
    assert!(unsigned.is_some_and(|n| n >= 1.0), "{metrics}");
    assert_ne!(
        answer(wrong.addr, "s-test.services.local.").await,
        Ok(vec!["192.168.1.26".into()]),
        "the wrong key transferred the zone"
    );
}

/// `--serial-file`: the serial never goes backwards across a restart of etcd-dns, an etcd wipe
/// included (the revision starts again from 1); without a wipe it stays the revision, so replicas
/// keep agreeing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serials_never_go_backwards_across_restarts_and_wipes() {
    let mut etcd = Etcd::start().await;
    for n in 0..50 {
        etcd.put(&format!("services/s{n}"), r#"{"IP":"10.5.0.1"}"#)
            .await;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("serials");
    let args = vec!["--serial-file".to_string(), file.display().to_string()];
    let start = |args: Vec<String>, endpoint: String| async move {
        let daemon = Daemon::etcd_dns(&endpoint, &args);
        let addr = daemon.dns_addr().await;
        let (soa, _) = eventually("the zone's serial", Duration::from_secs(10), || async {
            serial(addr).await
        })
        .await;
        (daemon, soa)
    };
    let (daemon, first) = start(args.clone(), etcd.endpoint.clone()).await;
    eventually("the serial saved", Duration::from_secs(5), || async {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        text.contains(&format!(" {first} ")).then_some(())
    })
    .await;
    drop(daemon);
    // A restart on the same etcd: the same serial, the revision.
    let (daemon, again) = start(args.clone(), etcd.endpoint.clone()).await;
    assert_eq!(again, first, "same state, same serial");
    drop(daemon);
    // etcd wiped: its revision starts again, the serial goes on.
    etcd.restart(true).await;
    etcd.put("services/after-wipe", r#"{"IP":"10.5.0.2"}"#)
        .await;
    let (daemon, after) = start(args.clone(), etcd.endpoint.clone()).await;
    assert!(
        after.wrapping_sub(first) as i32 > 0,
        "serial {after} after the wipe, {first} before"
    );
    drop(daemon);
    // Without the file, the serial would have gone back to the new revision.
    let (_daemon, bare) = start(Vec::new(), etcd.endpoint.clone()).await;
    assert!(
        bare < first,
        "the revision after the wipe ({bare}) is below {first}"
    );
}
