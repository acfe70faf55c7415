//! Both binaries against etcd with authentication and mutual TLS: working set-ups answer and
//! register; what will not fix itself (bad flags, unreadable files, wrong credentials, a
//! missing permission, a CA that does not verify the server) exits 1 at once, naming the
//! cause; an unreachable etcd is retried, with one log line per outage rather than per attempt.

mod common;

use std::time::{Duration, Instant};

use common::*;
use etcd_client::Permission;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

/// How long a permanent failure may take to end a process (the contract).
const FAIL_FAST: Duration = Duration::from_secs(10);
/// How long a flag error may take: no network is involved, only process start-up.
const AT_ONCE: Duration = Duration::from_secs(5);
/// How long a transient failure is watched for: past [`FAIL_FAST`], so retrying is shown.
const STILL_RETRYING: Duration = Duration::from_secs(11);
/// Poll step while checking that processes stay up.
const LIVENESS_POLL: Duration = Duration::from_millis(200);
/// How long registering and answering may take.
const SETTLE: Duration = Duration::from_secs(10);

const NAME: &str = "s-test.services.local.";

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// `register` arguments for s-test plus `extra`.
fn register_args(extra: &[String]) -> Vec<String> {
    let mut args = strings(&["--name", "s-test", "--ip", "192.168.1.26"]);
    args.extend(extra.iter().cloned());
    args
}

/// Starts both binaries with `extra` flags against `endpoint`.
fn both(endpoint: &str, extra: &[String]) -> [(&'static str, Daemon); 2] {
    [
        ("etcd-dns", Daemon::etcd_dns(endpoint, extra)),
        (
            "register",
            Daemon::register(endpoint, &register_args(extra)),
        ),
    ]
}

/// Asserts that `daemon` exits 1 within `limit` and that its stderr holds every one of
/// `expected`; prints the time and the message.
async fn assert_fails(name: &str, mut daemon: Daemon, limit: Duration, expected: &[&str]) {
    let (code, took, log) = daemon.wait_exit(limit).await;
    assert_eq!(code, Some(1), "{name} exit code; log:\n{log}");
    for text in expected {
        assert!(log.contains(text), "{name}: {text:?} missing in:\n{log}");
    }
    let message = log.lines().last().unwrap_or_default();
    eprintln!("{name}: exit 1 after {took:?}: {message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_flags_and_unreadable_files_exit_at_once() {
    let pki = Pki::new();
    let missing = pki.dir().join("missing.pem");
    let (ca, cert, key) = (&pki.client.ca, &pki.client.cert, &pki.client.key);
    let path = |p: &std::path::Path| p.display().to_string();
    let dead = format!("https://127.0.0.1:{}", free_port());
    let cases: Vec<(String, Vec<String>, Vec<String>)> = vec![
        (
            dead.clone(),
            vec!["--etcd-ca".into(), path(&missing)],
            vec![format!("--etcd-ca {}: cannot read", path(&missing))],
        ),
        (
            dead.clone(),
            vec![
                "--etcd-cert".into(),
                path(cert),
                "--etcd-key".into(),
                path(&missing),
            ],
            vec![format!("--etcd-key {}: cannot read", path(&missing))],
        ),
        (
            dead.clone(),
            vec!["--etcd-ca".into(), path(key)],
            vec![format!("--etcd-ca {}: no PEM CERTIFICATE", path(key))],
        ),
        (
            dead.clone(),
            vec!["--etcd-cert".into(), path(cert)],
            vec!["--etcd-cert given without --etcd-key".into()],
        ),
        (
            dead.clone(),
            strings(&["--etcd-user", "dns"]),
            vec!["--etcd-user given without --etcd-password".into()],
        ),
        (
            dead.replace("https", "http"),
            vec!["--etcd-ca".into(), path(ca)],
            vec![format!(
                "--etcd {}: http:// does not use TLS, yet --etcd-ca was given",
                dead.replace("https", "http")
            )],
        ),
    ];
    for (endpoint, flags, expected) in cases {
        let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
        for (name, daemon) in both(&endpoint, &flags) {
            assert_fails(name, daemon, AT_ONCE, &expected).await;
        }
    }
}

/// Turns authentication on with a read-only user for etcd-dns and a read-write one for
/// register, and starts both with them.
async fn with_roles(etcd: &mut Etcd) -> (Daemon, Daemon) {
    let services = Permission::read("services/").with_prefix();
    etcd.add_user("dns", "dns-secret", vec![services]).await;
    let read_write = Permission::read_write("services/").with_prefix();
    etcd.add_user("reg", "reg-secret", vec![read_write]).await;
    etcd.enable_auth().await;
    let dns = Daemon::etcd_dns(
        &etcd.endpoint,
        &strings(&["--etcd-user", "dns", "--etcd-password", "dns-secret"]),
    );
    let reg_flags = ["--etcd-user", "reg", "--etcd-password", "reg-secret"];
    let reg = Daemon::register(&etcd.endpoint, &register_args(&strings(&reg_flags)));
    (dns, reg)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_auth_read_only_for_dns_read_write_for_register() {
    let mut etcd = Etcd::start().await;
    let (dns, reg) = with_roles(&mut etcd).await;
    let addr = dns.dns_addr().await;
    let (m, took) = wait_rcode(addr, NAME, RecordType::A, ResponseCode::NoError, SETTLE).await;
    assert_eq!(addresses(&m), vec!["192.168.1.26"]);
    eprintln!("registered and answered with authentication in {took:?}");
    drop(reg);
    drop(dns);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_failures_exit_fast_naming_user_and_endpoint() {
    let mut etcd = Etcd::start().await;
    etcd.add_user(
        "dns",
        "dns-secret",
        vec![Permission::read("services/").with_prefix()],
    )
    .await;
    etcd.add_user(
        "nobody",
        "nobody-secret",
        vec![Permission::read("other/").with_prefix()],
    )
    .await;
    etcd.enable_auth().await;
    let endpoint = etcd.endpoint.clone();

    // A wrong password.
    let wrong = strings(&["--etcd-user", "dns", "--etcd-password", "wrong"]);
    for (name, daemon) in both(&endpoint, &wrong) {
        let expected = [endpoint.as_str(), "authentication failed for user \"dns\""];
        assert_fails(name, daemon, FAIL_FAST, &expected).await;
    }
    // No credentials at all.
    for (name, daemon) in both(&endpoint, &[]) {
        let expected = [endpoint.as_str(), "etcd requires authentication"];
        assert_fails(name, daemon, FAIL_FAST, &expected).await;
    }
    // A role without permission on services/ for etcd-dns; a read-only role for register.
    let nobody = strings(&["--etcd-user", "nobody", "--etcd-password", "nobody-secret"]);
    let dns = Daemon::etcd_dns(&endpoint, &nobody);
    let expected = [
        endpoint.as_str(),
        "permission denied for user \"nobody\"",
        "\"services/\"",
    ];
    assert_fails("etcd-dns", dns, FAIL_FAST, &expected).await;
    let read_only = strings(&["--etcd-user", "dns", "--etcd-password", "dns-secret"]);
    let reg = Daemon::register(&endpoint, &register_args(&read_only));
    let expected = [
        endpoint.as_str(),
        "permission denied for user \"dns\"",
        "services/s-test",
    ];
    assert_fails("register", reg, FAIL_FAST, &expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_works_and_a_wrong_ca_exits_fast() {
    let pki = Pki::new();
    let etcd = Etcd::start_with(Some(&pki)).await;
    assert!(etcd.endpoint.starts_with("https://"));

    let flags = etcd.tls_flags();
    let dns = Daemon::etcd_dns(&etcd.endpoint, &flags);
    let reg = Daemon::register(&etcd.endpoint, &register_args(&flags));
    let addr = dns.dns_addr().await;
    let (m, took) = wait_rcode(addr, NAME, RecordType::A, ResponseCode::NoError, SETTLE).await;
    assert_eq!(addresses(&m), vec!["192.168.1.26"]);
    eprintln!("registered and answered over mutual TLS in {took:?}");
    drop(reg);
    drop(dns);

    // A CA that did not sign the server's certificate.
    let other = pki.other_ca.display().to_string();
    let wrong = TlsFiles {
        ca: pki.other_ca.clone(),
        ..pki.client.clone()
    }
    .flags();
    for (name, daemon) in both(&etcd.endpoint, &wrong) {
        let expected = [
            etcd.endpoint.as_str(),
            "certificate does not verify",
            other.as_str(),
        ];
        assert_fails(name, daemon, FAIL_FAST, &expected).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_etcd_is_retried_and_logged_once_per_interval() {
    // Nothing listens there: connections are refused, which may fix itself.
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    let mut dns = Daemon::etcd_dns(&endpoint, &[]);
    let mut reg = Daemon::register(&endpoint, &register_args(&[]));
    let addr = dns.dns_addr().await;
    let start = Instant::now();
    while start.elapsed() < STILL_RETRYING {
        assert!(dns.is_running(), "etcd-dns exited:\n{}", dns.log());
        assert!(reg.is_running(), "register exited:\n{}", reg.log());
        tokio::time::sleep(LIVENESS_POLL).await;
    }
    let m = query(addr, "services.local.", RecordType::SOA, Transport::Udp).await;
    assert_eq!(
        m.metadata.response_code,
        ResponseCode::ServFail,
        "no table yet"
    );
    // About ten attempts each by now, but one line each: the first failure (a summary is
    // due after 30 s).
    for (daemon, first) in [
        (&dns, "etcd sync failed"),
        (&reg, "registration interrupted"),
    ] {
        let log = daemon.log();
        let lines: Vec<&str> = log.lines().filter(|l| l.contains("etcd at")).collect();
        assert_eq!(lines.len(), 1, "one line, not one per attempt:\n{log}");
        assert!(lines[0].contains(first), "{}", lines[0]);
        assert!(
            lines[0].contains("Connection refused"),
            "the real cause: {}",
            lines[0]
        );
    }
    assert!(
        dns.log().contains("no table loaded yet"),
        "before any table, the log says so:\n{}",
        dns.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_revokes_even_after_the_auth_token_expired() {
    // etcd forgets an idle client's token after --auth-token-ttl; register's revoke on SIGTERM
    // must authenticate again rather than fail and leave the name until the lease expires.
    let mut etcd = Etcd::start_with_args(None, &["--auth-token-ttl=1"]).await;
    let (dns, mut reg) = with_roles(&mut etcd).await;
    let addr = dns.dns_addr().await;
    wait_rcode(addr, NAME, RecordType::A, ResponseCode::NoError, SETTLE).await;
    // Idle (keep-alives only) for well over the token's TTL, the name answering throughout.
    let idle = Instant::now();
    eventually("token TTL passed", Duration::from_secs(10), || async {
        let m = query(addr, NAME, RecordType::A, Transport::Udp).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        (idle.elapsed() > Duration::from_millis(2500)).then_some(())
    })
    .await;
    reg.proc.signal("TERM");
    let (_, gone) = wait_rcode(
        addr,
        NAME,
        RecordType::A,
        ResponseCode::NXDomain,
        Duration::from_secs(10),
    )
    .await;
    let (code, _, log) = reg.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(code, Some(0), "{log}");
    assert!(
        gone < Duration::from_secs(2),
        "name gone {gone:?} after SIGTERM: the lease was not revoked (it expired)\n{log}"
    );
    assert!(log.contains("lease revoked"), "{log}");
}
