//! The signals that stop both binaries: SIGINT and SIGTERM.

use std::future::Future;

use tokio::signal::unix::{signal, SignalKind};

/// A future that completes at the first SIGINT or SIGTERM. The handlers are installed now, so
/// that a failure to install them is an error at start rather than a signal never heard.
pub fn stop_signal() -> std::io::Result<impl Future<Output = ()>> {
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}
