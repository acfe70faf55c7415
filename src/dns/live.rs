//! The live zone: answers in wire format from an immutable snapshot (a hash lookup and a few
//! copies: the query path never waits on the watcher and never touches etcd), and a
//! [`ZoneHandler`] over the same table for what goes through hickory's catalog: zone transfers.

use std::net::IpAddr;
use std::sync::Arc;

use hickory_server::proto::op::ResponseCode;
use hickory_server::proto::rr::{LowerName, Name, RecordSet, RecordType, TSigResponseContext};
use hickory_server::server::{Request, RequestInfo};
use hickory_server::zone_handler::{
    AuthLookup, AxfrPolicy, AxfrRecords, LookupControlFlow, LookupError, LookupOptions,
    LookupRecords, ZoneHandler, ZoneTransfer, ZoneType,
};
use tracing::{debug, info};

use crate::table::{Snapshot, Table};
use crate::wire::{zone_offset, ReplyBody};

/// Compression pointer to the question name, the owner of answer records.
const QNAME_POINTER: [u8; 2] = [0xc0, 0x0c];
const SERVFAIL: u8 = 2;
const NXDOMAIN: u8 = 3;

/// The reply body for `key`/`qtype` under the live zone, whose name starts at `zone_at` in
/// `key`. `rotate` picks the first record of multi-record sets so that successive answers
/// spread clients over instances.
pub fn live_body<'a>(
    snapshot: &'a Snapshot,
    key: &[u8],
    qtype: u16,
    zone_at: usize,
    rotate: usize,
) -> ReplyBody<'a> {
    let mut body = ReplyBody {
        authoritative: true,
        ..ReplyBody::default()
    };
    if !snapshot.ready {
        body.authoritative = false;
        body.rcode = SERVFAIL;
        return body;
    }
    let soa = Some((&*snapshot.soa_tail, zone_at));
    let apex = zone_at == 0;
    if apex && (qtype == u16::from(RecordType::SOA) || qtype == u16::from(RecordType::ANY)) {
        body.answers = (&QNAME_POINTER, &snapshot.soa_tail, 1);
        return body;
    }
    if apex && qtype == u16::from(RecordType::NS) {
        let set = snapshot.ns_rrset();
        let (first, second) = set.rotated(rotate);
        body.answers = (first, second, set.count);
        return body;
    }
    let Some(node) = snapshot.names.get(key) else {
        if !apex {
            body.rcode = NXDOMAIN;
        }
        body.soa = soa;
        return body;
    };
    let set = if qtype == u16::from(RecordType::ANY) {
        // RFC 8482: one RRset, never the whole name.
        node.rrsets().next()
    } else {
        node.rrset(qtype)
            // A name with a CNAME answers every other type with it (RFC 1034 §3.6.2).
            .or_else(|| node.rrset(RecordType::CNAME.into()))
    };
    match set {
        Some(set) => {
            let (first, second) = set.rotated(rotate);
            body.answers = (first, second, set.count);
            body.additional = (set.extra, set.extra_count);
        }
        None => body.soa = soa,
    }
    body
}

/// Where the zone starts in `key`, if `key` is in the live zone.
pub fn in_zone(snapshot: &Snapshot, key: &[u8]) -> Option<usize> {
    zone_offset(key, snapshot.zone_key())
}

/// The live zone as hickory sees it. The responder answers ordinary queries itself; the
/// catalog reaches this handler for zone transfers and anything the responder hands over.
pub struct LiveZone {
    origin: LowerName,
    table: Arc<Table>,
    allow_transfer: Acl,
}

impl LiveZone {
    /// A handler for `origin` over `table`; `allow_transfer` may AXFR it.
    pub fn new(origin: &Name, table: Arc<Table>, allow_transfer: Acl) -> Self {
        Self {
            origin: LowerName::new(origin),
            table,
            allow_transfer,
        }
    }
}

/// Ordinary queries never reach the catalog for the live zone (the responder answers them);
/// what does — zone transfers, IXFR — is refused unless handled below.
fn not_here() -> LookupControlFlow<AuthLookup> {
    LookupControlFlow::Break(Err(LookupError::from(ResponseCode::Refused)))
}

#[async_trait::async_trait]
impl ZoneHandler for LiveZone {
    fn zone_type(&self) -> ZoneType {
        ZoneType::Primary
    }

    fn axfr_policy(&self) -> AxfrPolicy {
        AxfrPolicy::Deny
    }

    fn origin(&self) -> &LowerName {
        &self.origin
    }

    async fn lookup(
        &self,
        name: &LowerName,
        rtype: RecordType,
        _request_info: Option<&RequestInfo<'_>>,
        _lookup_options: LookupOptions,
    ) -> LookupControlFlow<AuthLookup> {
        debug!(%name, %rtype, "live zone lookup through the catalog");
        not_here()
    }

    async fn search(
        &self,
        _request: &Request,
        _lookup_options: LookupOptions,
    ) -> (LookupControlFlow<AuthLookup>, Option<TSigResponseContext>) {
        (not_here(), None)
    }

    async fn nsec_records(
        &self,
        _name: &LowerName,
        _lookup_options: LookupOptions,
    ) -> LookupControlFlow<AuthLookup> {
        LookupControlFlow::Continue(Ok(AuthLookup::default()))
    }

    async fn zone_transfer(
        &self,
        request: &Request,
        lookup_options: LookupOptions,
        _now: u64,
    ) -> Option<(
        Result<ZoneTransfer, LookupError>,
        Option<TSigResponseContext>,
    )> {
        let src = request.src().ip();
        if !self.allow_transfer.contains(src) {
            debug!(%src, "zone transfer refused");
            return Some((Err(LookupError::from(ResponseCode::Refused)), None));
        }
        let snapshot = self.table.load_full();
        if !snapshot.ready {
            return Some((Err(LookupError::from(ResponseCode::ServFail)), None));
        }
        let mut sets: Vec<Arc<RecordSet>> = snapshot
            .ns()
            .iter()
            .cloned()
            .map(|r| Arc::new(RecordSet::from(r)))
            .collect();
        for key in snapshot.names.iter().map(|node| node.key()) {
            if in_zone(&snapshot, key).is_none() {
                continue; // reverse names live in other zones
            }
            let records = snapshot.records_at(key);
            sets.extend(records.into_iter().map(|r| Arc::new(RecordSet::from(r))));
        }
        info!(%src, records = sets.len(), serial = snapshot.revision, "zone transfer");
        let soa = Arc::new(RecordSet::from(snapshot.soa()));
        Some((
            Ok(ZoneTransfer {
                start_soa: LookupRecords::new(lookup_options, soa.clone()),
                records: AxfrRecords::new(false, sets),
                end_soa: LookupRecords::new(lookup_options, soa),
            }),
            None,
        ))
    }
}

/// Client networks allowed to transfer the zone (`--allow-transfer`): addresses or CIDR
/// prefixes.
#[derive(Debug, Clone, Default)]
pub struct Acl(Vec<(IpAddr, u8)>);

impl Acl {
    /// Parses a comma-separated list of `IP` or `IP/LEN`.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut nets = Vec::new();
        for item in crate::etcd::split_list(list) {
            let (ip, len) = match item.split_once('/') {
                Some((ip, len)) => (ip, Some(len)),
                None => (item.as_str(), None),
            };
            let ip: IpAddr = ip
                .parse()
                .map_err(|_| format!("{item:?} is not IP or IP/LEN"))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let len = match len {
                Some(len) => len
                    .parse::<u8>()
                    .ok()
                    .filter(|l| *l <= max)
                    .ok_or_else(|| format!("{item:?}: prefix length must be 0-{max}"))?,
                None => max,
            };
            nets.push((ip, len));
        }
        Ok(Self(nets))
    }

    /// True when `ip` is in one of the networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let bits = |ip: IpAddr| match ip {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)) << 96, true),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => (u128::from(u32::from(v4)) << 96, true),
                None => (u128::from(v6), false),
            },
        };
        let (ip, v4) = bits(ip);
        self.0.iter().any(|(net, len)| {
            let (net, net_v4) = bits(*net);
            let len = u32::from(*len);
            // IPv4 sits in the top 32 bits, so one mask rule serves both families.
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            v4 == net_v4 && (ip & mask) == (net & mask)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acl_matches_addresses_and_prefixes() {
        let acl = Acl::parse("127.0.0.1, 10.1.0.0/16, 2001:db8::/32").expect("acl");
        for (ip, want) in [
            ("127.0.0.1", true),
            ("127.0.0.2", false),
            ("10.1.200.3", true),
            ("10.2.0.1", false),
            ("::ffff:10.1.0.9", true),
            ("2001:db8:1::5", true),
            ("2001:db9::5", false),
        ] {
            assert_eq!(acl.contains(ip.parse().expect("ip")), want, "{ip}");
        }
        assert!(Acl::parse("10.0.0.0/33").is_err());
        assert!(Acl::parse("host").is_err());
        assert!(!Acl::default().contains("127.0.0.1".parse().expect("ip")));
    }
}
