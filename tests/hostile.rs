//! Hostile clients: thousands of idle TCP connections, a process started with few file
//! descriptors, floods of malformed packets, and floods of one question (response rate
//! limiting). Whatever they do, other clients keep being answered, and nothing floods the log.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use etcd_dns::dns::rrl::RrlConfig;
use hickory_proto::rr::RecordType;
use tokio::net::{TcpStream, UdpSocket};

const NAME: &str = "s-test.services.local.";
const ADDRESS: &str = "192.168.1.26";
/// How long registering and answering may take.
const SETTLE: Duration = Duration::from_secs(10);
/// How long a query may take while the server is under attack.
const UNDER_ATTACK: Duration = Duration::from_secs(1);
/// Silence that ends a flood's reply collection.
const FLOOD_QUIET: Duration = Duration::from_millis(300);

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// Raises this test process's open-file limit so that it can hold `need` sockets.
fn allow_open_files(need: u64) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    assert!(
        hard >= need,
        "this test holds {need} sockets but the hard open-file limit is {hard}: raise it (ulimit -Hn {need})"
    );
    if soft < need {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).expect("setrlimit");
    }
}

/// etcd with s-test registered.
async fn etcd_with_s_test() -> Etcd {
    let etcd = Etcd::start().await;
    etcd.put(
        "services/s-test",
        &format!(r#"{{"IP":"{ADDRESS}","port":80}}"#),
    )
    .await;
    etcd
}

/// A query for `NAME`/A over `transport` that must be answered within [`UNDER_ATTACK`].
async fn answered_at_once(dns: SocketAddr, transport: Transport) -> Vec<String> {
    let reply = tokio::time::timeout(UNDER_ATTACK, query(dns, NAME, RecordType::A, transport))
        .await
        .unwrap_or_else(|_| panic!("no {transport:?} answer within {UNDER_ATTACK:?}"));
    addresses(&reply)
}

#[tokio::test]
async fn thousands_of_idle_tcp_connections_do_not_lock_out_new_clients() {
    allow_open_files(3_500);
    let etcd = etcd_with_s_test().await;
    // 256 open files: the default cap is half of them, and evicted connections must give
    // their descriptors back before new ones are accepted.
    let server = Daemon::etcd_dns_with_files(&etcd.endpoint, &[], Some((256, 256)));
    let dns = server.dns_addr().await;
    let http = server.http_addr().await;
    wait_answers(dns, NAME, RecordType::A, 1, SETTLE).await;

    let mut idle = Vec::with_capacity(3_000);
    for _ in 0..3_000 {
        idle.push(TcpStream::connect(dns).await.expect("connect"));
    }
    for transport in [Transport::Tcp, Transport::Udp] {
        assert_eq!(
            answered_at_once(dns, transport).await,
            [ADDRESS],
            "{transport:?}"
        );
    }
    let (_, metrics) = http_get(http, "/metrics").await;
    assert_eq!(
        metric(&metrics, "etcd_dns_tcp_max_connections"),
        Some(128.0)
    );
    let open = metric(&metrics, "etcd_dns_tcp_connections").expect("open connections");
    assert!(open <= 128.0, "{open} connections open");
    let evicted = metric(
        &metrics,
        r#"etcd_dns_client_events_total{event="tcp_evicted"}"#,
    )
    .expect("evictions");
    assert!(
        evicted >= (3_000 - 128) as f64,
        "{evicted} evicted\n{metrics}"
    );
    let log = server.log();
    assert!(!log.contains("Too many open files"), "{log}");
    drop(idle);
}

#[tokio::test]
async fn the_open_file_limit_is_raised_to_the_hard_limit() {
    let etcd = Etcd::start().await;
    let server = Daemon::etcd_dns_with_files(&etcd.endpoint, &[], Some((256, 4096)));
    let http = server.http_addr().await;
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.pid()))
        .expect("read /proc/PID/limits");
    let open_files: Vec<&str> = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .expect("open-file limit line")
        .split_whitespace()
        .skip(3)
        .take(2)
        .collect();
    assert_eq!(open_files, ["4096", "4096"], "soft and hard");
    assert!(server.log().contains("raised the open-file limit"));
    let (_, metrics) = http_get(http, "/metrics").await;
    assert_eq!(
        metric(&metrics, "etcd_dns_tcp_max_connections"),
        Some(2048.0)
    );
}

/// A query with a random ID for `name`/`qtype` as bytes.
fn query_bytes(name: &str, qtype: RecordType) -> Vec<u8> {
    build_query(name, qtype).to_vec().expect("encode")
}

#[tokio::test]
async fn floods_of_bad_packets_are_counted_not_logged() {
    let etcd = etcd_with_s_test().await;
    let server = Daemon::etcd_dns(&etcd.endpoint, &strings(&["--log-level", "debug"]));
    let dns = server.dns_addr().await;
    let http = server.http_addr().await;
    wait_answers(dns, NAME, RecordType::A, 1, SETTLE).await;

    // A question cut short; an EDNS option longer than its record; a transfer we refuse.
    let cut = vec![0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 5, b'a', b'b'];
    let mut bad_option = query_bytes(NAME, RecordType::A);
    let rdlen = bad_option.len() - 2;
    bad_option[rdlen..].copy_from_slice(&[0, 4]);
    bad_option.extend_from_slice(&[0, 10, 0, 40]);
    let transfer = query_bytes("services.local.", RecordType::AXFR);
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    socket.connect(dns).await.expect("connect");
    let started = Instant::now();
    let mut buf = vec![0u8; 4096];
    for packet in [&cut, &bad_option, &transfer] {
        for _ in 0..1_000 {
            socket.send(packet).await.expect("send");
            tokio::time::timeout(UNDER_ATTACK, socket.recv(&mut buf))
                .await
                .expect("an error reply")
                .expect("recv");
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let (_, metrics) = http_get(http, "/metrics").await;
    let event = |name: &str| {
        metric(
            &metrics,
            &format!(r#"etcd_dns_client_events_total{{event="{name}"}}"#),
        )
        .unwrap_or_else(|| panic!("{name} missing from\n{metrics}"))
    };
    assert_eq!(event("malformed"), 2_000.0);
    assert_eq!(event("transfer_refused"), 1_000.0);
    // One line per second and kind at most, even at debug level.
    let log = server.log();
    let lines = log
        .lines()
        .filter(|l| l.contains("malformed query") || l.contains("zone transfer refused"))
        .count();
    let allowed = 2 * (seconds.ceil() as usize + 1);
    assert!(lines <= allowed, "{lines} lines in {seconds:.1} s:\n{log}");
    // And the server still answers.
    assert_eq!(answered_at_once(dns, Transport::Udp).await, [ADDRESS]);
}

/// What a flood of one question got back.
#[derive(Debug, Default)]
struct Flood {
    full: usize,
    truncated: usize,
    seconds: f64,
}

/// Sends `n` identical queries for `NAME`/A from `from` as fast as it can while collecting the
/// replies.
async fn flood(dns: SocketAddr, from: &str, n: usize) -> Flood {
    let socket = Arc::new(UdpSocket::bind(from).await.expect("bind"));
    socket.connect(dns).await.expect("connect");
    let started = Instant::now();
    let sender = {
        let socket = socket.clone();
        tokio::spawn(async move {
            for _ in 0..n {
                socket
                    .send(&query_bytes(NAME, RecordType::A))
                    .await
                    .expect("send");
            }
        })
    };
    let mut got = Flood::default();
    let mut buf = vec![0u8; 4096];
    while let Ok(received) = tokio::time::timeout(FLOOD_QUIET, socket.recv(&mut buf)).await {
        let len = received.expect("recv");
        let tc = buf[2] & 0x02 != 0;
        if tc {
            got.truncated += 1;
        } else {
            assert!(len > 12, "a full answer");
            got.full += 1;
        }
        got.seconds = started.elapsed().as_secs_f64();
    }
    sender.await.expect("sender");
    got
}

/// The most full answers a flood of `seconds` may get at `rate`: a second's burst, then the
/// rate.
fn most(rate: u32, seconds: f64) -> usize {
    (f64::from(rate) * (seconds + 1.0)).ceil() as usize + 1
}

#[tokio::test]
async fn a_flood_of_one_question_gets_the_rate_and_other_clients_do_not_notice() {
    let etcd = etcd_with_s_test().await;
    let rate = 50;
    let dns = DnsServer::start_with(&etcd.endpoint, |config| {
        config.rate_limit = Some(RrlConfig {
            rate,
            slip: 2,
            ..RrlConfig::default()
        });
    })
    .await;
    // Ready: asked as SRV, which does not share the flood's bucket.
    wait_answers(dns.addr, NAME, RecordType::SRV, 1, SETTLE).await;

    let sent = 2_000;
    let flood = flood(dns.addr, "127.0.0.1:0", sent).await;
    // Another network (127.0.1.0/24) asking the same question is answered in full meanwhile.
    let other = UdpSocket::bind("127.0.1.1:0")
        .await
        .expect("bind 127.0.1.1");
    other.connect(dns.addr).await.expect("connect");
    let mut buf = vec![0u8; 4096];
    for _ in 0..20 {
        let request = build_query(NAME, RecordType::A);
        other
            .send(&request.to_vec().expect("encode"))
            .await
            .expect("send");
        let len = tokio::time::timeout(UNDER_ATTACK, other.recv(&mut buf))
            .await
            .expect("the other network is answered")
            .expect("recv");
        let reply = parse_reply(&buf[..len], request.metadata.id);
        assert!(!reply.metadata.truncation, "other network truncated");
        assert_eq!(addresses(&reply), [ADDRESS]);
    }
    // TCP is never limited, from the flooding network either.
    assert_eq!(answered_at_once(dns.addr, Transport::Tcp).await, [ADDRESS]);

    assert!(
        flood.full >= rate as usize && flood.full <= most(rate, flood.seconds),
        "{flood:?}"
    );
    let (_, metrics) = http_get(dns.http, "/metrics").await;
    let event = |name: &str| {
        metric(
            &metrics,
            &format!(r#"etcd_dns_client_events_total{{event="{name}"}}"#),
        )
        .unwrap_or_else(|| panic!("{name} missing from\n{metrics}")) as usize
    };
    let (slipped, dropped) = (event("slipped"), event("rate_limited"));
    assert_eq!(flood.truncated, slipped, "{flood:?}");
    // Every second limited reply slips (counted per UDP thread, so within one per thread).
    assert!(
        slipped.abs_diff(dropped) <= 2,
        "{slipped} slipped, {dropped} dropped"
    );
    assert!(
        flood.full + slipped + dropped <= sent && flood.full + slipped + dropped > sent / 2,
        "{flood:?}, {slipped} slipped, {dropped} dropped"
    );
}

#[tokio::test]
async fn rate_limiting_is_on_by_default_when_listening_beyond_loopback() {
    let etcd = etcd_with_s_test().await;
    let exposed = Daemon::etcd_dns(&etcd.endpoint, &strings(&["--listen", "0.0.0.0:0"]));
    let dns = exposed.dns_addr().await;
    wait_answers(dns, NAME, RecordType::SRV, 1, SETTLE).await;
    exposed.wait_log("response rate limiting on", SETTLE).await;
    let flood = flood(dns, "127.0.0.1:0", 3_000).await;
    assert!(flood.full <= most(200, flood.seconds), "{flood:?}");
    assert!(flood.truncated > 0, "{flood:?}");

    let local = Daemon::etcd_dns(&etcd.endpoint, &[]);
    let dns = local.dns_addr().await;
    wait_answers(dns, NAME, RecordType::SRV, 1, SETTLE).await;
    local.wait_log("response rate limiting off", SETTLE).await;
}
