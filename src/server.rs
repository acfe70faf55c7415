//! The etcd-dns server assembled: watcher + table + DNS, sharing one shutdown token.

use std::sync::Arc;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::dns::{self, transport, CatalogConfig, CatalogError, Listeners};
use crate::etcd::EtcdConfig;
use crate::table::Table;
use crate::watch;
use crate::zone::ZoneConfig;

/// Everything the server needs besides its sockets.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The live zone and its registry prefix.
    pub zone: ZoneConfig,
    /// How to reach etcd.
    pub etcd: EtcdConfig,
    /// Static zones, forwarding, zone transfers.
    pub catalog: CatalogConfig,
}

/// A started server: its table (for inspection) and its tasks.
pub struct Running {
    /// The live table the DNS answers from.
    pub table: Arc<Table>,
    tasks: JoinSet<()>,
}

impl Running {
    /// Waits until every task has stopped (after the shutdown token fired).
    pub async fn wait(mut self) {
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Starts the watcher and the DNS server on `listeners`; they run until `shutdown`.
pub fn start(
    config: ServerConfig,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> Result<Running, CatalogError> {
    let zone = Arc::new(config.zone);
    let table = Arc::new(Table::new(&zone));
    let router = Arc::new(dns::router(table.clone(), &config.catalog)?);
    let mut tasks = JoinSet::new();
    tasks.spawn(watch::run(
        config.etcd,
        zone.clone(),
        table.clone(),
        shutdown.clone(),
    ));
    tasks.spawn(transport::serve(listeners, router, shutdown));
    Ok(Running { table, tasks })
}
