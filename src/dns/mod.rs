//! DNS: the live zone over the table, the responder that routes each request, and the sockets.

pub mod live;
pub mod respond;
pub mod transport;

use std::sync::Arc;

use hickory_server::proto::rr::{LowerName, Name};
use hickory_server::zone_handler::{Catalog, ZoneHandler};

use crate::table::Table;
use live::LiveZone;
pub use transport::Listeners;

/// Builds the catalog: the live zone over `table` (zone transfers reach it there).
pub fn catalog(origin: &Name, table: Arc<Table>) -> Catalog {
    let live = Arc::new(LiveZone::new(origin, table));
    let mut catalog = Catalog::new();
    catalog.upsert(LowerName::new(origin), vec![live as Arc<dyn ZoneHandler>]);
    catalog
}
