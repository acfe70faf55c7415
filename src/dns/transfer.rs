//! Zone transfers (AXFR) of the live zone, for clients in `--allow-transfer`: the current
//! snapshot as one message, SOA first and last (RFC 5936). Incremental transfers are refused by
//! the router: a secondary falls back to AXFR.

use std::net::SocketAddr;

use hickory_server::proto::op::{Message, ResponseCode};
use tracing::info;

use super::live::in_zone;
use super::reply::{error_reply, fit, reply_to, Limit};
use crate::logging::LogLimit;
use crate::table::Snapshot;
use crate::wire::name_from_wire;

/// Transfers are logged, but an allowed client asking in a loop must not flood the log.
static TRANSFERS: LogLimit = LogLimit::new();

/// The AXFR reply to `request` from `snapshot`; SERVFAIL until the registry was first read
/// and while the table is stale (`--max-stale`).
/// Slow (every record is decoded and encoded again): never on the query path.
pub fn axfr(request: &Message, snapshot: &Snapshot, src: SocketAddr, limit: Limit) -> Vec<u8> {
    if !snapshot.ready || snapshot.stale {
        return error_reply(request, ResponseCode::ServFail, limit);
    }
    let mut reply = reply_to(request);
    reply.metadata.authoritative = true;
    let soa = snapshot.soa();
    reply.answers.push(soa.clone());
    reply.answers.extend(snapshot.ns().iter().cloned());
    for node in snapshot.names.iter() {
        // Reverse names live in other zones.
        let (Some(_), Some(owner)) = (in_zone(snapshot, node.name()), name_from_wire(node.name()))
        else {
            continue;
        };
        for set in node.rrsets() {
            reply.answers.extend(set.records(&owner));
        }
    }
    reply.answers.push(soa);
    if let Some(suppressed) = TRANSFERS.allow() {
        info!(%src, records = reply.answers.len(), serial = snapshot.revision, suppressed,
            "zone transfer");
    }
    fit(reply, limit)
}
