//! What the router counts and limits about a client's request on its way out.

use std::net::SocketAddr;

use hickory_server::proto::op::ResponseCode;
use hickory_server::proto::rr::RecordType;

use super::Route;
use crate::dns::rrl::{self, RateLimiter, Verdict};
use crate::metrics::{ClientEvent, QueryStats, Writer};

/// Response rate limiting of one UDP `reply` to `src`: true when it may go out (whole, or cut
/// to a slipped reply in place), false when it must not.
pub(super) fn may_send<W: Writer>(
    limiter: &RateLimiter,
    reply: &mut Vec<u8>,
    route: Route,
    src: SocketAddr,
    stats: &QueryStats<W>,
) -> bool {
    let zone_at = match route {
        Route::Live(zone_at) => Some(zone_at),
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
pub(super) fn count_events<W: Writer>(route: Route, qtype: u16, stats: &QueryStats<W>) {
    match route {
        Route::Error(ResponseCode::FormErr) => stats.event(ClientEvent::Malformed),
        Route::Error(ResponseCode::Refused) if qtype == u16::from(RecordType::AXFR) => {
            stats.event(ClientEvent::TransferRefused)
        }
        _ => {}
    }
}
