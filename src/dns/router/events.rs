//! What the router counts and limits about a client's request on its way out.

use std::net::SocketAddr;

use hickory_server::proto::op::ResponseCode;
use hickory_server::proto::rr::RecordType;

use super::Route;
use crate::dns::rrl::{self, RateLimiter, Verdict};
use crate::metrics::{ClientEvent, QueryStats};

/// Response rate limiting of one UDP `reply` to `src`: true when it may go out (whole, or cut
/// to a slipped reply in place), false when it must not.
#[cold]
pub(super) fn may_send(
    limiter: &RateLimiter,
    reply: &mut Vec<u8>,
    route: Route,
    src: SocketAddr,
    stats: &QueryStats,
) -> bool {
    let zone_at = match route {
        Route::Live(zone_at) => zone_at,
        Route::Static { zone_at, .. } => Some(zone_at),
        _ => None,
    };
    match limiter.check(reply, src.ip(), zone_at, rrl::now_micros()) {
        Verdict::Send => true,
        Verdict::Slip => {
            stats.event(ClientEvent::Slipped);
            rrl::truncate(reply);
            true
        }
        Verdict::Drop => {
            stats.event(ClientEvent::RateLimited);
            false
        }
    }
}

/// Counts what the client's request made happen, from where it was placed.
pub(super) fn count_events(route: Route, qtype: u16, stats: &QueryStats) {
    match route {
        Route::Error(ResponseCode::FormErr) => stats.event(ClientEvent::Malformed),
        Route::Error(ResponseCode::Refused) if qtype == u16::from(RecordType::AXFR) => {
            stats.event(ClientEvent::TransferRefused)
        }
        _ => {}
    }
}
