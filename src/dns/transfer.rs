//! Zone transfers (AXFR) of a live zone, for clients in `--allow-transfer`: the current
//! snapshot as one message, SOA first and last (RFC 5936). Incremental transfers are refused by
//! the router: a secondary falls back to AXFR.

use std::net::SocketAddr;

use hickory_server::proto::op::{Message, ResponseCode};
use tracing::info;

use super::reply::{error_reply, fit, reply_to, Limit};
use crate::logging::LogLimit;
use crate::table::Snapshot;
use crate::wire::{name_from_wire, wire_name, zone_offset};

/// Transfers are logged, but an allowed client asking in a loop must not flood the log.
static TRANSFERS: LogLimit = LogLimit::new();

/// The AXFR reply to `request` from `snapshot`; SERVFAIL until the registry was first read
/// and while the table is stale (`--max-stale`).
/// Slow (every record is decoded and encoded again): never on the query path.
pub fn axfr(request: &Message, snapshot: &Snapshot, src: SocketAddr, limit: Limit) -> Vec<u8> {
    let asked = request.queries.first().map(|q| wire_name(q.name()));
    let zone = asked.and_then(|name| snapshot.zone_of(&name));
    let Some((_, zone)) = zone.filter(|_| snapshot.ready && !snapshot.stale) else {
        return error_reply(request, ResponseCode::ServFail, limit);
    };
    let mut reply = reply_to(request);
    reply.metadata.authoritative = true;
    let soa = zone.soa();
    reply.answers.push(soa.clone());
    reply.answers.extend(zone.ns().iter().cloned());
    for node in snapshot.names.iter() {
        // Reverse names and the other zones' names are not this zone's.
        let in_this = zone_offset(node.name(), zone.name()).is_some();
        let (true, Some(owner)) = (in_this, name_from_wire(node.name())) else {
            continue;
        };
        for set in node.rrsets() {
            reply.answers.extend(set.records(&owner));
        }
    }
    reply.answers.push(soa);
    if let Some(suppressed) = TRANSFERS.allow() {
        info!(%src, records = reply.answers.len(), serial = zone.serial, suppressed,
            "zone transfer");
    }
    fit(reply, limit)
}
