//! Health checks that gate a registration: an HTTP GET or a shell command, run every interval
//! by a task of their own; the [`Gate`] tells the registration whether the instance may be
//! registered now. Only changes (passing → failing, failing → passing) are logged.

use std::fmt;
use std::io;
use std::process::{ExitStatus, Stdio};
use std::str::FromStr;
use std::time::Duration;

use hyper::header::{self, HeaderValue};
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use thiserror::Error;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Default time between two checks (`--check-interval`).
pub const DEFAULT_CHECK_INTERVAL: &str = "5s";
/// Shortest `--check-interval` accepted: more often only burns CPU (a command check starts a
/// shell each time) without withdrawing a failed instance noticeably sooner.
pub const MIN_CHECK_INTERVAL: Duration = Duration::from_millis(100);
/// Longest one check may take; its timeout is the interval, at most this. A check that cannot
/// answer within it counts as failing (a command is killed with its whole process group).
pub const MAX_CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// `User-Agent` of the HTTP check, so the checked service can tell it from real traffic.
const USER_AGENT: &str = concat!("etcd-dns-register/", env!("CARGO_PKG_VERSION"));
/// How much of a failed command's stderr the failure log line quotes.
const STDERR_QUOTE_CHARS: usize = 200;

/// The timeout of one check run every `interval`.
pub fn check_timeout(interval: Duration) -> Duration {
    interval.min(MAX_CHECK_TIMEOUT)
}

/// Parses a `--check-interval` such as `500ms`, `5s`, `1m` or `1m30s` (humantime syntax).
pub fn parse_interval(text: &str) -> Result<Duration, InvalidCheck> {
    let interval =
        humantime::parse_duration(text).map_err(|e| InvalidCheck::Interval(e.to_string()))?;
    if interval < MIN_CHECK_INTERVAL {
        return Err(InvalidCheck::Interval(format!(
            "shorter than the minimum, {}",
            humantime::format_duration(MIN_CHECK_INTERVAL)
        )));
    }
    Ok(interval)
}

/// Parses a `--check-cmd`: any non-blank shell command.
pub fn parse_command(text: &str) -> Result<String, InvalidCheck> {
    if text.trim().is_empty() {
        return Err(InvalidCheck::EmptyCommand);
    }
    Ok(text.to_string())
}

/// A check flag that cannot work, found before anything is registered.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum InvalidCheck {
    /// The `--check-http` URL is not a plain `http://HOST[:PORT][/PATH]`.
    #[error("{0} (expected http://HOST[:PORT][/PATH])")]
    Url(String),
    /// The `--check-interval` is not a duration such as `5s`, or too short.
    #[error("{0} (expected a duration such as 500ms, 5s or 1m)")]
    Interval(String),
    /// The `--check-cmd` is blank.
    #[error("the command is empty")]
    EmptyCommand,
}

/// Why one check failed.
#[derive(Debug, Error)]
pub enum Failure {
    /// No result within the timeout.
    #[error("no result within {}", humantime::format_duration(*.0))]
    TimedOut(Duration),
    /// The TCP connection to the checked URL failed.
    #[error("cannot connect: {0}")]
    Connect(io::Error),
    /// The HTTP exchange failed.
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    /// The server closed the connection without answering.
    #[error("connection closed before a response")]
    Closed,
    /// The answer's status is not 2xx.
    #[error("HTTP status {0}")]
    Status(u16),
    /// `sh` could not be started or waited for.
    #[error("cannot run sh: {0}")]
    Spawn(io::Error),
    /// The command exited non-zero (or was killed).
    #[error("{status}{}", quote(stderr))]
    Exit {
        /// Its exit status.
        status: ExitStatus,
        /// The last line of its stderr, shortened.
        stderr: String,
    },
}

fn quote(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!(": {stderr}")
    }
}

/// What decides whether the instance is healthy.
#[derive(Debug, Clone)]
pub enum Check {
    /// `GET` the URL; passing means a 2xx status.
    Http(HttpTarget),
    /// `sh -c` the command; passing means exit status 0.
    Command(String),
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Check::Http(target) => write!(f, "GET {}", target.url),
            Check::Command(command) => write!(f, "sh -c {command:?}"),
        }
    }
}

impl Check {
    /// Runs the check once; `Ok` when it passes within `timeout`.
    pub async fn run(&self, timeout: Duration) -> Result<(), Failure> {
        let probe = async {
            match self {
                Check::Http(target) => target.get().await,
                Check::Command(command) => run_command(command).await,
            }
        };
        tokio::time::timeout(timeout, probe)
            .await
            .unwrap_or(Err(Failure::TimedOut(timeout)))
    }
}

/// A parsed `--check-http` URL: where to connect and what to ask for.
#[derive(Debug, Clone)]
pub struct HttpTarget {
    /// The URL as given, for logs.
    url: String,
    /// Host name or address to connect to (IPv6 without brackets).
    host: String,
    /// TCP port (80 when the URL names none).
    port: u16,
    /// The `Host` header: the URL's authority.
    authority: HeaderValue,
    /// Path and query, the request target.
    path: Uri,
}

impl FromStr for HttpTarget {
    type Err = InvalidCheck;

    fn from_str(url: &str) -> Result<Self, InvalidCheck> {
        let invalid = |reason: &str| InvalidCheck::Url(reason.to_string());
        let uri: Uri = url.parse().map_err(|e| InvalidCheck::Url(format!("{e}")))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => return Err(InvalidCheck::Url(format!("{other}:// is not supported"))),
            None => return Err(invalid("no http:// scheme")),
        }
        let authority = uri.authority().ok_or_else(|| invalid("no host"))?;
        if authority.as_str().contains('@') {
            return Err(invalid("user information is not supported"));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        if host.is_empty() {
            return Err(invalid("no host"));
        }
        let path = match uri.path_and_query().map(|p| p.as_str()) {
            None | Some("") => "/",
            Some(path) => path,
        };
        Ok(Self {
            url: url.to_string(),
            host: host.to_string(),
            port: authority.port_u16().unwrap_or(80),
            authority: HeaderValue::from_str(authority.as_str())
                .map_err(|_| invalid("invalid host"))?,
            path: path.parse().map_err(|_| invalid("invalid path"))?,
        })
    }
}

impl HttpTarget {
    /// One `GET` on a new connection (HTTP/1.1): passing means a 2xx status. The body is not
    /// read; the connection is dropped with the answer.
    async fn get(&self) -> Result<(), Failure> {
        let stream = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(Failure::Connect)?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake::<_, String>(TokioIo::new(stream)).await?;
        let mut request = Request::new(String::new());
        *request.uri_mut() = self.path.clone();
        let headers = request.headers_mut();
        headers.insert(header::HOST, self.authority.clone());
        headers.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
        // The connection future does the I/O. It may end (the server closed) before the
        // response is taken, which then either is there already or never comes.
        let response = sender.send_request(request);
        tokio::pin!(response);
        let status = tokio::select! {
            response = &mut response => response?.status(),
            ended = connection => {
                ended?;
                response.await.map_err(|_| Failure::Closed)?.status()
            }
        };
        if status.is_success() {
            Ok(())
        } else {
            Err(Failure::Status(status.as_u16()))
        }
    }
}

/// Runs `sh -c command` in a process group of its own; passing means exit status 0. Dropped
/// early (timeout, shutdown), it kills the whole group, so that nothing it started lingers.
async fn run_command(command: &str) -> Result<(), Failure> {
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(Failure::Spawn)?;
    let mut group = GroupKiller(child.id());
    let output = child.wait_with_output().await.map_err(Failure::Spawn)?;
    group.0 = None;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr.lines().rev().find(|l| !l.trim().is_empty());
    Err(Failure::Exit {
        status: output.status,
        stderr: last
            .map(|l| l.trim().chars().take(STDERR_QUOTE_CHARS).collect())
            .unwrap_or_default(),
    })
}

/// Kills a process group with SIGKILL when dropped while still holding its ID.
struct GroupKiller(Option<u32>);

impl Drop for GroupKiller {
    fn drop(&mut self) {
        #[cfg(target_os = "linux")]
        if let Some(Ok(group)) = self.0.map(i32::try_from) {
            use nix::sys::signal::{killpg, Signal};
            // ESRCH (the group is gone already) is fine.
            let _ = killpg(nix::unistd::Pid::from_raw(group), Signal::SIGKILL);
        }
    }
}

/// Whether the instance may be registered now: the latest result of its check, or always
/// with no check.
#[derive(Debug)]
pub struct Gate {
    /// `true` while the check passes; `false` until its first result.
    passing: watch::Receiver<bool>,
    /// Holds the channel open for a gate without a check, so that it never closes.
    _open: Option<watch::Sender<bool>>,
}

impl Gate {
    /// A gate without a check: always passing.
    pub fn open() -> Self {
        let (sender, passing) = watch::channel(true);
        Self {
            passing,
            _open: Some(sender),
        }
    }

    /// Runs `check` now and then every `interval` in a task of its own until `shutdown`.
    pub fn spawn(check: Check, interval: Duration, shutdown: CancellationToken) -> Self {
        let (sender, passing) = watch::channel(false);
        tokio::spawn(keep_checking(check, interval, sender, shutdown));
        Self {
            passing,
            _open: None,
        }
    }

    /// Returns once the check passes (at once if it does now).
    pub async fn passing(&mut self) {
        self.until(true).await
    }

    /// Returns once the check fails (at once if it does now).
    pub async fn failing(&mut self) {
        self.until(false).await
    }

    async fn until(&mut self, passing: bool) {
        if self.passing.wait_for(|p| *p == passing).await.is_err() {
            // The checking task ended, which it does only at shutdown: nothing changes now.
            std::future::pending::<()>().await;
        }
    }
}

/// The checking task: one check per tick, its result published, changes logged.
async fn keep_checking(
    check: Check,
    interval: Duration,
    passing: watch::Sender<bool>,
    shutdown: CancellationToken,
) {
    let timeout = check_timeout(interval);
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last = None;
    loop {
        let outcome = tokio::select! {
            _ = shutdown.cancelled() => return,
            outcome = async {
                tick.tick().await;
                check.run(timeout).await
            } => outcome,
        };
        let now = outcome.is_ok();
        if last != Some(now) {
            match &outcome {
                Ok(()) => info!(check = %check, "health check passing"),
                Err(error) => warn!(check = %check, %error, "health check failing"),
            }
        }
        last = Some(now);
        passing.send_if_modified(|p| std::mem::replace(p, now) != now);
    }
}

#[cfg(test)]
mod tests;
