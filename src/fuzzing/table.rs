//! What the table must hold after the key_value harness's events: well-formed names and
//! RRsets that answer through the router as stored, and every registration findable.

use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, PTR, SRV, TXT};
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_server::net::xfer::Protocol;
use hickory_server::zone_handler::Catalog;

use super::key_value::Model;
use super::{ensure, valid_wire_name, Violation, CLIENT};
use crate::dns::acl::Acl;
use crate::dns::reply::TCP_MESSAGE_MAX;
use crate::dns::router::{Answer, Router};
use crate::key::{ServiceKey, SRV_PROTOCOLS};
use crate::metrics::Metrics;
use crate::records::Placement;
use crate::service::Target;
use crate::table::{Snapshot, Table};
use crate::wire::{name_from_wire, reverse_name, HEADER_LEN};
use crate::zone::ZoneConfig;

/// Every name of `snapshot`: a valid wire name; distinct types, a CNAME alone; each RRset
/// decodes to as many records as it counts, and a query for it through the router (over TCP,
/// so nothing is cut) answers exactly those records and additionals.
pub(super) fn check_table(config: &ZoneConfig, snapshot: &Snapshot) -> Result<(), Violation> {
    let table = Arc::new(Table::new(config));
    table.store(snapshot.clone());
    let metrics = Arc::new(Metrics::default());
    let router = Router::new(
        table,
        metrics,
        Catalog::new(),
        crate::dns::statics::StaticZones::default(),
        false,
        Acl::default(),
    );
    let stats = router.exclusive_stats();
    for node in snapshot.names.iter() {
        let wire = node.name();
        ensure(valid_wire_name(wire), || {
            format!("invalid name {wire:?} in the table")
        })?;
        let owner = name_from_wire(wire).ok_or_else(|| Violation(format!("{wire:?}")))?;
        let types: Vec<u16> = node.rrsets().map(|s| s.rtype).collect();
        let mut distinct = types.clone();
        distinct.sort_unstable();
        distinct.dedup();
        ensure(distinct.len() == types.len(), || {
            format!("{owner}: types {types:?} repeat")
        })?;
        let cname = u16::from(RecordType::CNAME);
        ensure(!types.contains(&cname) || types.len() == 1, || {
            format!("{owner}: a CNAME beside {types:?}")
        })?;
        for set in node.rrsets() {
            let rtype = RecordType::from(set.rtype);
            let decoded = set.records(&owner).len();
            ensure(set.count > 0 && decoded == set.count as usize, || {
                format!("{owner} {rtype}: {decoded} of {} records decode", set.count)
            })?;
            let mut query = Message::query();
            query.add_query(Query::query(owner.clone(), rtype));
            let bytes = query.to_vec().map_err(|e| Violation(e.to_string()))?;
            let Answer::Reply(reply) =
                router.answer_now(&bytes, CLIENT, Protocol::Tcp, Vec::new(), &stats)
            else {
                return Err(Violation(format!("{owner} {rtype}: no answer on the spot")));
            };
            let reply = Message::from_vec(&reply)
                .map_err(|e| Violation(format!("{owner} {rtype}: reply does not parse: {e}")))?;
            let size = HEADER_LEN + wire.len() + 4 + set.rrs.len();
            if size > TCP_MESSAGE_MAX {
                // Never SERVFAIL for size: as many of the set's records as fit.
                let partial = reply.metadata.response_code == ResponseCode::NoError
                    && !reply.answers.is_empty()
                    && reply.answers.len() < set.count as usize
                    && reply.answers.iter().all(|r| r.record_type() == rtype);
                ensure(partial, || {
                    format!("{owner} {rtype}: {size} bytes answered {reply:?}")
                })?;
                continue;
            }
            let answers_ok = reply.answers.len() == set.count as usize
                && reply
                    .answers
                    .iter()
                    .all(|r| r.record_type() == rtype && r.name == owner);
            ensure(answers_ok, || {
                format!(
                    "{owner} {rtype}: {} records stored, answered {:?}",
                    set.count, reply.answers
                )
            })?;
            let all_extra = HEADER_LEN + wire.len() + 4 + set.rrs.len() + set.extra.len();
            ensure(
                reply.additionals.len() == set.extra_count as usize
                    || (all_extra > TCP_MESSAGE_MAX
                        && reply.additionals.len() < set.extra_count as usize),
                || format!("{owner} {rtype}: additionals {:?}", reply.additionals),
            )?;
        }
        // Each local set (one zone's instances) holds records of the name's set of its type.
        for (zone, local) in node.local_rrsets() {
            let rtype = RecordType::from(local.rtype);
            let global = node.rrset(local.rtype);
            let inside = matches!(rtype, RecordType::A | RecordType::AAAA | RecordType::SRV)
                && global.is_some_and(|global| {
                    let all = global.records(&owner);
                    local.count <= global.count
                        && local.records(&owner).iter().all(|r| all.contains(r))
                });
            ensure(local.count > 0 && inside, || {
                format!("{owner}: the local {rtype} set of zone {zone} is no part of the name's")
            })?;
        }
    }
    Ok(())
}

/// Every registration of `model` can be looked up: its addresses at its owner and service
/// names, the PTR back to its owner, its TXT strings, its SRV records, and a CNAME to its host
/// where nothing else is at its owner.
pub(super) fn check_lookups(
    zone: &[u8],
    snapshot: &Snapshot,
    model: &Model,
) -> Result<(), Violation> {
    let data = |name: &[u8], rtype: RecordType| -> Vec<RData> {
        let (Some(node), Some(owner)) = (snapshot.names.get(name), name_from_wire(name)) else {
            return Vec::new();
        };
        let set = node.rrset(rtype.into());
        set.map(|s| s.records(&owner).into_iter().map(|r| r.data).collect())
            .unwrap_or_default()
    };
    let holds = |name: &[u8], want: RData, text: &str| {
        let rtype = want.record_type();
        ensure(data(name, rtype).contains(&want), || {
            format!(
                "{text:?}: {want} missing at {:?} {rtype}",
                name_from_wire(name)
            )
        })
    };
    for (text, registration) in &model.live {
        let key = Placement::from(ServiceKey::split(crate::sources::DEFAULT_PREFIX, text));
        let owner = key.owner_name(zone);
        let service = key.service_name(zone);
        let owner_name = name_from_wire(&owner).unwrap_or_else(Name::root);
        let target = match &registration.target {
            Target::Addr(ip) => {
                let address = match ip {
                    IpAddr::V4(ip) => RData::A(A(*ip)),
                    IpAddr::V6(ip) => RData::AAAA(AAAA(*ip)),
                };
                holds(&owner, address.clone(), text)?;
                holds(&service, address, text)?;
                holds(
                    &reverse_name(*ip),
                    RData::PTR(PTR(owner_name.clone())),
                    text,
                )?;
                owner_name
            }
            Target::Host(host) => {
                let node = snapshot.names.get(&owner);
                let others = node.map_or(0, |n| {
                    n.rrsets()
                        .filter(|s| s.rtype != u16::from(RecordType::CNAME))
                        .count()
                });
                ensure(
                    others > 0 || !data(&owner, RecordType::CNAME).is_empty(),
                    || format!("{text:?}: no CNAME and nothing else at its owner"),
                )?;
                (**host).clone()
            }
            // Only SkyDNS entries have no target; native keys always name one.
            Target::None => {
                return Err(Violation(format!(
                    "{text:?}: a native registration without a target"
                )))
            }
        };
        for txt in &registration.txt {
            let want = RData::TXT(TXT::from_bytes(vec![txt.as_bytes()]));
            holds(&owner, want.clone(), text)?;
            holds(&service, want, text)?;
        }
        if let Some(port) = registration.port {
            let srv = RData::SRV(SRV::new(
                registration.priority,
                registration.weight,
                port,
                target,
            ));
            holds(&service, srv.clone(), text)?;
            for proto in SRV_PROTOCOLS {
                holds(&key.srv_name(proto, zone), srv.clone(), text)?;
            }
        }
    }
    Ok(())
}
