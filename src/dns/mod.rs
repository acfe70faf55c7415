//! DNS: the live zone over the table, the responder that routes each request, and the sockets.

pub mod forward;
pub mod live;
#[cfg(target_os = "linux")]
mod mmsg;
pub mod respond;
pub mod transport;
pub mod zones;

use std::net::SocketAddr;
use std::sync::Arc;

use hickory_server::proto::rr::{LowerName, Name};
use hickory_server::zone_handler::{Catalog, ZoneHandler};
use tracing::info;

use crate::table::Table;
use live::{Acl, LiveZone};
pub use transport::Listeners;
use zones::{ZoneError, ZoneFile};

/// What the catalog serves besides the live zone's ordinary queries.
#[derive(Debug, Clone, Default)]
pub struct CatalogConfig {
    /// Static zones other than the live one.
    pub zone_files: Vec<ZoneFile>,
    /// Upstream resolvers for every other name; `None` answers REFUSED instead.
    pub upstreams: Option<Vec<SocketAddr>>,
    /// Who may AXFR the live zone.
    pub allow_transfer: Acl,
}

/// A catalog that cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// A zone file.
    #[error(transparent)]
    Zone(#[from] ZoneError),
    /// The forwarder.
    #[error(transparent)]
    Forward(#[from] forward::ForwardError),
}

/// Builds the catalog: the live zone over `table` (zone transfers reach it there), the static
/// zones, and the forwarder at the root.
pub fn catalog(
    origin: &Name,
    table: Arc<Table>,
    config: &CatalogConfig,
) -> Result<Catalog, CatalogError> {
    let live = Arc::new(LiveZone::new(origin, table, config.allow_transfer.clone()));
    let mut catalog = Catalog::new();
    catalog.upsert(LowerName::new(origin), vec![live as Arc<dyn ZoneHandler>]);
    for zone in &config.zone_files {
        info!(zone = %zone.origin, file = %zone.path.display(), records = zone.records.len(), "serving static zone");
        catalog.upsert(
            LowerName::new(&zone.origin),
            vec![Arc::new(zone.handler()?) as Arc<dyn ZoneHandler>],
        );
    }
    if let Some(upstreams) = &config.upstreams {
        let text: Vec<String> = upstreams.iter().map(|u| u.to_string()).collect();
        info!(upstreams = %text.join(","), "forwarding other names");
        catalog.upsert(
            LowerName::new(&Name::root()),
            vec![Arc::new(forward::forwarder(upstreams)?) as Arc<dyn ZoneHandler>],
        );
    }
    Ok(catalog)
}
