//! Logging set-up shared by both binaries: `tracing` to stderr, level from `RUST_LOG` or the
//! `--log-level` flag, colours only on a terminal; and a rate limit for lines that remote
//! packets can trigger.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing_subscriber::EnvFilter;

/// Default filter: our own info logs, hickory's per-query info lines silenced.
pub const DEFAULT_FILTER: &str = "info,hickory_server=warn";

/// Installs the global subscriber. `RUST_LOG` wins over `level`; an invalid filter falls back
/// to [`DEFAULT_FILTER`] with a warning.
pub fn init(level: &str) {
    let (filter, bad) = match EnvFilter::try_from_default_env() {
        Ok(filter) => (filter, None),
        Err(_) => match EnvFilter::try_new(level) {
            Ok(filter) => (filter, None),
            Err(e) => (EnvFilter::new(DEFAULT_FILTER), Some(e)),
        },
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    if let Some(error) = bad {
        tracing::warn!(level, %error, "invalid --log-level; using {DEFAULT_FILTER}");
    }
}

/// Lets a log line through at most once per [`LOG_INTERVAL`] and counts the ones it held back,
/// for events a remote packet can trigger: a flood of them must not become a flood of lines.
#[derive(Debug)]
pub struct LogLimit {
    /// Milliseconds since the Unix epoch when a line last went out.
    last: AtomicU64,
    /// Lines held back since then.
    suppressed: AtomicU64,
}

/// Shortest time between two lines of one [`LogLimit`].
pub const LOG_INTERVAL: Duration = Duration::from_secs(1);

impl LogLimit {
    /// A limit that lets the first line through.
    pub const fn new() -> Self {
        Self {
            last: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(lines held back since the last one)` when a line may go out now, else `None`
    /// (and the line is counted).
    pub fn allow(&self) -> Option<u64> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let last = self.last.load(Ordering::Relaxed);
        let due = now.saturating_sub(last) >= LOG_INTERVAL.as_millis() as u64;
        if due
            && self
                .last
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return Some(self.suppressed.swap(0, Ordering::Relaxed));
        }
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        None
    }
}

impl Default for LogLimit {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_and_the_rest_counted() {
        let limit = LogLimit::new();
        assert_eq!(limit.allow(), Some(0));
        assert_eq!(limit.allow(), None);
        assert_eq!(limit.allow(), None);
        // As if the interval had passed.
        limit.last.store(0, Ordering::Relaxed);
        assert_eq!(limit.allow(), Some(2));
    }
}
