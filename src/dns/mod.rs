//! DNS: the router that places every request, the live-zone answers, zone transfers, hickory's
//! catalog for static zone files and forwarding, and the sockets.

pub mod acl;
pub mod cache;
pub mod catalog;
pub mod doh;
pub mod doq;
pub mod forward;
mod listeners;
pub mod live;
pub mod locality;
#[cfg(target_os = "linux")]
mod mmsg;
pub mod notify;
pub mod reply;
pub mod router;
pub mod rrl;
pub mod statics;
pub mod tcp;
pub mod tls;
pub mod transfer;
pub mod transport;
pub mod tsig;
pub mod zones;

use std::net::SocketAddr;
use std::sync::Arc;

use acl::Acl;
use cache::AnswerCache;
pub use catalog::CatalogError;
use router::Router;
use statics::StaticZones;
pub use transport::Listeners;
use zones::ZoneFile;

use crate::metrics::Metrics;
use crate::table::Table;

/// What the server answers besides the live zone's ordinary queries.
#[derive(Debug, Clone)]
pub struct CatalogConfig {
    /// Static zones other than the live one.
    pub zone_files: Vec<ZoneFile>,
    /// Upstream resolvers for every other name; `None` answers REFUSED instead.
    pub upstreams: Option<Vec<SocketAddr>>,
    /// Who may AXFR the live zone.
    pub allow_transfer: Acl,
    /// Bytes of forwarded answers to cache (`--cache-size`); 0 caches nothing.
    pub cache_bytes: usize,
}

impl Default for CatalogConfig {
    fn default() -> Self {
        Self {
            zone_files: Vec::new(),
            upstreams: None,
            allow_transfer: Acl::default(),
            cache_bytes: cache::DEFAULT_CACHE_MIB << 20,
        }
    }
}

/// The router over `table`, with a catalog built from `config`, counting into `metrics`.
pub fn router(
    table: Arc<Table>,
    metrics: Arc<Metrics>,
    config: &CatalogConfig,
) -> Result<Router, CatalogError> {
    let catalog = catalog::build(config.upstreams.as_deref())?;
    let statics = StaticZones::compile(&config.zone_files);
    let router = Router::new(
        table,
        metrics.clone(),
        catalog,
        statics,
        config.upstreams.is_some(),
        config.allow_transfer.clone(),
    );
    if config.upstreams.is_none() || config.cache_bytes == 0 {
        return Ok(router);
    }
    let cache = Arc::new(AnswerCache::new(config.cache_bytes));
    metrics.add_report(cache.clone());
    Ok(router.with_cache(cache))
}
