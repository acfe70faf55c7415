//! The watcher's supervision: what a stopped or panicked watcher does to the server.

use super::*;
use crate::sources::Live;
use crate::zone::ZoneConfig;

/// A table and the `/ready` view of it.
fn table_and_ready() -> (Arc<Table>, Http) {
    let zone = ZoneConfig::new(crate::testing::zone());
    let table = Arc::new(Table::for_live(&Live::native(zone)));
    let http = Http {
        table: table.clone(),
        metrics: Arc::default(),
        max_stale: None,
    };
    (table, http)
}

/// A watcher that panics on its thread stops the server with the panic's message, and
/// `/ready` says why until the process exits.
#[tokio::test]
async fn a_panicking_watcher_stops_the_server() {
    let (table, http) = table_and_ready();
    let shutdown = CancellationToken::new();
    let watcher = on_own_thread(async { panic!("bug in the watcher") }).expect("thread");
    let result = supervise(watcher, table.clone(), shutdown.clone()).await;
    let error = result
        .expect_err("a panicked watcher is an error")
        .to_string();
    assert!(error.contains("bug in the watcher"), "{error}");
    assert!(shutdown.is_cancelled(), "the whole server stops");
    let (ready, why) = http.readiness();
    assert!(!ready);
    assert!(
        why.contains("watcher stopped") && why.contains("bug in the watcher"),
        "{why}"
    );
}

/// A watcher that returns while the server runs is as fatal as one that panics.
#[tokio::test]
async fn a_watcher_returning_early_stops_the_server() {
    let (table, http) = table_and_ready();
    let shutdown = CancellationToken::new();
    let watcher = on_own_thread(async { Ok(()) }).expect("thread");
    let result = supervise(watcher, table, shutdown.clone()).await;
    assert!(
        matches!(result, Err(RunError::WatcherStopped(_))),
        "{result:?}"
    );
    assert!(shutdown.is_cancelled());
    assert!(!http.readiness().0);
}

/// A watcher that returns because of the shutdown is the normal end.
#[tokio::test]
async fn a_watcher_stopped_by_shutdown_is_no_error() {
    let (table, _) = table_and_ready();
    let shutdown = CancellationToken::new();
    shutdown.cancel();
    let watcher = on_own_thread(async { Ok(()) }).expect("thread");
    let result = supervise(watcher, table.clone(), shutdown).await;
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(table.failure(), None);
}
