//! Logging set-up shared by both binaries: `tracing` to stderr, level from `RUST_LOG` or the
//! `--log-level` flag, colours only on a terminal.

use std::io::IsTerminal;

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
