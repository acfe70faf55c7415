//! Other frameworks' registries end to end: each format written into a real etcd as its
//! framework writes it (keys, values and lease habit), answered over DNS, and gone when the
//! lease is revoked or the key deleted.

mod common;

use common::registries::*;
use common::*;
use hickory_proto::rr::RecordType;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_naming_endpoints_with_a_lease() {
    let etcd = Etcd::start().await;
    let dns = serve(&etcd, &["etcd-naming=foo/bar/"]).await;
    let mut client = etcd.client().await;
    // endpoints.Manager("foo/bar/my-service").AddEndpoint(…, clientv3.WithLease(lease)).
    let lease = grant(&mut client, 10).await;
    let value = r#"{"Op":0,"Addr":"10.0.0.1:50051","Metadata":null}"#;
    put(&mut client, "foo/bar/my-service/e1", value, Some(lease)).await;
    wait_addresses(&dns, "my-service.services.local.", &["10.0.0.1"]).await;
    assert_eq!(
        srv(&dns, "_my-service._tcp.services.local.", 1).await,
        ["10 10 50051 e1.my-service.services.local."]
    );
    revoke(&mut client, lease).await;
    wait_gone(&dns, "my-service.services.local.").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_zero_re_registers_under_a_new_key() {
    let etcd = Etcd::start().await;
    let dns = serve(&etcd, &["go-zero="]).await;
    let mut client = etcd.client().await;
    // publisher.register: Grant(10), Put("<Key>/<lease id>", "ip:port", WithLease).
    let first = grant(&mut client, 10).await;
    put(
        &mut client,
        &format!("user.rpc/{first}"),
        "10.0.0.5:8080",
        Some(first),
    )
    .await;
    wait_addresses(&dns, "user.rpc.services.local.", &["10.0.0.5"]).await;
    wait_addresses(
        &dns,
        &format!("{first}.user.rpc.services.local."),
        &["10.0.0.5"],
    )
    .await;
    // The keep-alive is lost: go-zero revokes and registers again, a new lease and key.
    revoke(&mut client, first).await;
    let second = grant(&mut client, 10).await;
    put(
        &mut client,
        &format!("user.rpc/{second}"),
        "10.0.0.6:8080",
        Some(second),
    )
    .await;
    wait_addresses(&dns, "user.rpc.services.local.", &["10.0.0.6"]).await;
    wait_gone(&dns, &format!("{first}.user.rpc.services.local.")).await;
    assert_eq!(
        srv(&dns, "_user.rpc._tcp.services.local.", 1).await,
        [format!("10 10 8080 {second}.user.rpc.services.local.")]
    );
    revoke(&mut client, second).await;
    wait_gone(&dns, "user.rpc.services.local.").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kratos_endpoints_become_srv_per_scheme() {
    let etcd = Etcd::start().await;
    let dns = serve(&etcd, &["kratos=/microservices/"]).await;
    let mut client = etcd.client().await;
    // Register: Grant(15s), Put("/microservices/<name>/<id>", json, WithLease), KeepAlive.
    let id = "a9b3e1b0-8e0f-11ee-b9d1-0242ac120002";
    let value = format!(
        r#"{{"id":"{id}","name":"helloworld","version":"v1.0.0","metadata":null,"endpoints":["grpc://10.0.0.7:9000","http://10.0.0.7:8000"]}}"#
    );
    let lease = grant(&mut client, 15).await;
    put(
        &mut client,
        &format!("/microservices/helloworld/{id}"),
        &value,
        Some(lease),
    )
    .await;
    wait_addresses(&dns, "helloworld.services.local.", &["10.0.0.7"]).await;
    let target = format!("{id}.helloworld.services.local.");
    assert_eq!(
        srv(&dns, "_grpc._tcp.helloworld.services.local.", 1).await,
        [format!("10 10 9000 {target}")]
    );
    assert_eq!(
        srv(&dns, "_http._tcp.helloworld.services.local.", 1).await,
        [format!("10 10 8000 {target}")]
    );
    let txt = lookup_txt(dns.addr, "helloworld.services.local.", Transport::Tcp).await;
    assert_eq!(txt, ["version=v1.0.0"]);
    revoke(&mut client, lease).await;
    wait_gone(&dns, "helloworld.services.local.").await;
    wait_gone(&dns, "_grpc._tcp.helloworld.services.local.").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_micro_with_and_without_a_lease() {
    let etcd = Etcd::start().await;
    let dns = serve(&etcd, &["go-micro=/micro/registry/"]).await;
    let mut client = etcd.client().await;
    let node = |id: &str, address: &str| {
        format!(
            r#"{{"name":"helloworld","version":"latest","metadata":null,"endpoints":[],"nodes":[{{"id":"{id}","address":"{address}","metadata":{{"protocol":"mucp"}}}}]}}"#
        )
    };
    // RegisterTTL 90 s: a lease. RegisterTTL 0: none, the key stays until Deregister.
    let lease = grant(&mut client, 90).await;
    let (a, b) = ("helloworld-1b6f", "helloworld-9c2d");
    let value = node(a, "10.0.0.8:8080");
    put(
        &mut client,
        &format!("/micro/registry/helloworld/{a}"),
        &value,
        Some(lease),
    )
    .await;
    let value = node(b, "10.0.0.9:8080");
    put(
        &mut client,
        &format!("/micro/registry/helloworld/{b}"),
        &value,
        None,
    )
    .await;
    wait_addresses(
        &dns,
        "helloworld.services.local.",
        &["10.0.0.8", "10.0.0.9"],
    )
    .await;
    wait_addresses(
        &dns,
        &format!("{b}.helloworld.services.local."),
        &["10.0.0.9"],
    )
    .await;
    revoke(&mut client, lease).await;
    wait_addresses(&dns, "helloworld.services.local.", &["10.0.0.9"]).await;
    // Deregister deletes the key.
    client
        .delete(format!("/micro/registry/helloworld/{b}"), None)
        .await
        .expect("delete");
    wait_gone(&dns, "helloworld.services.local.").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skydns_answers_as_coredns_does() {
    let etcd = Etcd::start().await;
    let dns = serve(&etcd, &["skydns=/skydns@skydns.local."]).await;
    let mut client = etcd.client().await;
    // external-dns and skydns users write without a lease.
    put(
        &mut client,
        "/skydns/local/skydns/east/web/x1",
        r#"{"host":"10.0.0.1","port":8080}"#,
        None,
    )
    .await;
    put(
        &mut client,
        "/skydns/local/skydns/east/web/x2",
        r#"{"host":"10.0.0.2","port":8080}"#,
        None,
    )
    .await;
    put(
        &mut client,
        "/skydns/local/skydns/db",
        r#"{"host":"db.example.com"}"#,
        None,
    )
    .await;
    put(
        &mut client,
        "/skydns/local/skydns/note",
        r#"{"text":"hello"}"#,
        None,
    )
    .await;
    put(
        &mut client,
        "/skydns/com/example/other",
        r#"{"host":"10.0.0.9"}"#,
        None,
    )
    .await;
    // A subtree answers for its parent.
    wait_addresses(&dns, "web.east.skydns.local.", &["10.0.0.1", "10.0.0.2"]).await;
    wait_addresses(&dns, "east.skydns.local.", &["10.0.0.1", "10.0.0.2"]).await;
    wait_addresses(&dns, "x1.web.east.skydns.local.", &["10.0.0.1"]).await;
    assert_eq!(
        srv(&dns, "web.east.skydns.local.", 2).await,
        [
            "10 100 8080 x1.web.east.skydns.local.",
            "10 100 8080 x2.web.east.skydns.local."
        ]
    );
    let cname = query(dns.addr, "db.skydns.local.", RecordType::A, Transport::Udp).await;
    assert_eq!(cname.answers[0].data.to_string(), "db.example.com.");
    let txt = lookup_txt(dns.addr, "note.skydns.local.", Transport::Udp).await;
    assert_eq!(txt, ["hello"]);
    // A lease's expiry removes an entry like a delete.
    let lease = grant(&mut client, 10).await;
    put(
        &mut client,
        "/skydns/local/skydns/east/web/x3",
        r#"{"host":"10.0.0.3"}"#,
        Some(lease),
    )
    .await;
    wait_addresses(
        &dns,
        "web.east.skydns.local.",
        &["10.0.0.1", "10.0.0.2", "10.0.0.3"],
    )
    .await;
    revoke(&mut client, lease).await;
    client
        .delete("/skydns/local/skydns/east/web/x1", None)
        .await
        .expect("delete");
    wait_addresses(&dns, "east.skydns.local.", &["10.0.0.2"]).await;
    wait_gone(&dns, "x1.web.east.skydns.local.").await;
    let (_, body) = http_get(dns.http, "/services").await;
    assert!(
        !body.contains("/skydns/com/example/other"),
        "another zone's entry is not rejected: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpcx_shares_one_lease_and_skips_its_marker_keys() {
    let etcd = Etcd::start().await;
    let dns = serve(&etcd, &["rpcx=/rpcx_test/"]).await;
    let mut client = etcd.client().await;
    // store/etcdv3: one lease for every key the plugin puts, the marker keys included.
    let lease = grant(&mut client, 30).await;
    put(&mut client, "/rpcx_test", "rpcx_path", Some(lease)).await;
    put(&mut client, "/rpcx_test/Arith", "Arith", Some(lease)).await;
    put(
        &mut client,
        "/rpcx_test/Arith/tcp@10.0.0.10:8972",
        "group=test",
        Some(lease),
    )
    .await;
    put(
        &mut client,
        "/rpcx_test/Arith/tcp@10.0.0.11:8972",
        "state=inactive",
        Some(lease),
    )
    .await;
    wait_addresses(&dns, "arith.services.local.", &["10.0.0.10"]).await;
    assert_eq!(
        srv(&dns, "_arith._tcp.services.local.", 1).await,
        ["10 10 8972 tcp-10-0-0-10-8972.arith.services.local."]
    );
    let (_, body) = http_get(dns.http, "/services").await;
    assert!(
        body.contains(r#""rejected": []"#),
        "marker keys are no errors: {body}"
    );
    revoke(&mut client, lease).await;
    wait_gone(&dns, "arith.services.local.").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dubbo_answers_enabled_healthy_instances() {
    let etcd = Etcd::start().await;
    let dns = serve(&etcd, &["dubbo=/services/@dubbo.local."]).await;
    let mut client = etcd.client().await;
    let instance = |healthy: bool| {
        format!(
            r#"{{"ID":"10.0.0.1:20000","ServiceName":"dubbo-go-app","Host":"10.0.0.1","Port":20000,"Enable":true,"Healthy":{healthy},"Metadata":{{"dubbo.metadata.storage-type":"local"}},"ServiceMetadata":null,"Address":"10.0.0.1:20000","GroupName":"","Tag":""}}"#
        )
    };
    // RegisterTemp: a 30 s lease, kept alive.
    let lease = grant(&mut client, 30).await;
    let key = "/services/dubbo-go-app/10.0.0.1:20000";
    put(&mut client, key, &instance(true), Some(lease)).await;
    wait_addresses(&dns, "dubbo-go-app.dubbo.local.", &["10.0.0.1"]).await;
    assert_eq!(
        srv(&dns, "_dubbo-go-app._tcp.dubbo.local.", 1).await,
        ["10 10 20000 10-0-0-1-20000.dubbo-go-app.dubbo.local."]
    );
    put(&mut client, key, &instance(false), Some(lease)).await;
    wait_gone(&dns, "dubbo-go-app.dubbo.local.").await;
    put(&mut client, key, &instance(true), Some(lease)).await;
    wait_addresses(&dns, "dubbo-go-app.dubbo.local.", &["10.0.0.1"]).await;
    revoke(&mut client, lease).await;
    wait_gone(&dns, "dubbo-go-app.dubbo.local.").await;
}
