//! Health-gated registration against a real etcd and a live etcd-dns: with `--check-http` or
//! `--check-cmd` the name answers while the check passes and is NXDOMAIN while it fails.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const NAME: &str = "s-test.services.local.";
const IP: &str = "192.168.1.26";
/// Check interval of these tests: short, to keep them quick.
const INTERVAL: &str = "200ms";
/// How long a flip of the check may take to show in DNS: one interval, a check, a revoke (or a
/// grant and a claim) and the watch. Generous, for a loaded CI machine.
const FLIP_LIMIT: Duration = Duration::from_secs(5);

/// A tiny HTTP server answering 200 while `healthy`, else 503; counts the requests.
struct Health {
    addr: SocketAddr,
    healthy: Arc<AtomicBool>,
    hits: Arc<AtomicUsize>,
}

impl Health {
    async fn start(healthy: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let healthy = Arc::new(AtomicBool::new(healthy));
        let hits = Arc::new(AtomicUsize::new(0));
        let (state, count) = (healthy.clone(), hits.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.ends_with(b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let status = if state.load(Ordering::SeqCst) {
                    "200 OK"
                } else {
                    "503 Service Unavailable"
                };
                count.fetch_add(1, Ordering::SeqCst);
                let reply = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
                let _ = stream.write_all(reply.as_bytes()).await;
            }
        });
        Self {
            addr,
            healthy,
            hits,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/health", self.addr)
    }

    fn set(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::SeqCst);
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

async fn answers(dns: &DnsServer) -> Duration {
    let (m, took) = wait_rcode(
        dns.addr,
        NAME,
        RecordType::A,
        ResponseCode::NoError,
        FLIP_LIMIT,
    )
    .await;
    assert_eq!(addresses(&m), vec![IP]);
    took
}

async fn gone(dns: &DnsServer) -> Duration {
    wait_rcode(
        dns.addr,
        NAME,
        RecordType::A,
        ResponseCode::NXDomain,
        FLIP_LIMIT,
    )
    .await
    .1
}

/// Keys and leases in etcd: while the check fails, register holds neither.
async fn keys_and_leases(etcd: &Etcd) -> (usize, usize) {
    let mut client = etcd.client().await;
    let keys = client
        .get(
            "services/",
            Some(etcd_client::GetOptions::new().with_prefix()),
        )
        .await
        .expect("etcd get")
        .kvs()
        .len();
    let leases = client.leases().await.expect("etcd leases").leases().len();
    (keys, leases)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_check_gates_the_name() {
    let (etcd, dns) = etcd_and_dns().await;
    let health = Health::start(false).await;
    let url = health.url();
    let mut reg = register(
        &etcd.endpoint,
        &[
            "--name",
            "s-test",
            "--ip",
            IP,
            "--check-http",
            &url,
            "--check-interval",
            INTERVAL,
        ],
    );

    // Failing from the start: checked (twice, so the first result was acted on), never registered.
    eventually("two checks", FLIP_LIMIT, || async {
        (health.hits() >= 2).then_some(())
    })
    .await;
    assert_eq!(
        keys_and_leases(&etcd).await,
        (0, 0),
        "nothing in etcd while failing"
    );
    assert_eq!(
        query(dns.addr, NAME, RecordType::A, Transport::Udp)
            .await
            .metadata
            .response_code,
        ResponseCode::NXDomain
    );

    health.set(true);
    eprintln!("503 → 200: answers after {:?}", answers(&dns).await);
    health.set(false);
    eprintln!("200 → 503: NXDOMAIN after {:?}", gone(&dns).await);
    assert_eq!(keys_and_leases(&etcd).await, (0, 0), "the lease is revoked");
    health.set(true);
    eprintln!("503 → 200: answers again after {:?}", answers(&dns).await);

    reg.signal("TERM");
    gone(&dns).await;
    assert_eq!(reg.wait_exit(Duration::from_secs(5)).await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_check_gates_the_name_and_sigterm_while_failing_exits_0() {
    let (etcd, dns) = etcd_and_dns().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let flag = dir.path().join("healthy");
    std::fs::write(&flag, "").expect("create flag");
    let command = format!("test -e '{}'", flag.display());
    let mut reg = register(
        &etcd.endpoint,
        &[
            "--name",
            "s-test",
            "--ip",
            IP,
            "--check-cmd",
            &command,
            "--check-interval",
            INTERVAL,
        ],
    );
    eprintln!("start → answers after {:?}", answers(&dns).await);

    std::fs::remove_file(&flag).expect("remove flag");
    eprintln!("file removed → NXDOMAIN after {:?}", gone(&dns).await);
    std::fs::write(&flag, "").expect("create flag");
    eprintln!("file created → answers after {:?}", answers(&dns).await);
    std::fs::remove_file(&flag).expect("remove flag");
    gone(&dns).await;

    // Stopped while failing (no lease held): still a clean exit 0, at once.
    let stop = Instant::now();
    reg.signal("TERM");
    assert_eq!(reg.wait_exit(Duration::from_secs(2)).await, Some(0));
    eprintln!("SIGTERM while failing → exit 0 after {:?}", stop.elapsed());
    assert_eq!(keys_and_leases(&etcd).await, (0, 0));
}

/// Runs `register` with `args` and `env` (no etcd is needed: flags are checked first) and
/// returns its exit code and stderr.
fn register_fails(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut command = std::process::Command::new(bin("register"));
    for var in [
        "REGISTER_CHECK_HTTP",
        "REGISTER_CHECK_CMD",
        "REGISTER_CHECK_INTERVAL",
    ] {
        command.env_remove(var);
    }
    let output = command
        .args(["--name", "s-test", "--ip", IP])
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run register");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Flags, environment variables, and what stderr must say.
type FlagCase = (
    &'static [&'static str],
    &'static [(&'static str, &'static str)],
    &'static str,
);

#[test]
fn bad_check_flags_are_refused_at_start() {
    let cases: &[FlagCase] = &[
        (
            &["--check-http", "http://127.0.0.1/", "--check-cmd", "true"],
            &[],
            "cannot be used with",
        ),
        (
            &["--check-http", "https://127.0.0.1/"],
            &[],
            "https:// is not supported",
        ),
        (
            &["--check-cmd", "true", "--check-interval", "5"],
            &[],
            "expected a duration",
        ),
        (
            &["--check-cmd", "true", "--check-interval", "10ms"],
            &[],
            "shorter than the minimum",
        ),
        // The same through the environment.
        (
            &[],
            &[
                ("REGISTER_CHECK_HTTP", "http://127.0.0.1/"),
                ("REGISTER_CHECK_CMD", "true"),
            ],
            "cannot be used with",
        ),
        (
            &["--check-cmd", "true"],
            &[("REGISTER_CHECK_INTERVAL", "5")],
            "expected a duration",
        ),
    ];
    for (args, env, want) in cases {
        let (code, stderr) = register_fails(args, env);
        assert_eq!(code, Some(2), "{args:?} {env:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?} {env:?}: {stderr}");
    }
}
