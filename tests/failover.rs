//! etcd failing for real: members that stop answering without closing their connections
//! (frozen), members killed, etcd restarted, etcd wiped. The watcher leaves a stalled member
//! within seconds, as it leaves a dead one; the last table answers meanwhile; the SOA serial
//! never goes backwards.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::proxy::Proxy;
use common::*;
use hickory_proto::rr::RecordType;

/// How long the cluster and the server may take to come up.
const SETTLE: Duration = Duration::from_secs(15);
/// The contract: with a member frozen, updates reach DNS at most 3 s late. This bound leaves
/// room for a loaded CI machine and still fails the old behaviour (the watch stayed on the
/// frozen member until gRPC keep-alive gave up, about 14 s). The measured time is printed.
const FAILOVER: Duration = Duration::from_secs(6);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_member_holding_the_watch_is_left_and_updates_keep_arriving() {
    let cluster = Cluster::start(3).await;
    cluster
        .put(2, "services/s-test", r#"{"IP":"192.168.1.26"}"#)
        .await;
    // The watcher starts on the first endpoint.
    let dns = DnsServer::start(&cluster.endpoints()).await;
    wait_answers(dns.addr, "s-test.services.local.", RecordType::A, 1, SETTLE).await;
    cluster.signal(0, "STOP");
    let frozen = Instant::now();
    cluster
        .put(1, "services/after", r#"{"IP":"10.0.0.7"}"#)
        .await;
    let changed = Instant::now();
    eprintln!("etcd took the put {:?} after the freeze", changed - frozen);
    let answer = wait_answers(
        dns.addr,
        "after.services.local.",
        RecordType::A,
        1,
        FAILOVER,
    )
    .await;
    let late = changed.elapsed();
    eprintln!("update answered {late:?} after the put, with the watching member frozen");
    assert_eq!(addresses(&answer), vec!["10.0.0.7"]);
    // The name registered before the freeze never stopped answering.
    assert_eq!(
        lookup_a(dns.addr, "s-test.services.local.", Transport::Udp).await,
        vec!["192.168.1.26"]
    );
    cluster.signal(0, "CONT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_member_holding_the_keep_alive_never_costs_the_name() {
    let cluster = Cluster::start(3).await;
    // register starts on the first endpoint; the server watches through the other two.
    let mut reg = register(
        &cluster.endpoints(),
        &["--name", "s-test", "--ip", "192.168.1.26", "--ttl", "5"],
    );
    let others: Vec<&str> = cluster.members[1..]
        .iter()
        .map(|m| m.endpoint.as_str())
        .collect();
    let dns = DnsServer::start(&others.join(",")).await;
    let name = "s-test.services.local.";
    wait_answers(dns.addr, name, RecordType::A, 1, SETTLE).await;
    cluster.signal(0, "STOP");
    // Longer than the lease's TTL and then some: the name must answer at every poll.
    let frozen = Instant::now();
    eventually("two lease TTLs with the member frozen", SETTLE, || async {
        let m = query(dns.addr, name, RecordType::A, Transport::Udp).await;
        assert_eq!(
            addresses(&m),
            vec!["192.168.1.26"],
            "{:?} after the freeze: {m:?}",
            frozen.elapsed()
        );
        (frozen.elapsed() > Duration::from_secs(10)).then_some(())
    })
    .await;
    cluster.signal(0, "CONT");
    reg.signal("TERM");
    assert_eq!(reg.wait_exit(SETTLE).await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_member_holding_the_watch_is_left_too() {
    let cluster = Cluster::start(3).await;
    let dns = DnsServer::start(&cluster.endpoints()).await;
    dns.wait_ready().await;
    cluster.signal(0, "KILL");
    cluster
        .put(1, "services/after", r#"{"IP":"10.0.0.8"}"#)
        .await;
    let changed = Instant::now();
    let answer = wait_answers(
        dns.addr,
        "after.services.local.",
        RecordType::A,
        1,
        FAILOVER,
    )
    .await;
    eprintln!(
        "update answered {:?} after the put, with the watching member killed",
        changed.elapsed()
    );
    assert_eq!(addresses(&answer), vec!["10.0.0.8"]);
}

/// The SOA serial at the zone's apex.
async fn serial(dns: &DnsServer) -> u32 {
    let m = query(dns.addr, "services.local.", RecordType::SOA, Transport::Udp).await;
    match m.answers.first().map(|r| &r.data) {
        Some(hickory_proto::rr::RData::SOA(soa)) => soa.serial,
        other => panic!("no SOA at the apex: {other:?}"),
    }
}

#[tokio::test]
async fn etcd_restarted_then_wiped_the_last_table_answers_and_the_serial_goes_on() {
    let mut etcd = Etcd::start().await;
    for i in 0..20 {
        etcd.put("services/s-test", &format!(r#"{{"IP":"192.168.1.{i}"}}"#))
            .await;
    }
    let dns = DnsServer::start(&etcd.endpoint).await;
    let name = "s-test.services.local.";
    wait_answers(dns.addr, name, RecordType::A, 1, SETTLE).await;
    let before = serial(&dns).await;

    // Restarted with its data: answering all along from the last table, then following etcd.
    etcd.kill();
    assert_eq!(
        lookup_a(dns.addr, name, Transport::Udp).await,
        vec!["192.168.1.19"],
        "etcd down: the last table answers"
    );
    etcd.restart(false).await;
    etcd.put("services/after", r#"{"IP":"10.0.0.9"}"#).await;
    wait_answers(dns.addr, "after.services.local.", RecordType::A, 1, SETTLE).await;
    let restarted = serial(&dns).await;
    assert!(restarted > before, "serial {before} → {restarted}");

    // Wiped: etcd's revision starts over at 1, the serial must not.
    etcd.restart(true).await;
    etcd.put("services/fresh", r#"{"IP":"10.0.0.10"}"#).await;
    wait_answers(dns.addr, "fresh.services.local.", RecordType::A, 1, SETTLE).await;
    wait_rcode(
        dns.addr,
        name,
        RecordType::A,
        hickory_proto::op::ResponseCode::NXDomain,
        SETTLE,
    )
    .await;
    let wiped = serial(&dns).await;
    assert!(
        wiped > restarted && wiped.wrapping_sub(restarted) < 1 << 31,
        "serial went from {restarted} to {wiped} across the wipe"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_off_while_etcd_changes_and_compacts_then_one_swap_with_no_wrong_answer() {
    let etcd = Etcd::start().await;
    etcd.put("services/keep", r#"{"IP":"10.1.0.1"}"#).await;
    etcd.put("services/gone", r#"{"IP":"10.1.0.2"}"#).await;
    let upstream = etcd
        .endpoint
        .trim_start_matches("http://")
        .parse()
        .expect("etcd address");
    let proxy = Proxy::start(upstream).await;
    let dns = DnsServer::start(&proxy.endpoint()).await;
    wait_answers(dns.addr, "gone.services.local.", RecordType::A, 1, SETTLE).await;

    // A querier that runs through the cut and the swap: "keep" is registered throughout.
    let addr = dns.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let querier = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let (mut asked, mut wrong) = (0u32, Vec::new());
            while !stop.load(Ordering::SeqCst) {
                let answer = lookup_a(addr, "keep.services.local.", Transport::Udp).await;
                asked += 1;
                if answer != vec!["10.1.0.1"] {
                    wrong.push(answer);
                }
            }
            (asked, wrong)
        })
    };

    proxy.cut();
    let mut client = etcd.client().await;
    client.delete("services/gone", None).await.expect("delete");
    client
        .put("services/new", r#"{"IP":"10.1.0.3"}"#, None)
        .await
        .expect("put");
    let revision = client
        .put("services/keep", r#"{"IP":"10.1.0.1"}"#, None)
        .await
        .expect("put")
        .header()
        .map(|h| h.revision())
        .expect("revision");
    client
        .compact(
            revision,
            Some(etcd_client::CompactionOptions::new().with_physical()),
        )
        .await
        .expect("compact");
    proxy.restore();

    let reconnected = Instant::now();
    wait_answers(dns.addr, "new.services.local.", RecordType::A, 1, SETTLE).await;
    wait_rcode(
        dns.addr,
        "gone.services.local.",
        RecordType::A,
        hickory_proto::op::ResponseCode::NXDomain,
        SETTLE,
    )
    .await;
    eprintln!(
        "re-read and swapped {:?} after the path came back",
        reconnected.elapsed()
    );
    stop.store(true, Ordering::SeqCst);
    let (asked, wrong) = querier.await.expect("querier");
    assert!(asked > 10, "only {asked} queries ran through the swap");
    assert!(
        wrong.is_empty(),
        "{} wrong answers of {asked}: {wrong:?}",
        wrong.len()
    );
    eprintln!("{asked} queries through the cut and the swap, 0 wrong");
}
