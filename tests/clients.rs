//! Real client libraries resolve names from etcd-dns, against a real etcd: `getaddrinfo` of
//! glibc and of musl (tests/clients/resolve.c, built with `cc` and `musl-gcc -static`) find one
//! registered address, an AAAA-only one, part of a 10,000-instance service (a UDP answer cut
//! with TC, which glibc takes up over TCP), exactly 8 of it under `--max-answers 8`, and
//! EAI_NONAME for a name that does not exist.
//!
//! Both libraries read /etc/resolv.conf and ask port 53, so each test runs etcd-dns
//! in-process on port 53 of a random loopback address 127.X.Y.Z, and each client in a mount
//! namespace of its own (`unshare -m`, as root) where /etc/resolv.conf names that address and
//! /etc/nsswitch.conf (`hosts: files dns`) and /etc/hosts leave no other source of answers.

mod common;

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{eventually, http_get, metric, DnsServer, Etcd};
use etcd_dns::server::ServerConfig;
use tempfile::TempDir;

/// Instances of `services/big`.
const BIG: u32 = 10_000;
/// How long one client run may take: far more than two rounds of `timeout:2 attempts:2`.
const CLIENT_LIMIT: Duration = Duration::from_secs(60);
/// Loopback addresses tried for port 53 before giving up.
const BIND_ATTEMPTS: usize = 20;
/// The panic message when musl's compiler is missing.
const MUSL_HINT: &str = "musl-gcc not found: apt-get install -y musl-tools";
/// Run by `sh` in the client's mount namespace: the test's resolver files over the host's,
/// nscd (if any) out of the way, then the client. Arguments: resolv.conf, nsswitch.conf,
/// hosts, client, name.
const SANDBOX: &str = r#"set -e
mount --bind "$1" /etc/resolv.conf
mount --bind "$2" /etc/nsswitch.conf
mount --bind "$3" /etc/hosts
if [ -d /run/nscd ]; then mount -t tmpfs tmpfs /run/nscd; fi
exec "$4" "$5""#;

/// The resolve program built against each C library, in a temp dir.
struct Clients {
    /// (libc name, binary).
    builds: Vec<(&'static str, PathBuf)>,
    /// Holds the binaries; removed on drop.
    _dir: TempDir,
}

impl Clients {
    /// Builds tests/clients/resolve.c with `cc` (glibc) and `musl-gcc -static` (musl).
    fn build() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/resolve.c");
        let mut builds = Vec::new();
        for (libc, compiler, flags) in
            [("glibc", "cc", &[][..]), ("musl", "musl-gcc", &["-static"])]
        {
            let out = dir.path().join(format!("resolve-{libc}"));
            let output = std::process::Command::new(compiler)
                .args(flags)
                .args(["-O2", "-Wall", "-Wextra", "-Werror", "-o"])
                .arg(&out)
                .arg(&source)
                .output()
                .unwrap_or_else(|e| match (compiler, e.kind()) {
                    ("musl-gcc", std::io::ErrorKind::NotFound) => panic!("{MUSL_HINT}"),
                    _ => panic!("cannot run {compiler}: {e}"),
                });
            assert!(
                output.status.success(),
                "{compiler} {}: {}",
                source.display(),
                String::from_utf8_lossy(&output.stderr)
            );
            builds.push((libc, out));
        }
        Self { builds, _dir: dir }
    }
}

/// The resolver files a client sees in its mount namespace, in a temp dir.
struct Sandbox {
    /// resolv.conf, nsswitch.conf and hosts.
    files: [PathBuf; 3],
    /// Holds the files; removed on drop.
    _dir: TempDir,
}

impl Sandbox {
    /// Files that send every lookup to `nameserver` (port 53) and nowhere else.
    fn new(nameserver: IpAddr) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let contents = [
            (
                "resolv.conf",
                format!("nameserver {nameserver}\noptions attempts:2 timeout:2\n"),
            ),
            // No mDNS, no systemd-resolved, no myhostname: files (below), then DNS.
            ("nsswitch.conf", "hosts: files dns\n".to_string()),
            ("hosts", "127.0.0.1 localhost\n::1 localhost\n".to_string()),
        ];
        let files = contents.map(|(name, text)| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("write resolver file");
            path
        });
        Self { files, _dir: dir }
    }
}

/// What one client run printed.
#[derive(Debug)]
struct Outcome {
    /// Its exit code: 0 found, 2 getaddrinfo failed.
    code: i32,
    /// The addresses it printed, in its order.
    addresses: Vec<String>,
    /// Its stderr (the getaddrinfo error when `code` is 2).
    stderr: String,
    /// How long it took.
    took: Duration,
}

/// Runs `client NAME` in a mount namespace where the resolver files are `sandbox`'s.
async fn resolve(client: &Path, sandbox: &Sandbox, name: &str) -> Outcome {
    let start = Instant::now();
    let mut command = tokio::process::Command::new("unshare");
    command
        .args(["-m", "sh", "-c", SANDBOX, "sh"])
        .args(&sandbox.files)
        .arg(client)
        .arg(name)
        // Variables that would add search domains, options or aliases of their own.
        .env_remove("LOCALDOMAIN")
        .env_remove("RES_OPTIONS")
        .env_remove("HOSTALIASES")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let run = tokio::time::timeout(CLIENT_LIMIT, command.output()).await;
    let output = run
        .unwrap_or_else(|_| {
            panic!(
                "{} {name}: not done within {CLIENT_LIMIT:?}",
                client.display()
            )
        })
        .unwrap_or_else(|e| panic!("cannot run unshare (util-linux): {e}"));
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let code = output.status.code();
    // 0 and 2 are the client's own answers; anything else means it never ran as intended.
    assert!(
        matches!(code, Some(0 | 2)),
        "{} {name} did not run in a mount namespace of its own ({:?}): `unshare -m` and \
         `mount --bind` need root (CAP_SYS_ADMIN)\n{stderr}",
        client.display(),
        output.status
    );
    Outcome {
        code: code.unwrap_or_default(),
        addresses: String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_string)
            .collect(),
        stderr,
        took: start.elapsed(),
    }
}

/// etcd-dns on port 53 of a random 127.X.Y.Z (X, Y, Z in 1..=254: not 127.0.0.x, where a
/// host's own stub resolver may listen), another address when that one cannot be bound;
/// waits until it has read etcd.
async fn dns_on_53(endpoint: &str, edit: impl Fn(&mut ServerConfig)) -> DnsServer {
    let mut errors = Vec::new();
    for _ in 0..BIND_ATTEMPTS {
        let ip = Ipv4Addr::new(
            127,
            rand::random_range(1..=254),
            rand::random_range(1..=254),
            rand::random_range(1..=254),
        );
        let listen = SocketAddr::new(ip.into(), 53);
        match DnsServer::start_on(endpoint, listen, &edit).await {
            Ok(dns) => {
                dns.wait_ready().await;
                return dns;
            }
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                panic!("cannot bind {listen}: {e}: port 53 needs root (CAP_NET_BIND_SERVICE)")
            }
            Err(e) => errors.push(format!("{listen}: {e}")),
        }
    }
    panic!("no loopback address to bind port 53 on: {errors:?}");
}

/// Puts `count` instances `services/<service>/i<n>` = `value(n)`.
async fn put_many(etcd: &Etcd, service: &str, count: u32, value: impl Fn(u32) -> String) {
    etcd.put_many(count, |n| (format!("services/{service}/i{n}"), value(n)))
        .await;
}

/// The address of instance `n` of the big service.
fn address(n: u32) -> String {
    format!("10.{}.{}.{}", n >> 16 & 0xff, n >> 8 & 0xff, n & 0xff)
}

/// A fresh etcd holding the 10,000-instance service `big` (port 8080) and an etcd-dns on port
/// 53 that has loaded every instance, with `max_answers`.
async fn big_service(max_answers: Option<u16>) -> (Etcd, DnsServer) {
    let etcd = Etcd::start().await;
    put_many(&etcd, "big", BIG, |n| {
        format!(r#"{{"IP":"{}","port":8080}}"#, address(n))
    })
    .await;
    let dns = dns_on_53(&etcd.endpoint, |c| c.max_answers = max_answers).await;
    eventually(
        "10,000 instances loaded",
        Duration::from_secs(30),
        || async {
            let (_, metrics) = http_get(dns.http, "/metrics").await;
            (metric(&metrics, "etcd_dns_instances") == Some(f64::from(BIG))).then_some(())
        },
    )
    .await;
    (etcd, dns)
}

/// A counter of etcd-dns's /metrics (0 before its first count).
async fn count(dns: &DnsServer, series: &str) -> f64 {
    let (_, metrics) = http_get(dns.http, "/metrics").await;
    metric(&metrics, series).unwrap_or(0.0)
}

/// A queries answered with NOERROR, over UDP and TCP alike.
const A_QUERIES: &str = r#"etcd_dns_queries_total{path="live",qtype="A",rcode="NOERROR"}"#;
/// Answers cut to what fits the transport: over UDP with TC, over TCP to 65,535 bytes.
const SIZE_CUTS: &str = r#"etcd_dns_partial_answers_total{reason="size"}"#;

/// Runs `client NAME`; returns what it printed and how many A queries and size cuts it caused.
async fn resolve_counted(
    dns: &DnsServer,
    client: &Path,
    sandbox: &Sandbox,
    name: &str,
) -> (Outcome, f64, f64) {
    let (queries, cuts) = (count(dns, A_QUERIES).await, count(dns, SIZE_CUTS).await);
    let got = resolve(client, sandbox, name).await;
    let queries = count(dns, A_QUERIES).await - queries;
    let cuts = count(dns, SIZE_CUTS).await - cuts;
    (got, queries, cuts)
}

/// Resolves `name` with each libc; asserts that each finds exactly `want`.
async fn each_finds(clients: &Clients, sandbox: &Sandbox, name: &str, want: &[&str]) {
    for (libc, client) in &clients.builds {
        let got = resolve(client, sandbox, name).await;
        assert_eq!(got.code, 0, "{libc} {name}: {got:?}");
        assert_eq!(got.addresses, want, "{libc} {name}: {got:?}");
    }
}

#[tokio::test]
async fn both_libcs_resolve_one_registered_address() {
    let clients = Clients::build();
    let etcd = Etcd::start().await;
    etcd.put("services/s-test", r#"{"IP":"192.168.1.26"}"#)
        .await;
    let dns = dns_on_53(&etcd.endpoint, |_| {}).await;
    let sandbox = Sandbox::new(dns.addr.ip());
    each_finds(
        &clients,
        &sandbox,
        "s-test.services.local",
        &["192.168.1.26"],
    )
    .await;
}

#[tokio::test]
async fn both_libcs_resolve_an_aaaa_only_instance() {
    let clients = Clients::build();
    let etcd = Etcd::start().await;
    etcd.put("services/v6", r#"{"IP":"2001:db8::7"}"#).await;
    let dns = dns_on_53(&etcd.endpoint, |_| {}).await;
    let sandbox = Sandbox::new(dns.addr.ip());
    each_finds(&clients, &sandbox, "v6.services.local", &["2001:db8::7"]).await;
}

/// NXDOMAIN is EAI_NONAME for both: no such name, not a failure to ask (EAI_AGAIN).
#[tokio::test]
async fn both_libcs_report_a_missing_name_as_eai_noname() {
    let clients = Clients::build();
    let etcd = Etcd::start().await;
    etcd.put("services/s-test", r#"{"IP":"192.168.1.26"}"#)
        .await;
    let dns = dns_on_53(&etcd.endpoint, |_| {}).await;
    let sandbox = Sandbox::new(dns.addr.ip());
    for (libc, client) in &clients.builds {
        let got = resolve(client, &sandbox, "nosuch.services.local").await;
        assert_eq!(got.code, 2, "{libc}: {got:?}");
        assert!(got.stderr.contains("(EAI_NONAME)"), "{libc}: {got:?}");
        assert!(got.addresses.is_empty(), "{libc}: {got:?}");
    }
}

/// 10,000 instances with the defaults: neither libc sends EDNS, so the UDP answer is the records
/// that fit 512 bytes (29), TC set. glibc takes TC up and asks again over TCP, where some 4,000
/// records fit 65,535 bytes (and asks that way several times over: getaddrinfo repeats the
/// whole lookup each time it grows its buffer for that many addresses). musl before 1.2.4
/// (Debian 12 has 1.2.3) has no TCP and keeps the truncated answer; 1.2.4 and later retry
/// over TCP. Either keeps at most 48 addresses (its MAXADDRS). Every client finds some of the
/// service's addresses, and only those.
#[tokio::test]
async fn both_libcs_resolve_a_ten_thousand_instance_service() {
    let clients = Clients::build();
    let (_etcd, dns) = big_service(None).await;
    let sandbox = Sandbox::new(dns.addr.ip());
    let all: BTreeSet<String> = (0..BIG).map(address).collect();
    for (libc, client) in &clients.builds {
        let (got, queries, cuts) =
            resolve_counted(&dns, client, &sandbox, "big.services.local").await;
        assert_eq!(got.code, 0, "{libc}: {got:?}");
        assert!(!got.addresses.is_empty(), "{libc}: no address");
        for address in &got.addresses {
            assert!(all.contains(address), "{libc}: {address} is no instance");
        }
        let n = got.addresses.len();
        // A TCP answer is cut too (to 65,535 bytes): a UDP cut alone means no TCP retry.
        let tcp = if cuts >= 2.0 {
            "UDP (TC), then TCP"
        } else {
            "UDP (TC) only"
        };
        eprintln!(
            "{libc}: {n} addresses of {BIG} in {:?}; {queries} A queries, {cuts} cut answers: {tcp}",
            got.took
        );
        match *libc {
            // More than any UDP answer holds (76 records in 1,232 bytes): glibc went to TCP.
            "glibc" => assert!(
                n > 76 && cuts >= 2.0,
                "glibc retries over TCP: {n} addresses"
            ),
            _ => assert!(n <= 48, "musl keeps at most 48 addresses: {n}"),
        }
    }
}

/// `--max-answers 8`: 8 records fit any UDP answer, so nothing is cut for size (no TC) and
/// each libc keeps the 8 addresses of its one answer: exactly 8, all instances of the service.
#[tokio::test]
async fn both_libcs_get_eight_addresses_with_max_answers_8() {
    let clients = Clients::build();
    let (_etcd, dns) = big_service(Some(8)).await;
    let sandbox = Sandbox::new(dns.addr.ip());
    let all: BTreeSet<String> = (0..BIG).map(address).collect();
    for (libc, client) in &clients.builds {
        let (got, queries, cuts) =
            resolve_counted(&dns, client, &sandbox, "big.services.local").await;
        assert_eq!(got.code, 0, "{libc}: {got:?}");
        eprintln!(
            "{libc} with --max-answers 8: {} addresses in {:?}; {queries} A queries",
            got.addresses.len(),
            got.took
        );
        assert_eq!(got.addresses.len(), 8, "{libc}: {got:?}");
        for address in &got.addresses {
            assert!(all.contains(address), "{libc}: {address} is no instance");
        }
        assert_eq!(cuts, 0.0, "{libc}: no answer cut for size, no TC");
    }
}
