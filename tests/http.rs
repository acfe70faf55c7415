//! The operator's endpoints against a real etcd: /health, /ready (before and after the first
//! read, and past --max-stale), /metrics and /services.

mod common;

use std::time::Duration;

use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

#[tokio::test]
async fn ready_is_503_until_the_registry_is_read_and_health_is_200_throughout() {
    // No etcd yet: the server runs but has no table.
    let port = free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let dns = DnsServer::start(&endpoint).await;
    let (status, body) = http_get(dns.http, "/ready").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("not been read"), "{body}");
    let (status, body) = http_get(dns.http, "/health").await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let (_, metrics) = http_get(dns.http, "/metrics").await;
    assert!(metrics.contains("etcd_dns_ready 0"), "{metrics}");
    let (status, _) = http_get(dns.http, "/nothing-here").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn ready_metrics_and_services_describe_the_live_table() {
    let (etcd, dns) = etcd_and_dns().await;
    etcd.put("services/web/n1", r#"{"IP":"10.0.0.1","port":80}"#)
        .await;
    etcd.put("services/bad", "{broken").await;
    wait_answers(
        dns.addr,
        "web.services.local.",
        RecordType::A,
        1,
        Duration::from_secs(5),
    )
    .await;
    lookup_a(dns.addr, "missing.services.local.", Transport::Udp).await;

    let (status, body) = http_get(dns.http, "/ready").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("ready: revision"), "{body}");
    assert!(body.contains("1 instances"), "{body}");

    let (status, metrics) = http_get(dns.http, "/metrics").await;
    assert_eq!(status, 200);
    for line in [
        "etcd_dns_ready 1",
        "etcd_dns_instances 1",
        "etcd_dns_rejected_keys 1",
        r#"etcd_dns_queries_total{path="live",qtype="A",rcode="NOERROR"}"#,
        r#"etcd_dns_queries_total{path="live",qtype="A",rcode="NXDOMAIN"}"#,
        r#"etcd_dns_query_duration_seconds_count{path="live"}"#,
        "etcd_dns_watch_events_total 2",
        "etcd_dns_resyncs_total 0",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
    let age: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("etcd_dns_table_age_seconds "))
        .and_then(|v| v.parse().ok())
        .expect("table age");
    assert!(age < 5.0, "etcd confirmed the table {age} s ago");

    let (status, services) = http_get(dns.http, "/services").await;
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_str(&services).expect("JSON");
    assert_eq!(json["instances"], 1);
    assert_eq!(json["ready"], true);
    let web = &json["names"]["web.services.local."];
    assert!(
        web.as_array()
            .expect("records of web")
            .iter()
            .any(|r| r["type"] == "A" && r["data"] == "10.0.0.1"),
        "{services}"
    );
    assert_eq!(json["rejected"][0]["key"], "services/bad");
    let reason = json["rejected"][0]["reason"].as_str().expect("reason");
    assert!(reason.starts_with("invalid value"), "{reason}");
}

#[tokio::test]
async fn no_http_wins_over_an_http_address() {
    // The container image sets ETCD_DNS_HTTP; `--no-http` must still start, serving no HTTP.
    let etcd = Etcd::start().await;
    let dns = Daemon::etcd_dns(&etcd.endpoint, &["--no-http".to_string()]);
    let log = dns
        .wait_log("registry loaded", Duration::from_secs(10))
        .await;
    assert!(!log.contains("over HTTP"), "{log}");
}

#[tokio::test]
async fn ready_fails_past_max_stale_when_etcd_goes_away() {
    let mut etcd = Etcd::start().await;
    let dns = DnsServer::start_with(&etcd.endpoint, |config| {
        config.max_stale = Some(Duration::from_secs(2));
    })
    .await;
    dns.wait_ready().await;
    let (status, body) = http_get(dns.http, "/ready").await;
    assert_eq!(status, 200, "{body}");
    etcd.kill();
    let (body, _) = eventually("/ready turns 503", Duration::from_secs(15), || async {
        let (status, body) = http_get(dns.http, "/ready").await;
        (status == 503).then_some(body)
    })
    .await;
    assert!(body.contains("--max-stale"), "{body}");
    // The last table still answers DNS (docs/OPERATIONS.md: it keeps answering from the last table).
    let (status, _) = http_get(dns.http, "/health").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn past_max_stale_the_zone_answers_servfail_until_etcd_confirms_it_again() {
    let etcd = Etcd::start().await;
    etcd.put("services/s-test", r#"{"IP":"192.168.1.26"}"#)
        .await;
    let dns = DnsServer::start_with(&etcd.endpoint, |config| {
        config.max_stale = Some(Duration::from_secs(2));
    })
    .await;
    let name = "s-test.services.local.";
    wait_answers(dns.addr, name, RecordType::A, 1, Duration::from_secs(10)).await;
    // A frozen etcd keeps its connections open but confirms nothing.
    etcd.signal("STOP");
    let (_, stale_after) = wait_rcode(
        dns.addr,
        name,
        RecordType::A,
        ResponseCode::ServFail,
        Duration::from_secs(10),
    )
    .await;
    let (status, body) = http_get(dns.http, "/ready").await;
    etcd.signal("CONT");
    assert!(
        stale_after >= Duration::from_secs(1),
        "SERVFAIL after only {stale_after:?}"
    );
    assert_eq!(status, 503, "{body}");
    // Thawed: etcd confirms the table again and the last view answers at once.
    wait_answers(dns.addr, name, RecordType::A, 1, Duration::from_secs(20)).await;
    let (status, body) = http_get(dns.http, "/ready").await;
    assert_eq!(status, 200, "{body}");
}
