//! The router's decision, how it is made, and what the synchronous step hands back.

use std::net::SocketAddr;
use std::time::Instant;

use hickory_server::proto::op::ResponseCode;
use hickory_server::proto::rr::RecordType;
use tracing::debug;

use super::answer::has_ptr;
use super::{Router, CLASS_ANY, CLASS_IN, TRANSFERS_REFUSED};
use crate::dns::live;
use crate::table::Snapshot;
use crate::wire::WireQuery;

use crate::metrics::Path;

/// Where one request goes: the decision every request passes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Answered from the live table: a name of a live zone, with the offset at which the
    /// zone starts in the name.
    Live(usize),
    /// Answered from the live table: the reverse name (PTR) of a registered address.
    Reverse,
    /// AXFR of the live zone by a client in `--allow-transfer`.
    Transfer,
    /// A name of a static zone file: the zone's index among the static zones and the offset at
    /// which its origin starts in the name. Answered from the compiled zone, or by hickory's
    /// catalog where the compiled zone leaves it.
    Static {
        /// Index of the zone.
        zone: usize,
        /// Where the zone's origin starts in the name.
        zone_at: usize,
    },
    /// Any other name: the forwarder, in hickory's catalog.
    Forward,
    /// An error answered here: FORMERR, NOTIMP, BADVERS, REFUSED.
    Error(ResponseCode),
    /// Nothing to send: a response, or bytes too short to answer.
    Drop,
}

/// What the synchronous step made of a request.
#[derive(Debug)]
pub enum Answer {
    /// Send these bytes.
    Reply(Vec<u8>),
    /// Send nothing.
    Drop,
    /// The catalog or a zone transfer has to answer: run [`super::Router::answer_later`] in a task.
    Later(Pending),
}

/// A request the synchronous step placed but could not answer.
#[derive(Debug, Clone, Copy)]
pub struct Pending {
    /// Where it goes.
    pub route: Route,
    /// Its QTYPE, for the metrics.
    pub(super) qtype: u16,
    /// When the router got it.
    pub(super) received: Instant,
}

impl Route {
    /// The `path` label of this route's answers.
    pub(super) fn path(self) -> Path {
        match self {
            Route::Live(_) | Route::Reverse => Path::Live,
            Route::Transfer => Path::Transfer,
            Route::Static { .. } => Path::Static,
            Route::Forward => Path::Forward,
            Route::Error(_) | Route::Drop => Path::Error,
        }
    }
}

impl Router {
    /// The route of one question. Types and classes are compared as numbers: converting the
    /// query's to hickory's enums would cost a lookup per query.
    pub(super) fn place(
        &self,
        snapshot: &Snapshot,
        query: &WireQuery<'_>,
        src: SocketAddr,
    ) -> Route {
        let name = query.name();
        let qtype = query.qtype;
        // QCLASS ANY (RFC 1035 §3.2.5) is answered like IN in the live zone, as Knot does.
        let class_ok = query.qclass == CLASS_IN || query.qclass == CLASS_ANY;
        match live::in_zone(snapshot, name) {
            // Other classes are not ours.
            Some(_) if !class_ok => Route::Error(ResponseCode::Refused),
            Some(_)
                if qtype == u16::from(RecordType::AXFR) || qtype == u16::from(RecordType::IXFR) =>
            {
                if self.allow_transfer.contains(src.ip()) {
                    Route::Transfer
                } else {
                    if let Some(suppressed) = TRANSFERS_REFUSED.allow() {
                        debug!(%src, suppressed, "zone transfer refused");
                    }
                    Route::Error(ResponseCode::Refused)
                }
            }
            Some(zone_at) => Route::Live(zone_at),
            None if class_ok && qtype == u16::from(RecordType::PTR) && has_ptr(snapshot, name) => {
                Route::Reverse
            }
            None => match self.statics.find(name) {
                // As for the live zone: other classes are not ours, and no transfers.
                Some(_)
                    if !class_ok
                        || qtype == u16::from(RecordType::AXFR)
                        || qtype == u16::from(RecordType::IXFR) =>
                {
                    Route::Error(ResponseCode::Refused)
                }
                Some((zone, zone_at)) => Route::Static { zone, zone_at },
                None if self.forwarding => Route::Forward,
                None => Route::Error(ResponseCode::Refused),
            },
        }
    }
}
