//! The router's decision and what the synchronous step hands back.

use std::time::Instant;

use hickory_server::proto::op::ResponseCode;

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
