//! The `register` binary against a real etcd and a live etcd-dns: register, revoke, crash,
//! conflicts and listing.

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::op::Message;
use hickory_proto::op::ResponseCode::{NXDomain, NoError};
use hickory_proto::rr::RecordType;

const NAME: &str = "s-test.services.local.";
/// How long a new registration may take to resolve (the process start included).
const REGISTERED_WITHIN: Duration = Duration::from_secs(5);
/// How long the revoke on SIGTERM or SIGINT may take to show: it is immediate.
const REVOKED_WITHIN: Duration = Duration::from_secs(1);

/// Waits until `name`/`qtype` answers with records at `dns` (a registration is live), within
/// [`REGISTERED_WITHIN`], or panics naming the name, type and rcode; the answer and the time.
async fn wait_registered(dns: &DnsServer, name: &str, qtype: RecordType) -> (Message, Duration) {
    wait_rcode(dns.addr, name, qtype, NoError, REGISTERED_WITHIN).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registered_then_sigterm_revokes_at_once() {
    let (etcd, dns) = etcd_and_dns().await;

    let mut reg = register(
        &etcd.endpoint,
        &["--name", "s-test", "--ip", "192.168.1.26"],
    );
    let (m, took) = wait_registered(&dns, NAME, RecordType::A).await;
    assert_eq!(addresses(&m), vec!["192.168.1.26"]);
    eprintln!("register → resolvable: {took:?} (includes process start)");

    reg.signal("TERM");
    let (_, took) = wait_rcode(dns.addr, NAME, RecordType::A, NXDomain, REVOKED_WITHIN).await;
    eprintln!("SIGTERM → NXDOMAIN: {took:?}");
    assert_eq!(
        reg.wait_exit(Duration::from_secs(5)).await,
        Some(0),
        "register exits 0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_revokes_too() {
    let (etcd, dns) = etcd_and_dns().await;
    let mut reg = register(
        &etcd.endpoint,
        &["--name", "s-test", "--ip", "10.1.1.1", "--port", "80"],
    );
    wait_registered(&dns, NAME, RecordType::SRV).await;
    reg.signal("INT");
    wait_rcode(dns.addr, NAME, RecordType::A, NXDomain, REVOKED_WITHIN).await;
    assert_eq!(reg.wait_exit(Duration::from_secs(5)).await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_disappears_within_ttl_plus_two_seconds() {
    let (etcd, dns) = etcd_and_dns().await;
    // etcd's minimum lease TTL is about 3 s (3 × election timeout ticks); use it to keep the
    // test short.
    let ttl = 3;
    let ttl_text = ttl.to_string();
    let reg = register(
        &etcd.endpoint,
        &["--name", "s-test", "--ip", "10.1.1.2", "--ttl", &ttl_text],
    );
    wait_registered(&dns, NAME, RecordType::A).await;
    // Let a few keep-alives pass first: the name must survive longer than one TTL while alive.
    // It must answer at every poll, the last one made more than TTL + 1 s after it first did.
    let resolvable = Instant::now();
    let past_ttl = Duration::from_secs(ttl + 1);
    eventually(
        "kept alive past its TTL",
        past_ttl + Duration::from_secs(2),
        || async {
            let late = resolvable.elapsed() > past_ttl;
            let a = lookup_a(dns.addr, NAME, Transport::Udp).await;
            assert_eq!(a, vec!["10.1.1.2"], "kept alive past its TTL");
            late.then_some(())
        },
    )
    .await;

    reg.signal("KILL");
    let (_, took) = wait_rcode(
        dns.addr,
        NAME,
        RecordType::A,
        NXDomain,
        Duration::from_secs(ttl + 2),
    )
    .await;
    eprintln!("SIGKILL → NXDOMAIN: {took:?}");
    drop(reg);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_register_for_a_live_key_is_a_clear_error() {
    let (etcd, dns) = etcd_and_dns().await;
    let first = register(
        &etcd.endpoint,
        &["--name", "web", "--instance", "n1", "--ip", "10.0.0.1"],
    );
    wait_registered(&dns, "n1.web.services.local.", RecordType::A).await;

    let mut second = register(
        &etcd.endpoint,
        &["--name", "web", "--instance", "n1", "--ip", "10.0.0.2"],
    );
    let code = second.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(code, Some(1), "conflict exits non-zero");
    let mut stderr = String::new();
    second
        .0
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    assert!(
        stderr.contains("services/web/n1") && stderr.contains("another live lease"),
        "{stderr}"
    );

    // The first registration is untouched.
    let a = lookup_a(dns.addr, "n1.web.services.local.", Transport::Udp).await;
    assert_eq!(a, vec!["10.0.0.1"]);

    // A second instance of the same service is fine: both answer at the service name.
    let _other = register(
        &etcd.endpoint,
        &["--name", "web", "--instance", "n2", "--ip", "10.0.0.2"],
    );
    let m = wait_answers(
        dns.addr,
        "web.services.local.",
        RecordType::A,
        2,
        REGISTERED_WITHIN,
    )
    .await;
    assert_eq!(addresses(&m), vec!["10.0.0.1", "10.0.0.2"]);
    drop(first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_key_is_registered_again() {
    let (etcd, dns) = etcd_and_dns().await;
    let _reg = register(&etcd.endpoint, &["--name", "s-test", "--ip", "10.3.3.3"]);
    wait_registered(&dns, NAME, RecordType::A).await;
    etcd.delete("services/s-test").await;
    // It may briefly be gone; it must come back on its own.
    let (m, took) = eventually(
        "re-registered after delete",
        Duration::from_secs(5),
        || async {
            let mut client = etcd.client().await;
            let present = client.get("services/s-test", None).await.ok()?.kvs().len() == 1;
            let m = query(dns.addr, NAME, RecordType::A, Transport::Udp).await;
            (present && !m.answers.is_empty()).then_some(m)
        },
    )
    .await;
    assert_eq!(addresses(&m), vec!["10.3.3.3"]);
    eprintln!("delete → registered again: {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_prints_every_instance_then_the_count() {
    let etcd = Etcd::start().await;
    etcd.put("services/s-test", r#"{"IP":"192.168.1.26"}"#)
        .await;
    etcd.put("services/web/n1", r#"{"IP":"10.0.0.1","port":80}"#)
        .await;
    etcd.put("services/broken", "nope").await;
    let output = std::process::Command::new(bin("register"))
        .args(["list", "--etcd", &etcd.endpoint])
        .output()
        .expect("run register list");
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        vec![
            "services/s-test\t192.168.1.26",
            "services/web/n1\t10.0.0.1",
            "2 instances"
        ]
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("skipped services/broken"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_name_fails_before_touching_etcd() {
    // Nothing listens at this endpoint: reaching etcd at all would fail differently.
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    for (args, cause) in [
        (
            &["--name", "bad name", "--ip", "10.0.0.1"][..],
            "invalid label",
        ),
        // A lease too short to be kept alive through another member is refused too.
        (
            &["--name", "ok", "--ip", "10.0.0.1", "--ttl", "1"][..],
            "--ttl must be at least 2 seconds",
        ),
    ] {
        let mut reg = register(&endpoint, args);
        assert_eq!(reg.wait_exit(Duration::from_secs(5)).await, Some(1));
        let mut stderr = String::new();
        reg.0
            .stderr
            .take()
            .expect("stderr")
            .read_to_string(&mut stderr)
            .expect("read");
        assert!(stderr.contains(cause), "{args:?}: {stderr}");
    }
}

#[test]
fn version_names_each_binary() {
    for name in ["etcd-dns", "register"] {
        let output = std::process::Command::new(bin(name))
            .arg("--version")
            .output()
            .expect("run --version");
        assert!(output.status.success());
        let want = format!("{name} {}\n", env!("CARGO_PKG_VERSION"));
        assert_eq!(String::from_utf8_lossy(&output.stdout), want);
    }
}

/// `register --tag` publishes tag lookups, `--weight` the SRV weight, and a tag that is no DNS
/// label is refused before touching etcd.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_and_weight_are_registered() {
    let (etcd, dns) = etcd_and_dns().await;
    let reg = register(
        &etcd.endpoint,
        &[
            "--name",
            "api",
            "--instance",
            "c1",
            "--ip",
            "10.2.0.1",
            "--port",
            "80",
            "--tag",
            "canary",
            "--tag",
            "v2",
            "--weight",
            "3",
            "--locality",
            "eu-1a",
        ],
    );
    let (m, _) = wait_registered(&dns, "_api._canary._v2.services.local.", RecordType::SRV).await;
    assert_eq!(srv_records(&m), ["10 3 80 c1.api.services.local."]);
    let (m, _) = wait_registered(&dns, "_api._v2.services.local.", RecordType::A).await;
    assert_eq!(addresses(&m), ["10.2.0.1"]);
    let value = etcd_get(&etcd, "services/api/c1").await;
    assert!(value.contains(r#""zone":"eu-1a""#), "{value}");
    reg.signal("TERM");
    wait_rcode(
        dns.addr,
        "_api._v2.services.local.",
        RecordType::A,
        NXDomain,
        REVOKED_WITHIN,
    )
    .await;

    let mut bad = register(
        &etcd.endpoint,
        &["--name", "api", "--ip", "10.2.0.2", "--tag", "v2.1"],
    );
    assert_eq!(bad.wait_exit(Duration::from_secs(5)).await, Some(1));
    let mut stderr = String::new();
    bad.0
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read");
    assert!(stderr.contains("\"v2.1\" is not a DNS label"), "{stderr}");
}

/// The value at `key`, as text ("" when absent).
async fn etcd_get(etcd: &Etcd, key: &str) -> String {
    let mut client = etcd.client().await;
    let reply = client.get(key, None).await.expect("etcd get");
    reply
        .kvs()
        .first()
        .map(|kv| String::from_utf8_lossy(kv.value()).into_owned())
        .unwrap_or_default()
}
