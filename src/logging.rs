//! Logging set-up shared by both binaries: `tracing` to stderr, level from `RUST_LOG` or the
//! `--log-level` flag, colours only on a terminal; a rate limit for lines that remote packets
//! can trigger; and [`clip`], which bounds what an etcd key or value adds to a line.

use std::borrow::Cow;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing_subscriber::EnvFilter;

/// Default filter: our own info logs, and nothing from hickory.
pub const DEFAULT_FILTER: &str = "info";
/// Added to a `--log-level` that does not name a hickory target: hickory logs per packet (a
/// malformed EDNS option, a failed send, a stray upstream reply), at warn and error too, and
/// those lines cannot be rate-limited from here. `RUST_LOG` (or naming a hickory target in
/// `--log-level`) turns them back on.
pub const QUIET_DEPENDENCIES: &str =
    "hickory_proto=off,hickory_net=off,hickory_server=off,hickory_resolver=off";
/// Longest etcd key or value text a log line carries; the rest is cut (see [`clip`]).
pub const LOG_TEXT_MAX: usize = 256;

/// The filter for `--log-level LEVEL`: `LEVEL` plus [`QUIET_DEPENDENCIES`], unless it
/// already says something about hickory.
pub fn filter_for(level: &str) -> String {
    if level.contains("hickory") {
        level.to_string()
    } else {
        format!("{level},{QUIET_DEPENDENCIES}")
    }
}

/// `text` cut to at most [`LOG_TEXT_MAX`] bytes (on a character boundary) followed by
/// "…(N bytes)" when longer: an etcd key is up to 1.5 MiB, and a log line is no place for it.
pub fn clip(text: &str) -> Cow<'_, str> {
    if text.len() <= LOG_TEXT_MAX {
        return Cow::Borrowed(text);
    }
    let mut end = LOG_TEXT_MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}…({} bytes)", &text[..end], text.len()))
}

/// Installs the global subscriber. `RUST_LOG` wins over `level`; an invalid filter falls back
/// to [`DEFAULT_FILTER`] with a warning.
pub fn init(level: &str) {
    let (filter, bad) = match EnvFilter::try_from_default_env() {
        Ok(filter) => (filter, None),
        Err(_) => match EnvFilter::try_new(filter_for(level)) {
            Ok(filter) => (filter, None),
            Err(e) => (EnvFilter::new(filter_for(DEFAULT_FILTER)), Some(e)),
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

    #[test]
    fn long_keys_are_clipped_with_their_length() {
        assert_eq!(clip("services/web"), "services/web");
        let long = format!("services/{}", "a".repeat(100_000));
        let clipped = clip(&long);
        assert_eq!(clipped.len(), LOG_TEXT_MAX + "…(100009 bytes)".len());
        assert!(clipped.ends_with("aaa…(100009 bytes)"), "{clipped}");
        // Never cut inside a character.
        let wide = "é".repeat(200);
        assert!(clip(&wide).starts_with(&"é".repeat(LOG_TEXT_MAX / 2)));
        let odd = format!("a{wide}");
        assert_eq!(clip(&odd), format!("a{}…(401 bytes)", "é".repeat(127)));
    }

    #[test]
    fn hickory_is_quiet_unless_named() {
        assert_eq!(filter_for("warn"), format!("warn,{QUIET_DEPENDENCIES}"));
        assert_eq!(
            filter_for("info,hickory_server=debug"),
            "info,hickory_server=debug"
        );
        for level in ["info", "debug", "etcd_dns=trace"] {
            assert!(EnvFilter::try_new(filter_for(level)).is_ok(), "{level}");
        }
    }
}
