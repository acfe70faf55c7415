//! Several registries at once: formats feeding one zone (their union) and a second zone,
//! read at one revision, watched on one stream, re-read together after a compaction; and the
//! `--registry` flag of the binary, including what it refuses at start-up.

mod common;

use std::time::Duration;

use common::proxy::Proxy;
use common::registries::*;
use common::*;
use etcd_client::CompactionOptions;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_registries_into_two_zones_read_watched_and_resynced_together() {
    let etcd = Etcd::start().await;
    let mut client = etcd.client().await;
    // Written before etcd-dns starts: the first read takes every prefix at one revision.
    put(&mut client, "services/web/n1", r#"{"IP":"10.0.0.1"}"#, None).await;
    let lease = grant(&mut client, 10).await;
    put(
        &mut client,
        &format!("rpc/web/{lease}"),
        "10.0.0.2:80",
        Some(lease),
    )
    .await;
    let api = r#"{"id":"i1","name":"api","endpoints":["grpc://10.0.0.3:9000"]}"#;
    put(&mut client, "/microservices/api/i1", api, None).await;
    put(
        &mut client,
        "/skydns/local/mesh/db/x1",
        r#"{"host":"10.0.0.4"}"#,
        None,
    )
    .await;
    let upstream = etcd
        .endpoint
        .trim_start_matches("http://")
        .parse()
        .expect("etcd address");
    let proxy = Proxy::start(upstream).await;
    let registries = [
        "native=services/",
        "go-zero=rpc/",
        "kratos=/microservices/@mesh.local.",
        "skydns=/skydns/@mesh.local.",
    ];
    let dns = serve_at(&proxy.endpoint(), &registries).await;
    // Two registries into one zone: their union.
    wait_addresses(&dns, "web.services.local.", &["10.0.0.1", "10.0.0.2"]).await;
    // Two more into a second zone.
    wait_addresses(&dns, "api.mesh.local.", &["10.0.0.3"]).await;
    wait_addresses(&dns, "db.mesh.local.", &["10.0.0.4"]).await;
    wait_gone(&dns, "api.services.local.").await;
    wait_gone(&dns, "web.mesh.local.").await;

    // A change moves its own zone's serial only.
    let (services, mesh) = (
        serial(&dns, "services.local.").await,
        serial(&dns, "mesh.local.").await,
    );
    put(&mut client, "services/web/n3", r#"{"IP":"10.0.0.5"}"#, None).await;
    wait_addresses(
        &dns,
        "web.services.local.",
        &["10.0.0.1", "10.0.0.2", "10.0.0.5"],
    )
    .await;
    assert!(serial(&dns, "services.local.").await > services);
    assert_eq!(serial(&dns, "mesh.local.").await, mesh);

    // Cut off while every registry changes and etcd compacts: the watch cannot resume, so
    // the next session reads every prefix again at one revision and swaps once.
    proxy.cut();
    revoke(&mut client, lease).await;
    put(
        &mut client,
        "/skydns/local/mesh/db/x2",
        r#"{"host":"10.0.0.6"}"#,
        None,
    )
    .await;
    client
        .delete("/microservices/api/i1", None)
        .await
        .expect("delete");
    let revision = client
        .put("services/web/n1", r#"{"IP":"10.0.0.7"}"#, None)
        .await
        .expect("put")
        .header()
        .map(|h| h.revision())
        .expect("revision");
    let compact = CompactionOptions::new().with_physical();
    client
        .compact(revision, Some(compact))
        .await
        .expect("compact");
    let resyncs = |body: String| body.lines().any(|l| l == "etcd_dns_resyncs_total 1");
    proxy.restore();
    wait_addresses(&dns, "web.services.local.", &["10.0.0.5", "10.0.0.7"]).await;
    wait_addresses(&dns, "db.mesh.local.", &["10.0.0.4", "10.0.0.6"]).await;
    wait_gone(&dns, "api.mesh.local.").await;
    let (_, metrics) = http_get(dns.http, "/metrics").await;
    assert!(resyncs(metrics.clone()), "one re-read and swap: {metrics}");
    assert!(serial(&dns, "mesh.local.").await > mesh);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_registry_flags_and_refuses_bad_ones() {
    let etcd = Etcd::start().await;
    let value = r#"{"id":"i1","name":"api","endpoints":["grpc://10.0.0.3:9000"]}"#;
    etcd.put("/microservices/api/i1", value).await;
    etcd.put("services/web", r#"{"IP":"10.0.0.1"}"#).await;
    let args = [
        "--registry",
        "kratos=/microservices/@mesh.local.,native=services/",
    ];
    let daemon = Daemon::etcd_dns(&etcd.endpoint, &args.map(String::from));
    let addr = daemon.dns_addr().await;
    for (name, want) in [
        ("api.mesh.local.", "10.0.0.3"),
        ("web.services.local.", "10.0.0.1"),
    ] {
        eventually(name, LIMIT, || async {
            (lookup_a(addr, name, Transport::Udp).await == [want]).then_some(())
        })
        .await;
    }
    let refused: [(&[&str], &str); 3] = [
        (
            &["--prefix", "x/", "--registry", "native=services/"],
            "--prefix and --registry",
        ),
        (
            &[
                "--registry",
                "native=a/@x.services.local.",
                "--registry",
                "native=b/",
            ],
            "must not nest",
        ),
        (&["--registry", "nacos=/nacos/"], "unknown registry format"),
    ];
    for (args, why) in refused {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let mut daemon = Daemon::etcd_dns(&etcd.endpoint, &args);
        let (code, _, log) = daemon.wait_exit(Duration::from_secs(10)).await;
        assert_ne!(code, Some(0), "{args:?}: {log}");
        assert!(log.contains(why), "{args:?}: {log}");
    }
}
