//! The live zone: a [`ZoneHandler`] over the watched [`Table`]. Lookups are hash-map reads on an
//! immutable snapshot, so a query never waits on the watcher and never touches etcd.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use hickory_server::proto::op::ResponseCode;
use hickory_server::proto::rr::{
    LowerName, Name, Record, RecordSet, RecordType, TSigResponseContext,
};
use hickory_server::server::{Request, RequestInfo};
use hickory_server::zone_handler::{
    AuthLookup, AxfrPolicy, AxfrRecords, LookupControlFlow, LookupError, LookupOptions,
    LookupRecords, ZoneHandler, ZoneTransfer, ZoneType,
};

use tracing::{debug, info};

use crate::table::{NameEntry, Snapshot, Table};

/// What the live table says about one question.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// Records for the answer section, and records for the additional section.
    Records(Vec<Record>, Vec<Record>),
    /// The name exists but holds no record of the asked type (NOERROR, empty answer).
    NoData,
    /// The name does not exist in the zone.
    NxDomain,
    /// The question is not ours to answer (zone transfer without permission).
    Refused,
}

/// Answers `name`/`qtype` from `snapshot`. `rotate` picks the first record of multi-record
/// sets so that successive answers spread clients over instances.
pub fn answer(
    snapshot: &Snapshot,
    origin: &LowerName,
    name: &LowerName,
    qtype: RecordType,
    rotate: usize,
) -> Answer {
    if matches!(qtype, RecordType::AXFR | RecordType::IXFR) {
        return Answer::Refused;
    }
    if name == origin {
        match qtype {
            RecordType::SOA | RecordType::ANY => {
                return Answer::Records(vec![snapshot.soa.clone()], Vec::new())
            }
            RecordType::NS => return Answer::Records(snapshot.ns.clone(), Vec::new()),
            _ => {}
        }
    }
    let Some(entry) = snapshot.names.get(name) else {
        return if name == origin {
            Answer::NoData
        } else {
            Answer::NxDomain
        };
    };
    entry_answer(entry, qtype, rotate)
}

fn entry_answer(entry: &NameEntry, qtype: RecordType, rotate: usize) -> Answer {
    if qtype == RecordType::SRV && !entry.srv.is_empty() {
        let set = entry.rrset(RecordType::SRV);
        return Answer::Records(rotated(&set, rotate), entry.srv_additionals.clone());
    }
    let set = match qtype {
        // RFC 8482: one RRset, never the whole name.
        RecordType::ANY => [
            RecordType::A,
            RecordType::AAAA,
            RecordType::SRV,
            RecordType::TXT,
            RecordType::PTR,
            RecordType::CNAME,
        ]
        .into_iter()
        .map(|t| entry.rrset(t))
        .find(|set| !set.is_empty())
        .unwrap_or_else(|| entry.other.iter().take(1).cloned().collect()),
        other => entry.rrset(other),
    };
    if !set.is_empty() {
        return Answer::Records(rotated(&set, rotate), Vec::new());
    }
    // A name with a CNAME answers every other type with the CNAME (RFC 1034 §3.6.2).
    match entry.rrset(RecordType::CNAME).into_iter().next() {
        Some(cname) => Answer::Records(vec![cname], Vec::new()),
        None => Answer::NoData,
    }
}

fn rotated(set: &[Record], rotate: usize) -> Vec<Record> {
    let mut out = Vec::with_capacity(set.len());
    let start = rotate % set.len().max(1);
    out.extend_from_slice(&set[start..]);
    out.extend_from_slice(&set[..start]);
    out
}

/// The live zone as hickory sees it. The responder answers ordinary queries itself; the
/// catalog reaches this handler for zone transfers and anything the responder hands over.
pub struct LiveZone {
    origin: LowerName,
    table: Arc<Table>,
    allow_transfer: Acl,
    /// Per-answer rotation counter; relaxed ordering is enough, it only spreads load.
    rotation: AtomicUsize,
}

impl LiveZone {
    /// A handler for `origin` over `table`; `allow_transfer` may AXFR it.
    pub fn new(origin: &Name, table: Arc<Table>, allow_transfer: Acl) -> Self {
        Self {
            origin: LowerName::new(origin),
            table,
            allow_transfer,
            rotation: AtomicUsize::new(0),
        }
    }

    /// The table this zone serves.
    pub fn table(&self) -> &Arc<Table> {
        &self.table
    }

    fn answer(
        &self,
        name: &LowerName,
        qtype: RecordType,
        original: Option<&Name>,
    ) -> LookupControlFlow<AuthLookup> {
        let snapshot = self.table.load();
        let rotate = self.rotation.fetch_add(1, Ordering::Relaxed);
        match answer(&snapshot, &self.origin, name, qtype, rotate) {
            Answer::Records(mut answers, additionals) => {
                // Answers keep the query's spelling (DNS is case-insensitive, clients compare
                // what they asked with what they got).
                if let Some(original) = original {
                    for record in answers
                        .iter_mut()
                        .filter(|r| LowerName::new(&r.name) == *name)
                    {
                        record.name = original.clone();
                    }
                }
                let additionals =
                    (!additionals.is_empty()).then_some(LookupRecords::Section(additionals));
                LookupControlFlow::Continue(Ok(AuthLookup::answers(
                    LookupRecords::Section(answers),
                    additionals,
                )))
            }
            Answer::NoData => LookupControlFlow::Continue(Err(LookupError::NameExists)),
            Answer::NxDomain => {
                LookupControlFlow::Continue(Err(LookupError::from(ResponseCode::NXDomain)))
            }
            Answer::Refused => {
                LookupControlFlow::Break(Err(LookupError::from(ResponseCode::Refused)))
            }
        }
    }
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
        self.answer(name, rtype, None)
    }

    async fn search(
        &self,
        request: &Request,
        _lookup_options: LookupOptions,
    ) -> (LookupControlFlow<AuthLookup>, Option<TSigResponseContext>) {
        let info = match request.request_info() {
            Ok(info) => info,
            Err(e) => return (LookupControlFlow::Break(Err(e)), None),
        };
        let query = info.query;
        (
            self.answer(
                query.name(),
                query.query_type(),
                Some(query.original().name()),
            ),
            None,
        )
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
            .ns
            .iter()
            .cloned()
            .map(|r| Arc::new(RecordSet::from(r)))
            .collect();
        for (name, entry) in snapshot.names.iter() {
            if !self.origin.zone_of(name) {
                continue; // reverse names live in other zones
            }
            sets.extend(entry.all().cloned().map(|r| Arc::new(RecordSet::from(r))));
        }
        info!(%src, records = sets.len(), serial = snapshot.revision, "zone transfer");
        let soa = Arc::new(RecordSet::from(snapshot.soa.clone()));
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
