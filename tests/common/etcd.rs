//! A real single-member etcd on free loopback ports in a temp dir, killed on drop; it fails
//! loudly with the install command when the etcd binary is missing.

use std::net::TcpListener as StdTcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use etcd_dns::etcd::EtcdConfig;
use tempfile::TempDir;

use super::pki::{Pki, TlsFiles};

/// How long etcd may take to come up.
const ETCD_START_TIMEOUT: Duration = Duration::from_secs(30);
/// Poll step while etcd starts (each probe opens a client connection).
const ETCD_POLL_STEP: Duration = Duration::from_millis(50);

/// The panic message when there is no etcd binary to run.
pub const INSTALL_HINT: &str = "etcd not found: install it with `apt-get install -y etcd-server` \
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
    /// The etcd process.
    child: Child,
    /// The command-line it was started with, to start it again.
    args: Vec<String>,
    /// Client URL, `http://127.0.0.1:PORT` (`https://` with TLS).
    pub endpoint: String,
    /// Its data directory and log (`etcd.log`), removed on drop.
    dir: TempDir,
    /// The certificates, when clients must use mutual TLS.
    tls: Option<TlsFiles>,
    /// The root user's credentials, once authentication is enabled.
    root: Option<(String, String)>,
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

    /// Polls until etcd answers a read; the log's tail if it exits or times out first.
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

    /// The last ten lines of etcd's log, newest first.
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

    /// Puts `count` keys, `kv(n)` giving key and value of the n-th, 128 to a transaction (etcd's
    /// limit), as a deployment tool would.
    pub async fn put_many(&self, count: u32, kv: impl Fn(u32) -> (String, String)) {
        let mut client = self.client().await;
        for chunk in (0..count).collect::<Vec<_>>().chunks(128) {
            let ops: Vec<etcd_client::TxnOp> = chunk
                .iter()
                .map(|n| {
                    let (key, value) = kv(*n);
                    etcd_client::TxnOp::put(key, value, None)
                })
                .collect();
            client
                .txn(etcd_client::Txn::new().and_then(ops))
                .await
                .expect("etcd txn");
        }
    }

    /// Deletes `key`.
    pub async fn delete(&self, key: &str) {
        self.client()
            .await
            .delete(key, None)
            .await
            .expect("etcd delete");
    }

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
