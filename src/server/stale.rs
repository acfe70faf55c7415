//! The staleness guard (`--max-stale`): a table no etcd quorum has confirmed for too long is
//! marked stale, and names under its zones answer SERVFAIL until etcd confirms it again.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::table::Table;

/// Shortest interval between two comparisons of the table's age with `--max-stale`.
/// See [`STALE_CHECK_MAX`].
const STALE_CHECK_MIN: Duration = Duration::from_millis(100);
/// Longest interval between two comparisons.
const STALE_CHECK_MAX: Duration = Duration::from_secs(1);

/// Marks the table stale (names under the zone answer SERVFAIL) once etcd has not confirmed it
/// for longer than `max`; the watcher unmarks it when etcd confirms it again. Checks a tenth
/// of `max` apart, within [`STALE_CHECK_MIN`]..[`STALE_CHECK_MAX`].
pub(super) async fn guard_staleness(table: Arc<Table>, max: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval((max / 10).clamp(STALE_CHECK_MIN, STALE_CHECK_MAX));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => table.mark_stale(max),
        }
    }
}
