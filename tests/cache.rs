//! The answer cache for forwarded names, against an upstream that counts the queries it gets:
//! TTLs counted down, expiry, prefetch, negative answers, one upstream query for a burst, stale
//! answers when the upstream dies, the client's ID and case, DO apart, eviction.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::upstream::{Upstream, WILD};
use common::*;
use etcd_dns::server::ServerConfig;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};

/// An etcd-dns forwarding to `upstream`, with `edit` applied to its configuration.
async fn forwarding(
    etcd: &Etcd,
    upstream: SocketAddr,
    edit: impl FnOnce(&mut ServerConfig),
) -> DnsServer {
    let dns = DnsServer::start_with(&etcd.endpoint, |c| {
        c.catalog.upstreams = Some(vec![upstream]);
        edit(c);
    })
    .await;
    dns.wait_ready().await;
    dns
}

fn a(ip: &str) -> RData {
    RData::A(ip.parse().expect("IPv4"))
}

fn answer_ttls(m: &Message) -> Vec<u32> {
    m.answers.iter().map(|r| r.ttl).collect()
}

async fn cache_metric(dns: &DnsServer, name: &str) -> f64 {
    let (_, text) = http_get(dns.http, "/metrics").await;
    metric(&text, name).unwrap_or_else(|| panic!("{name} missing from\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_answers_count_down_and_go_upstream_after_expiry() {
    let etcd = Etcd::start().await;
    let up = Upstream::start((300, 60), Duration::ZERO).await;
    let name = "short.example.test.";
    up.set(name, 2, vec![a("192.0.2.1")]);
    let dns = forwarding(&etcd, up.addr, |_| {}).await;

    let m = query(dns.addr, name, RecordType::A, Transport::Udp).await;
    assert_eq!(addresses(&m), vec!["192.0.2.1"]);
    assert_eq!(answer_ttls(&m), vec![2]);
    assert_eq!(up.queries(name, RecordType::A), 1);
    // From the cache, over either transport, the TTL counting down.
    let (m, _) = eventually("TTL counted down to 1", Duration::from_secs(3), || async {
        let m = query(dns.addr, name, RecordType::A, Transport::Tcp).await;
        (answer_ttls(&m) == [1]).then_some(m)
    })
    .await;
    assert_eq!(addresses(&m), vec!["192.0.2.1"]);
    assert_eq!(
        up.queries(name, RecordType::A),
        1,
        "answered from the cache"
    );
    // Expired: asked upstream again, which has changed its answer meanwhile.
    up.set(name, 2, vec![a("192.0.2.2")]);
    eventually(
        "asked upstream after expiry",
        Duration::from_secs(5),
        || async {
            let m = query(dns.addr, name, RecordType::A, Transport::Udp).await;
            (addresses(&m) == ["192.0.2.2"]).then_some(())
        },
    )
    .await;
    assert_eq!(up.queries(name, RecordType::A), 2);
    assert!(cache_metric(&dns, "etcd_dns_cache_hits_total").await >= 1.0);
    // The second upstream query is a miss after expiry, or a prefetch when a poll fell in the
    // last tenth of the lifetime.
    let misses = cache_metric(&dns, "etcd_dns_cache_misses_total").await;
    let prefetches = cache_metric(&dns, "etcd_dns_cache_prefetches_total").await;
    assert_eq!(
        misses + prefetches,
        2.0,
        "{misses} misses, {prefetches} prefetches"
    );
    assert_eq!(cache_metric(&dns, "etcd_dns_cache_entries").await, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn popular_answers_are_refreshed_before_they_expire() {
    let etcd = Etcd::start().await;
    let up = Upstream::start((300, 60), Duration::ZERO).await;
    let name = "popular.example.test.";
    up.set(name, 4, vec![a("192.0.2.1")]);
    let dns = forwarding(&etcd, up.addr, |_| {}).await;
    let m = query(dns.addr, name, RecordType::A, Transport::Udp).await;
    assert_eq!(addresses(&m), vec!["192.0.2.1"]);
    up.set(name, 4, vec![a("192.0.2.2")]);
    // Asked without a pause: a hit in the last 0.4 s of the 4 s asks upstream again, and the
    // new answer is there before the old one expires — no client ever misses.
    let (m, waited) = eventually("the refreshed answer", Duration::from_secs(6), || async {
        let m = query(dns.addr, name, RecordType::A, Transport::Udp).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        (addresses(&m) == ["192.0.2.2"]).then_some(m)
    })
    .await;
    eprintln!("refreshed after {waited:?}");
    assert!(
        answer_ttls(&m)[0] >= 3,
        "a fresh TTL: {:?}",
        answer_ttls(&m)
    );
    assert_eq!(up.queries(name, RecordType::A), 2);
    assert_eq!(
        cache_metric(&dns, "etcd_dns_cache_prefetches_total").await,
        1.0
    );
    assert_eq!(
        cache_metric(&dns, "etcd_dns_cache_misses_total").await,
        1.0,
        "only the first query missed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negative_answers_are_cached_for_the_soa_minimum() {
    let etcd = Etcd::start().await;
    // SOA TTL 300, MINIMUM 2: negative answers live 2 s (RFC 2308 §5).
    let up = Upstream::start((300, 2), Duration::ZERO).await;
    up.set("www.example.test.", 300, vec![a("192.0.2.80")]);
    let dns = forwarding(&etcd, up.addr, |_| {}).await;

    let nope = "nope.example.test.";
    for _ in 0..3 {
        let m = query(dns.addr, nope, RecordType::A, Transport::Udp).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        let soa = authority_soa(&m).expect("SOA with NXDOMAIN");
        assert!(soa.ttl <= 2, "negative TTL {} > 2", soa.ttl);
        // NODATA: the name exists, the type does not.
        let m = query(
            dns.addr,
            "www.example.test.",
            RecordType::AAAA,
            Transport::Udp,
        )
        .await;
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.answers.is_empty() && authority_soa(&m).is_some());
    }
    assert_eq!(up.queries(nope, RecordType::A), 1);
    assert_eq!(up.queries("www.example.test.", RecordType::AAAA), 1);
    eventually(
        "NXDOMAIN asked again after 2 s",
        Duration::from_secs(5),
        || async {
            query(dns.addr, nope, RecordType::A, Transport::Udp).await;
            (up.queries(nope, RecordType::A) == 2).then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_for_a_new_name_makes_one_upstream_query() {
    let etcd = Etcd::start().await;
    // Slow enough that every query of the burst arrives while the first is upstream.
    let up = Upstream::start((300, 60), Duration::from_millis(300)).await;
    let name = "burst.example.test.";
    up.set(name, 60, vec![a("192.0.2.9")]);
    let dns = forwarding(&etcd, up.addr, |_| {}).await;

    let mut burst = tokio::task::JoinSet::new();
    for i in 0..100 {
        let transport = if i % 10 == 0 {
            Transport::Tcp
        } else {
            Transport::Udp
        };
        let addr = dns.addr;
        // Each checks that its reply carries its own ID.
        burst.spawn(async move { query(addr, name, RecordType::A, transport).await });
    }
    while let Some(m) = burst.join_next().await {
        let m = m.expect("query task");
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert_eq!(addresses(&m), vec!["192.0.2.9"]);
    }
    assert_eq!(up.queries(name, RecordType::A), 1);
    let coalesced = cache_metric(&dns, "etcd_dns_cache_coalesced_total").await;
    eprintln!("{coalesced} of 100 queries waited for the one upstream query");
    assert!(coalesced >= 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_answers_are_served_when_the_upstream_dies() {
    let etcd = Etcd::start().await;
    let up = Upstream::start((300, 60), Duration::ZERO).await;
    let name = "keep.example.test.";
    up.set(name, 1, vec![a("192.0.2.5")]);
    let dns = forwarding(&etcd, up.addr, |_| {}).await;
    let m = query(dns.addr, name, RecordType::A, Transport::Udp).await;
    assert_eq!(addresses(&m), vec!["192.0.2.5"]);

    up.stop();
    let (m, waited) = eventually("a stale answer", Duration::from_secs(10), || async {
        let m = query(dns.addr, name, RecordType::A, Transport::Udp).await;
        (answer_ttls(&m) == [30]).then_some(m)
    })
    .await;
    eprintln!("upstream down → stale answer after {waited:?}");
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(addresses(&m), vec!["192.0.2.5"]);
    // Then from the cache at once, counting down from 30.
    let m = query(dns.addr, name, RecordType::A, Transport::Udp).await;
    assert!(answer_ttls(&m)[0] <= 30 && answer_ttls(&m)[0] >= 29);
    assert!(cache_metric(&dns, "etcd_dns_cache_stale_total").await >= 2.0);
    // A name never cached has nothing stale: SERVFAIL.
    let m = query(
        dns.addr,
        "never.example.test.",
        RecordType::A,
        Transport::Udp,
    )
    .await;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clients_id_and_case_and_do_answers_cached_apart() {
    let etcd = Etcd::start().await;
    let up = Upstream::start((300, 60), Duration::ZERO).await;
    up.set("www.example.test.", 300, vec![a("192.0.2.80")]);
    let dns = forwarding(&etcd, up.addr, |_| {}).await;
    let count = || up.queries("www.example.test.", RecordType::A);

    for (i, spelling) in [
        "WwW.ExAmPlE.TeSt.",
        "www.EXAMPLE.test.",
        "WWW.example.TEST.",
    ]
    .into_iter()
    .enumerate()
    {
        // `query` checks the reply's ID against its random one.
        let m = query(dns.addr, spelling, RecordType::A, Transport::Udp).await;
        assert_eq!(m.queries[0].name().to_ascii(), spelling, "reply {i}");
        assert!(!m.edns.as_ref().expect("OPT").flags().dnssec_ok);
        assert!(m.metadata.recursion_desired && m.metadata.recursion_available);
    }
    assert_eq!(count(), 1);
    // DO: another entry, and its replies keep DO.
    for _ in 0..2 {
        let mut with_do = build_query("www.example.test.", RecordType::A);
        with_do.edns.as_mut().expect("EDNS").set_dnssec_ok(true);
        let m = exchange_message(dns.addr, &with_do, Transport::Udp).await;
        assert!(m.edns.expect("OPT").flags().dnssec_ok);
    }
    assert_eq!(count(), 2);
    // No EDNS: another entry, and no OPT in its replies.
    for _ in 0..2 {
        let mut plain = build_query("www.example.test.", RecordType::A);
        plain.edns = None;
        let m = exchange_message(dns.addr, &plain, Transport::Udp).await;
        assert!(m.edns.is_none());
        assert_eq!(addresses(&m), vec!["192.0.2.80"]);
    }
    assert_eq!(count(), 3);
    // Without RD the cache is not consulted: REFUSED, as before.
    let mut no_rd = build_query("www.example.test.", RecordType::A);
    no_rd.metadata.recursion_desired = false;
    let m = exchange_message(dns.addr, &no_rd, Transport::Udp).await;
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_cache_evicts() {
    let etcd = Etcd::start().await;
    let up = Upstream::start((300, 60), Duration::ZERO).await;
    let budget = 16 * 1024;
    let dns = forwarding(&etcd, up.addr, |c| c.catalog.cache_bytes = budget).await;
    let names: Vec<String> = (0..300).map(|i| format!("n{i}.{WILD}")).collect();
    for name in &names {
        let m = query(dns.addr, name, RecordType::A, Transport::Udp).await;
        assert_eq!(addresses(&m), vec!["192.0.2.7"]);
    }
    let evictions = cache_metric(&dns, "etcd_dns_cache_evictions_total").await;
    let entries = cache_metric(&dns, "etcd_dns_cache_entries").await;
    let bytes = cache_metric(&dns, "etcd_dns_cache_bytes").await;
    eprintln!("{entries} entries, {bytes} bytes, {evictions} evictions");
    assert!(evictions >= 100.0 && entries + evictions == 300.0);
    assert!(bytes <= budget as f64);
    // The first names are gone (asked again), the last one is still there.
    query(dns.addr, &names[0], RecordType::A, Transport::Udp).await;
    assert_eq!(up.queries(&names[0], RecordType::A), 2);
    query(dns.addr, &names[299], RecordType::A, Transport::Udp).await;
    assert_eq!(up.queries(&names[299], RecordType::A), 1);
}
