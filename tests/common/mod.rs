//! Shared integration-test harness: a real etcd on free ports in a temp dir (killed on drop),
//! an in-process etcd-dns on port 0, a small DNS client, and polling with deadlines.
#![allow(dead_code)]

pub mod cluster;
mod pki;
pub mod proxy;
pub mod registries;
pub mod upstream;
pub use pki::Pki;

use std::future::Future;
use std::io::{self, BufRead, BufReader};
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etcd_dns::dns::Listeners;
use etcd_dns::etcd::EtcdConfig;
use etcd_dns::server::{self, ServerConfig};
use etcd_dns::zone::ZoneConfig;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;

/// How long etcd may take to come up.
const ETCD_START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one DNS query may take before the test gives up on it.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
/// Poll step of [`eventually`].
const POLL_STEP: Duration = Duration::from_millis(20);
/// Poll step while etcd starts (each probe opens a client connection).
const ETCD_POLL_STEP: Duration = Duration::from_millis(50);

const INSTALL_HINT: &str = "etcd not found: install it with `apt-get install -y etcd-server` \
     (Debian) or point ETCD_BIN at an etcd binary";

/// The etcd binary: `$ETCD_BIN`, else `etcd` on PATH.
pub fn etcd_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("ETCD_BIN") {
        return PathBuf::from(bin);
    }
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/local/bin")])
    {
        let candidate = dir.join("etcd");
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("{INSTALL_HINT}");
}

/// A free TCP port on 127.0.0.1 (released before use; etcd start retries on a clash).
pub fn free_port() -> u16 {
    StdTcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port on 127.0.0.1")
}

/// A real single-member etcd, killed on drop.
pub struct Etcd {
    child: Child,
    /// The command-line it was started with, to start it again.
    args: Vec<String>,
    /// Client URL, `http://127.0.0.1:PORT` (`https://` with TLS).
    pub endpoint: String,
    dir: TempDir,
    /// The certificates, when clients must use mutual TLS.
    tls: Option<TlsFiles>,
    /// The root user's credentials, once authentication is enabled.
    root: Option<(String, String)>,
}

/// The files a client needs for mutual TLS.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The CA that signed the server's and the client's certificates.
    pub ca: PathBuf,
    /// The client certificate.
    pub cert: PathBuf,
    /// The client key.
    pub key: PathBuf,
}

impl TlsFiles {
    /// The client flags for these files.
    pub fn flags(&self) -> Vec<String> {
        let mut flags = Vec::new();
        for (flag, path) in [
            ("--etcd-ca", &self.ca),
            ("--etcd-cert", &self.cert),
            ("--etcd-key", &self.key),
        ] {
            flags.push(flag.to_string());
            flags.push(path.display().to_string());
        }
        flags
    }
}

/// Starts etcd with `args`, its output to `log`.
fn spawn_etcd(bin: &std::path::Path, args: &[String], log: std::fs::File) -> Child {
    Command::new(bin)
        .args(args)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}\n{INSTALL_HINT}", bin.display()))
}

/// Password of the `root` user of an etcd with authentication enabled.
pub const ROOT_PASSWORD: &str = "root-secret";

impl Etcd {
    /// Starts etcd and waits until it answers.
    pub async fn start() -> Self {
        Self::start_with(None).await
    }

    /// Starts etcd, serving clients over mutual TLS with `pki`'s certificates when given, and
    /// waits until it answers.
    pub async fn start_with(pki: Option<&Pki>) -> Self {
        Self::start_with_args(pki, &[]).await
    }

    /// [`Etcd::start_with`] with `extra` command-line flags for etcd.
    pub async fn start_with_args(pki: Option<&Pki>, extra: &[&str]) -> Self {
        let bin = etcd_bin();
        let mut last = String::new();
        let scheme = if pki.is_some() { "https" } else { "http" };
        for _ in 0..3 {
            let dir = tempfile::tempdir().expect("temp dir");
            let (client, peer) = (free_port(), free_port());
            let endpoint = format!("{scheme}://127.0.0.1:{client}");
            let peer_url = format!("http://127.0.0.1:{peer}");
            let log = std::fs::File::create(dir.path().join("etcd.log")).expect("etcd log");
            let mut args: Vec<String> = Vec::new();
            if let Some(pki) = pki {
                args.push(format!("--cert-file={}", pki.server_cert.display()));
                args.push(format!("--key-file={}", pki.server_key.display()));
                args.push(format!("--trusted-ca-file={}", pki.client.ca.display()));
                args.push("--client-cert-auth".into());
            }
            args.extend(extra.iter().map(|a| a.to_string()));
            args.extend([
                "--name=test".to_string(),
                format!("--data-dir={}", dir.path().join("data").display()),
                format!("--listen-client-urls={endpoint}"),
                format!("--advertise-client-urls={endpoint}"),
                format!("--listen-peer-urls={peer_url}"),
                format!("--initial-advertise-peer-urls={peer_url}"),
                format!("--initial-cluster=test={peer_url}"),
            ]);
            let child = spawn_etcd(&bin, &args, log);
            let mut etcd = Etcd {
                child,
                args,
                endpoint,
                dir,
                tls: pki.map(|pki| pki.client.clone()),
                root: None,
            };
            match etcd.wait_ready().await {
                Ok(()) => return etcd,
                Err(e) => last = e,
            }
        }
        panic!("etcd did not start: {last}");
    }

    async fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + ETCD_START_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("etcd exited with {status}: {}", self.log_tail()));
            }
            if let Ok(mut client) = self.config().connect().await {
                if client.get("health-probe", None).await.is_ok() {
                    return Ok(());
                }
            }
            tokio::time::sleep(ETCD_POLL_STEP).await;
        }
        Err(format!(
            "etcd not ready after {ETCD_START_TIMEOUT:?}: {}",
            self.log_tail()
        ))
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default();
        log.lines().rev().take(10).collect::<Vec<_>>().join("\n")
    }

    /// Connection settings for this etcd (as root once authentication is enabled).
    pub fn config(&self) -> EtcdConfig {
        let mut config = EtcdConfig::from_list(&self.endpoint);
        if let Some(tls) = &self.tls {
            config.ca = Some(tls.ca.clone());
            config.cert = Some(tls.cert.clone());
            config.key = Some(tls.key.clone());
        }
        if let Some((user, password)) = &self.root {
            config.user = Some(user.clone());
            config.password = Some(password.clone());
        }
        config
    }

    /// The client TLS flags for the binaries (none without TLS).
    pub fn tls_flags(&self) -> Vec<String> {
        self.tls.as_ref().map(TlsFiles::flags).unwrap_or_default()
    }

    /// Adds `user` with `password` and a role of the same name granted `permissions`
    /// (`Permission::read("services/").with_prefix()`, …).
    pub async fn add_user(
        &self,
        user: &str,
        password: &str,
        permissions: Vec<etcd_client::Permission>,
    ) {
        let mut client = self.client().await;
        client.role_add(user).await.expect("role add");
        for permission in permissions {
            client
                .role_grant_permission(user, permission)
                .await
                .expect("grant permission");
        }
        client
            .user_add(user, password, None)
            .await
            .expect("user add");
        client
            .user_grant_role(user, user)
            .await
            .expect("grant role");
    }

    /// Turns authentication on, with a `root` user (password [`ROOT_PASSWORD`]) that this
    /// harness uses from then on.
    pub async fn enable_auth(&mut self) {
        let mut client = self.client().await;
        client
            .user_add("root", ROOT_PASSWORD, None)
            .await
            .expect("add root");
        client
            .user_grant_role("root", "root")
            .await
            .expect("grant root");
        client.auth_enable().await.expect("auth enable");
        self.root = Some(("root".into(), ROOT_PASSWORD.into()));
    }

    /// A client connected to this etcd.
    pub async fn client(&self) -> etcd_client::Client {
        self.config().connect().await.expect("connect to test etcd")
    }

    /// Puts `key` = `value` (no lease).
    pub async fn put(&self, key: &str, value: &str) {
        self.client()
            .await
            .put(key, value, None)
            .await
            .expect("etcd put");
    }

    /// Deletes `key`.
    pub async fn delete(&self, key: &str) {
        self.client()
            .await
            .delete(key, None)
            .await
            .expect("etcd delete");
    }
}

impl Etcd {
    /// Kills etcd now (the temp dir stays until drop).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills etcd and starts it again on the same ports: with its data when `wipe` is false,
    /// empty (a wiped or replaced etcd: revisions start over) when true.
    pub async fn restart(&mut self, wipe: bool) {
        self.kill();
        if wipe {
            std::fs::remove_dir_all(self.dir.path().join("data")).expect("wipe etcd data");
        }
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.path().join("etcd.log"))
            .expect("etcd log");
        self.child = spawn_etcd(&etcd_bin(), &self.args, log);
        if let Err(error) = self.wait_ready().await {
            panic!("etcd did not restart: {error}");
        }
    }

    /// Sends etcd `signal` (a `kill` signal name: STOP freezes it, CONT thaws it).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} etcd failed");
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// etcd-dns running in-process on a free port, stopped on drop.
pub struct DnsServer {
    /// Where it answers (UDP and TCP).
    pub addr: SocketAddr,
    /// Where it serves /metrics, /health, /ready and /services.
    pub http: SocketAddr,
    shutdown: CancellationToken,
}

impl DnsServer {
    /// Starts etcd-dns for zone `services.local.` and prefix `services/` against `endpoint`.
    pub async fn start(endpoint: &str) -> Self {
        Self::start_with(endpoint, |_| {}).await
    }

    /// Starts etcd-dns with `edit` applied to the default configuration.
    pub async fn start_with(endpoint: &str, edit: impl FnOnce(&mut ServerConfig)) -> Self {
        let listen: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        Self::start_on(endpoint, listen, edit)
            .await
            .expect("bind DNS sockets")
    }

    /// Starts etcd-dns on `listen` with `edit` applied to the default configuration.
    pub async fn start_on(
        endpoint: &str,
        listen: SocketAddr,
        edit: impl FnOnce(&mut ServerConfig),
    ) -> std::io::Result<Self> {
        let mut config = ServerConfig {
            zone: ZoneConfig {
                zone: Name::from_ascii("services.local.").expect("zone"),
                prefix: "services/".into(),
                ttl: 5,
                negative_ttl: 5,
                statics: None,
            },
            registries: Vec::new(),
            etcd: EtcdConfig::from_list(endpoint),
            catalog: Default::default(),
            max_stale: None,
            rate_limit: None,
            tcp: Default::default(),
        };
        edit(&mut config);
        let loopback_any_port: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let listeners = Listeners::bind(&[listen], 2)?.with_http(loopback_any_port)?;
        let addr = listeners.local_addrs()[0];
        let http = listeners.http_addr().expect("HTTP listener");
        let shutdown = CancellationToken::new();
        let running = server::start(config, listeners, shutdown.clone()).expect("start etcd-dns");
        tokio::spawn(running.wait());
        Ok(Self {
            addr,
            http,
            shutdown,
        })
    }

    /// Waits until names under the zone stop answering SERVFAIL (the first read is done).
    pub async fn wait_ready(&self) {
        eventually("server ready", Duration::from_secs(10), || async {
            let r = query(
                self.addr,
                "services.local.",
                RecordType::SOA,
                Transport::Udp,
            )
            .await;
            (r.metadata.response_code == ResponseCode::NoError).then_some(())
        })
        .await;
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// UDP or TCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Datagram.
    Udp,
    /// Length-prefixed stream.
    Tcp,
}

impl Transport {
    /// Both transports, for behaviour that must hold over each.
    pub const BOTH: [Transport; 2] = [Transport::Udp, Transport::Tcp];
}

/// A random message ID, so that a reply to some other query cannot pass the ID check.
pub fn rand_id() -> u16 {
    rand::random()
}

/// Builds a query message for `name`/`qtype` with a random ID, RD and EDNS (payload 1232).
pub fn build_query(name: &str, qtype: RecordType) -> Message {
    let mut message = Message::new(rand_id(), MessageType::Query, OpCode::Query);
    // As dig and glibc do: forwarded names need RD.
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(Name::from_ascii(name).expect("name"), qtype));
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    message.set_edns(edns);
    message
}

/// Sends one datagram from a socket connected to `addr` (only it can reply); returns the reply.
async fn udp_exchange(addr: SocketAddr, bytes: &[u8]) -> io::Result<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").await?;
    socket.connect(addr).await?;
    socket.send(bytes).await?;
    let mut buf = vec![0u8; 65535];
    let n = socket.recv(&mut buf).await?;
    buf.truncate(n);
    Ok(buf)
}

/// Sends one length-prefixed message on a new connection to `addr` and returns the first reply.
async fn tcp_exchange(addr: SocketAddr, bytes: &[u8]) -> io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(addr).await?;
    let len = u16::try_from(bytes.len()).expect("a TCP DNS message fits 64 KiB");
    stream.write_all(&len.to_be_bytes()).await?;
    stream.write_all(bytes).await?;
    let len = stream.read_u16().await? as usize;
    let mut buf = vec![0u8; len];
    stream.read_exact(&mut buf).await?;
    Ok(buf)
}

/// Sends raw bytes over `transport`: `None` when no reply arrives within `limit`.
async fn exchange_within(
    addr: SocketAddr,
    bytes: &[u8],
    transport: Transport,
    limit: Duration,
) -> Option<io::Result<Vec<u8>>> {
    let work = async {
        match transport {
            Transport::Udp => udp_exchange(addr, bytes).await,
            Transport::Tcp => tcp_exchange(addr, bytes).await,
        }
    };
    tokio::time::timeout(limit, work).await.ok()
}

/// Sends raw bytes and returns the raw reply; check its ID with [`parse_reply`].
pub async fn exchange(addr: SocketAddr, bytes: &[u8], transport: Transport) -> Vec<u8> {
    exchange_within(addr, bytes, transport, QUERY_TIMEOUT)
        .await
        .unwrap_or_else(|| {
            panic!("no DNS answer from {addr} over {transport:?} in {QUERY_TIMEOUT:?}")
        })
        .unwrap_or_else(|e| panic!("DNS exchange with {addr} over {transport:?} failed: {e}"))
}

/// Asserts that the raw `reply` carries the query ID `id`, then parses it.
pub fn parse_reply(reply: &[u8], id: u16) -> Message {
    assert!(
        reply.len() >= 12,
        "a reply of {} bytes has no DNS header",
        reply.len()
    );
    let got = u16::from_be_bytes([reply[0], reply[1]]);
    assert_eq!(
        got, id,
        "reply ID {got:#06x} does not match query ID {id:#06x}"
    );
    Message::from_vec(reply).expect("parse answer")
}

/// Sends `request` over `transport` and parses the reply, checking that its ID matches.
pub async fn exchange_message(
    addr: SocketAddr,
    request: &Message,
    transport: Transport,
) -> Message {
    let bytes = request.to_vec().expect("encode query");
    parse_reply(
        &exchange(addr, &bytes, transport).await,
        request.metadata.id,
    )
}

/// Sends one query over UDP and parses the answer (ID checked); `None` if none within `limit`.
pub async fn try_query(
    addr: SocketAddr,
    name: &str,
    qtype: RecordType,
    limit: Duration,
) -> Option<Message> {
    let request = build_query(name, qtype);
    let bytes = request.to_vec().expect("encode query");
    let reply = exchange_within(addr, &bytes, Transport::Udp, limit)
        .await?
        .ok()?;
    Some(parse_reply(&reply, request.metadata.id))
}

/// Sends one query over `transport` and parses the answer (ID checked).
pub async fn query(
    addr: SocketAddr,
    name: &str,
    qtype: RecordType,
    transport: Transport,
) -> Message {
    exchange_message(addr, &build_query(name, qtype), transport).await
}

/// `text` of every record in `records` for which it gives one, sorted.
fn sorted_text<'a>(
    records: &'a [Record],
    text: impl Fn(&'a Record) -> Option<String>,
) -> Vec<String> {
    let mut out: Vec<String> = records.iter().filter_map(text).collect();
    out.sort();
    out
}

/// The addresses (A/AAAA) in the answer section, as text, sorted.
pub fn addresses(message: &Message) -> Vec<String> {
    sorted_text(&message.answers, |r| match &r.data {
        RData::A(a) => Some(a.0.to_string()),
        RData::AAAA(a) => Some(a.0.to_string()),
        _ => None,
    })
}

/// The SRV records in the answer section as "priority weight port target", sorted.
pub fn srv_records(message: &Message) -> Vec<String> {
    sorted_text(&message.answers, |r| match &r.data {
        RData::SRV(s) => Some(format!(
            "{} {} {} {}",
            s.priority, s.weight, s.port, s.target
        )),
        _ => None,
    })
}

/// The TXT records in the answer section, as text, sorted.
pub fn txt_strings(message: &Message) -> Vec<String> {
    sorted_text(&message.answers, |r| match &r.data {
        RData::TXT(_) => Some(r.data.to_string()),
        _ => None,
    })
}

/// The PTR targets in the answer section, sorted.
pub fn ptr_targets(message: &Message) -> Vec<String> {
    sorted_text(&message.answers, |r| match &r.data {
        RData::PTR(p) => Some(p.0.to_string()),
        _ => None,
    })
}

/// The addresses (A/AAAA) in the additional section as "name address", sorted.
pub fn additional_addresses(message: &Message) -> Vec<String> {
    sorted_text(&message.additionals, |r| match &r.data {
        RData::A(a) => Some(format!("{} {}", r.name, a.0)),
        RData::AAAA(a) => Some(format!("{} {}", r.name, a.0)),
        _ => None,
    })
}

/// The A addresses `name` answers over `transport`, sorted.
pub async fn lookup_a(addr: SocketAddr, name: &str, transport: Transport) -> Vec<String> {
    addresses(&query(addr, name, RecordType::A, transport).await)
}

/// The AAAA addresses `name` answers over `transport`, sorted.
pub async fn lookup_aaaa(addr: SocketAddr, name: &str, transport: Transport) -> Vec<String> {
    addresses(&query(addr, name, RecordType::AAAA, transport).await)
}

/// The SRV records `name` answers over `transport`, as "priority weight port target", sorted.
pub async fn lookup_srv(addr: SocketAddr, name: &str, transport: Transport) -> Vec<String> {
    srv_records(&query(addr, name, RecordType::SRV, transport).await)
}

/// The TXT records `name` answers over `transport`, sorted.
pub async fn lookup_txt(addr: SocketAddr, name: &str, transport: Transport) -> Vec<String> {
    txt_strings(&query(addr, name, RecordType::TXT, transport).await)
}

/// The PTR targets `name` answers over `transport`, sorted.
pub async fn lookup_ptr(addr: SocketAddr, name: &str, transport: Transport) -> Vec<String> {
    ptr_targets(&query(addr, name, RecordType::PTR, transport).await)
}

/// The SOA in the authority section, if any.
pub fn authority_soa(message: &Message) -> Option<&Record> {
    message
        .authorities
        .iter()
        .find(|r| r.record_type() == RecordType::SOA)
}

/// Polls `check` every 20 ms until `Some`, returned with the time taken; panics after `limit`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> (T, Duration)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return (value, start.elapsed());
        }
        if start.elapsed() > limit {
            panic!("{what}: not within {limit:?}");
        }
        tokio::time::sleep(POLL_STEP).await;
    }
}

/// Waits until `name` answers `rcode` (with answers if NOERROR) over UDP; returns it and the time.
pub async fn wait_rcode(
    addr: SocketAddr,
    name: &str,
    qtype: RecordType,
    rcode: ResponseCode,
    limit: Duration,
) -> (Message, Duration) {
    eventually(&format!("{name} {qtype} → {rcode}"), limit, || async {
        let m = query(addr, name, qtype, Transport::Udp).await;
        (m.metadata.response_code == rcode
            && (rcode != ResponseCode::NoError || !m.answers.is_empty()))
        .then_some(m)
    })
    .await
}

/// Waits until `name`/`qtype` answers exactly `count` records (over UDP).
pub async fn wait_answers(
    addr: SocketAddr,
    name: &str,
    qtype: RecordType,
    count: usize,
    limit: Duration,
) -> Message {
    let what = format!("{count} {qtype} records at {name}");
    let (message, _) = eventually(&what, limit, || async {
        let m = query(addr, name, qtype, Transport::Udp).await;
        (m.answers.len() == count).then_some(m)
    })
    .await;
    message
}

/// A fresh etcd and an etcd-dns that has read it (the start of most tests).
pub async fn etcd_and_dns() -> (Etcd, DnsServer) {
    let etcd = Etcd::start().await;
    let dns = DnsServer::start(&etcd.endpoint).await;
    dns.wait_ready().await;
    (etcd, dns)
}

/// Path of a binary of this crate.
pub fn bin(name: &str) -> PathBuf {
    match name {
        "register" => PathBuf::from(env!("CARGO_BIN_EXE_register")),
        "etcd-dns" => PathBuf::from(env!("CARGO_BIN_EXE_etcd-dns")),
        other => panic!("unknown binary {other}"),
    }
}

/// A child process killed on drop.
pub struct Proc(pub Child);

impl Proc {
    /// Sends `signal` (a `kill` signal name such as "TERM") to the process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.0.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits for exit (polling, with a deadline) and returns the exit code.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let (status, _) = eventually("process exit", limit, || {
            let status = self.0.try_wait().expect("try_wait");
            async move { status }
        })
        .await;
        status.code()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `register` with `args` against `endpoint`.
pub fn register(endpoint: &str, args: &[&str]) -> Proc {
    let child = Command::new(bin("register"))
        .args(args)
        .arg("--etcd")
        .arg(endpoint)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start register");
    Proc(child)
}

/// The value of the metric line starting with `series` (name and labels) in a /metrics body.
pub fn metric(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// GETs `path` from an HTTP server: the status code and the body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let work = async {
        let mut stream = TcpStream::connect(addr).await?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&response).into_owned())
    };
    let response = tokio::time::timeout(QUERY_TIMEOUT, work)
        .await
        .unwrap_or_else(|_| panic!("no HTTP answer from {addr}{path} in {QUERY_TIMEOUT:?}"))
        .unwrap_or_else(|e| panic!("HTTP GET {addr}{path} failed: {e}"));
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP header end in {response:?}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {head:?}"));
    (status, body.to_string())
}

/// A binary of this crate started by a test, its stderr collected as it runs (for the log
/// lines and the exit message); killed on drop.
pub struct Daemon {
    /// The process.
    pub proc: Proc,
    log: Arc<Mutex<String>>,
    /// The thread copying stderr into `log`; it ends when the process does.
    reader: Option<std::thread::JoinHandle<()>>,
    started: Instant,
    /// An empty zone directory for etcd-dns (the repository's `zones/` would be loaded).
    _zones: TempDir,
}

impl Daemon {
    /// Starts `etcd-dns` on a free port against `endpoint`, no static zones, no forwarding.
    pub fn etcd_dns(endpoint: &str, args: &[String]) -> Self {
        Self::etcd_dns_with_files(endpoint, args, None)
    }

    /// [`Daemon::etcd_dns`] with its open-file limit set to `(soft, hard)` before it starts.
    pub fn etcd_dns_with_files(
        endpoint: &str,
        args: &[String],
        open_files: Option<(u64, u64)>,
    ) -> Self {
        let zones = tempfile::tempdir().expect("temp dir");
        let mut all: Vec<String> = [
            "--listen",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--no-forward",
            "--zones",
        ]
        .map(String::from)
        .into();
        all.push(zones.path().display().to_string());
        all.extend(["--etcd".to_string(), endpoint.to_string()]);
        all.extend(args.iter().cloned());
        Self::start("etcd-dns", &all, zones, open_files)
    }

    /// Starts `register` against `endpoint` with `args`.
    pub fn register(endpoint: &str, args: &[String]) -> Self {
        let mut all = vec!["--etcd".to_string(), endpoint.to_string()];
        all.extend(args.iter().cloned());
        Self::start(
            "register",
            &all,
            tempfile::tempdir().expect("temp dir"),
            None,
        )
    }

    fn start(name: &str, args: &[String], zones: TempDir, open_files: Option<(u64, u64)>) -> Self {
        let mut command = Command::new(bin(name));
        if let Some((soft, hard)) = open_files {
            use nix::sys::resource::{setrlimit, Resource};
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is async-signal-safe and touches only the child's limits.
            unsafe {
                command.pre_exec(move || Ok(setrlimit(Resource::RLIMIT_NOFILE, soft, hard)?));
            }
        }
        let mut child = command
            .args(args)
            // A backtrace would bury the message under test.
            .env("RUST_BACKTRACE", "0")
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("stderr piped");
        let sink = log.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut log = sink.lock().expect("log");
                log.push_str(&line);
                log.push('\n');
            }
        });
        Self {
            proc: Proc(child),
            log,
            reader: Some(reader),
            started: Instant::now(),
            _zones: zones,
        }
    }

    /// Everything it wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().expect("log").clone()
    }

    /// Waits until its stderr holds `text`; returns the log.
    pub async fn wait_log(&self, text: &str, limit: Duration) -> String {
        let what = format!("{text:?} in the log");
        let (log, _) = eventually(&what, limit, || {
            let log = self.log();
            async move { log.contains(text).then_some(log) }
        })
        .await;
        log
    }

    /// The DNS address etcd-dns logged ("listening addr=…").
    pub async fn dns_addr(&self) -> SocketAddr {
        let log = self
            .wait_log("listening addr=", Duration::from_secs(10))
            .await;
        log.split("listening addr=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("no address in {log}"))
    }

    /// The HTTP endpoints' address etcd-dns logged.
    pub async fn http_addr(&self) -> SocketAddr {
        let marker = "over HTTP addr=";
        let log = self.wait_log(marker, Duration::from_secs(10)).await;
        log.split(marker)
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("no HTTP address in {log}"))
    }

    /// Its process ID.
    pub fn pid(&self) -> u32 {
        self.proc.0.id()
    }

    /// Waits for the exit; returns the exit code, the time since the start and the log.
    pub async fn wait_exit(&mut self, limit: Duration) -> (Option<i32>, Duration, String) {
        let code = self.proc.wait_exit(limit).await;
        let took = self.started.elapsed();
        if let Some(reader) = self.reader.take() {
            // The pipe is closed: the thread has at most the last lines left to copy.
            reader.join().expect("stderr reader");
        }
        (code, took, self.log())
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.proc.0.try_wait(), Ok(None))
    }
}
