//! The live zone: a [`ZoneHandler`] over the watched [`Table`]. Lookups are hash-map reads on an
//! immutable snapshot, so a query never waits on the watcher and never touches etcd.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use hickory_server::proto::op::ResponseCode;
use hickory_server::proto::rr::{LowerName, Name, Record, RecordType, TSigResponseContext};
use hickory_server::server::{Request, RequestInfo};
use hickory_server::zone_handler::{
    AuthLookup, AxfrPolicy, LookupControlFlow, LookupError, LookupOptions, LookupRecords,
    ZoneHandler, ZoneTransfer, ZoneType,
};

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
        return match qtype {
            RecordType::SOA | RecordType::ANY => {
                Answer::Records(vec![snapshot.soa.clone()], Vec::new())
            }
            RecordType::NS => Answer::Records(vec![snapshot.ns.clone()], Vec::new()),
            _ => Answer::NoData,
        };
    }
    let Some(entry) = snapshot.names.get(name) else {
        return Answer::NxDomain;
    };
    entry_answer(entry, qtype, rotate)
}

fn entry_answer(entry: &NameEntry, qtype: RecordType, rotate: usize) -> Answer {
    let set: &[Record] = match qtype {
        RecordType::A => &entry.a,
        RecordType::AAAA => &entry.aaaa,
        RecordType::SRV => {
            if entry.srv.is_empty() {
                return Answer::NoData;
            }
            return Answer::Records(rotated(&entry.srv, rotate), entry.srv_additionals.clone());
        }
        RecordType::TXT => &entry.txt,
        RecordType::CNAME => entry.cname.as_slice(),
        // RFC 8482: one RRset, never the whole name.
        RecordType::ANY => [&entry.a, &entry.aaaa, &entry.srv, &entry.txt]
            .into_iter()
            .find(|set| !set.is_empty())
            .map(Vec::as_slice)
            .unwrap_or(entry.cname.as_slice()),
        _ => &[],
    };
    if !set.is_empty() {
        return Answer::Records(rotated(set, rotate), Vec::new());
    }
    // A name with a CNAME answers every other type with the CNAME (RFC 1034 §3.6.2).
    match &entry.cname {
        Some(cname) => Answer::Records(vec![cname.clone()], Vec::new()),
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

/// The live zone as hickory sees it.
pub struct LiveZone {
    origin: LowerName,
    table: Arc<Table>,
    /// Per-answer rotation counter; relaxed ordering is enough, it only spreads load.
    rotation: AtomicUsize,
}

impl LiveZone {
    /// A handler for `origin` over `table`.
    pub fn new(origin: &Name, table: Arc<Table>) -> Self {
        Self {
            origin: LowerName::new(origin),
            table,
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
        _request: &Request,
        _lookup_options: LookupOptions,
        _now: u64,
    ) -> Option<(
        Result<ZoneTransfer, LookupError>,
        Option<TSigResponseContext>,
    )> {
        Some((Err(LookupError::from(ResponseCode::Refused)), None))
    }
}
