//! This crate's binaries run as child processes: `register` and `etcd-dns` started with flags,
//! signalled, their stderr collected, killed on drop.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::wait::eventually;

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

/// A binary of this crate started by a test, its stderr collected as it runs (for the log
/// lines and the exit message); killed on drop.
pub struct Daemon {
    /// The process.
    pub proc: Proc,
    /// Its stderr so far, line by line.
    log: Arc<Mutex<String>>,
    /// The thread copying stderr into `log`; it ends when the process does.
    reader: Option<std::thread::JoinHandle<()>>,
    /// When it was started, for the time to exit.
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

    /// Starts binary `name` with `args` (and the open-file limit), collecting its stderr.
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

    /// Waits until its stderr holds `text` at least `count` times; returns the log.
    pub async fn wait_log_count(&self, text: &str, count: usize, limit: Duration) -> String {
        let what = format!("{count} × {text:?} in the log");
        let (log, _) = eventually(&what, limit, || {
            let log = self.log();
            async move { (log.matches(text).count() >= count).then_some(log) }
        })
        .await;
        log
    }

    /// The address etcd-dns logged after `marker` (`listening addr=`, `over HTTP addr=`, …).
    pub async fn logged_addr(&self, marker: &str) -> SocketAddr {
        let log = self.wait_log(marker, Duration::from_secs(10)).await;
        log.split(marker)
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("no address after {marker:?} in {log}"))
    }

    /// The DNS address etcd-dns logged ("listening addr=…").
    pub async fn dns_addr(&self) -> SocketAddr {
        self.logged_addr("listening addr=").await
    }

    /// The HTTP endpoints' address etcd-dns logged.
    pub async fn http_addr(&self) -> SocketAddr {
        self.logged_addr("over HTTP addr=").await
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
