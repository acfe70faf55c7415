//! The live zone's configuration and its apex (SOA and NS), built once per zone (pure).

use std::collections::HashMap;
use std::sync::Arc;

use hickory_proto::rr::rdata::{NS, SOA};
use hickory_proto::rr::{LowerName, Name, RData, Record};

use crate::wire::{rr_tail, wire_name, RRset, RRsetRef, WireName};

/// Default TTL of live records (`--ttl`): a lost registration outlives itself in caches by at
/// most this long.
pub const DEFAULT_TTL: u32 = 5;
/// Default negative TTL (`--negative-ttl`): how long caches remember a miss.
pub const DEFAULT_NEGATIVE_TTL: u32 = 5;
/// SOA refresh: secondaries that follow us by AXFR poll this often (seconds).
const SOA_REFRESH: i32 = 60;
/// SOA retry after a failed refresh (seconds).
const SOA_RETRY: i32 = 10;
/// SOA expire: a secondary stops answering after this long without us (seconds).
const SOA_EXPIRE: i32 = 3600;

/// What the table needs to know about the zone it serves.
#[derive(Debug, Clone)]
pub struct ZoneConfig {
    /// The live zone, for example `services.local.`.
    pub zone: Name,
    /// TTL of records whose value names none.
    pub ttl: u32,
    /// TTL of negative answers, and the SOA MINIMUM.
    pub negative_ttl: u32,
    /// Records from a zone file for the live zone itself (`zones/<zone>.zone`), if any.
    pub statics: Option<Arc<StaticRecords>>,
}

/// What a zone file for the live zone contributes: SOA fields, NS set, static records.
#[derive(Debug, Clone, Default)]
pub struct StaticRecords {
    /// The file's SOA: its names and timers are used, the serial becomes the etcd revision.
    pub soa: Option<SOA>,
    /// The file's apex NS records.
    pub ns: Vec<Record>,
    /// Every other record, by owner name.
    pub names: HashMap<LowerName, Vec<Record>>,
}

impl ZoneConfig {
    /// Zone `zone` with the default TTLs and no zone file.
    pub fn new(zone: Name) -> Self {
        Self {
            zone,
            ttl: DEFAULT_TTL,
            negative_ttl: DEFAULT_NEGATIVE_TTL,
            statics: None,
        }
    }

    /// The zone's default NS target, `ns.<zone>`, when no zone file names one.
    pub fn ns_name(&self) -> Name {
        Name::from_ascii("ns")
            .and_then(|ns| ns.append_domain(&self.zone))
            .unwrap_or_else(|_| self.zone.clone())
    }

    /// The SOA record at the apex with `serial` (derived from the etcd revision of the last
    /// applied change).
    pub fn soa(&self, serial: u32) -> Record {
        let rname = Name::from_ascii("hostmaster")
            .and_then(|n| n.append_domain(&self.zone))
            .unwrap_or_else(|_| self.zone.clone());
        let soa = match self.statics.as_ref().and_then(|s| s.soa.as_ref()) {
            Some(file) => SOA::new(
                file.mname.clone(),
                file.rname.clone(),
                serial,
                file.refresh,
                file.retry,
                file.expire,
                self.negative_ttl,
            ),
            None => SOA::new(
                self.ns_name(),
                rname,
                serial,
                SOA_REFRESH,
                SOA_RETRY,
                SOA_EXPIRE,
                self.negative_ttl,
            ),
        };
        Record::from_rdata(self.zone.clone(), self.negative_ttl, RData::SOA(soa))
    }

    /// The NS records at the apex: the zone file's, or `ns.<zone>`.
    pub fn ns(&self) -> Vec<Record> {
        match &self.statics {
            Some(statics) if !statics.ns.is_empty() => statics.ns.clone(),
            _ => vec![Record::from_rdata(
                self.zone.clone(),
                self.ttl,
                RData::NS(NS(self.ns_name())),
            )],
        }
    }
}

/// The zone apex, built once per zone rather than once per snapshot.
#[derive(Debug)]
pub struct Apex {
    /// The zone's lowercase wire name.
    pub zone_name: WireName,
    /// The SOA with serial 0.
    soa: Record,
    /// The SOA after the owner name, serial 0.
    soa_tail: Box<[u8]>,
    /// The NS set.
    pub ns: Vec<Record>,
    /// The NS set, encoded.
    ns_rrset: RRset,
}

/// The SOA serial sits 20 bytes before the end of its RDATA (serial, refresh, retry, expire,
/// minimum: five 32-bit fields after the two names).
const SOA_SERIAL_FROM_END: usize = 20;

impl Apex {
    /// The apex of `config`'s zone.
    pub fn new(config: &ZoneConfig) -> Self {
        let soa = config.soa(0);
        let ns = config.ns();
        Self {
            zone_name: wire_name(&config.zone),
            soa_tail: rr_tail(&soa).into_boxed_slice(),
            soa,
            ns_rrset: RRset::encode(&ns, &[]),
            ns,
        }
    }

    /// The SOA record with `serial`.
    pub fn soa(&self, serial: u32) -> Record {
        let mut soa = self.soa.clone();
        if let RData::SOA(data) = &mut soa.data {
            data.serial = serial;
        }
        soa
    }

    /// The SOA after its owner name, as wire bytes with `serial` (for answers and authority
    /// sections).
    pub fn soa_tail(&self, serial: u32) -> Box<[u8]> {
        let mut tail = self.soa_tail.clone();
        if let Some(at) = tail.len().checked_sub(SOA_SERIAL_FROM_END) {
            tail[at..at + 4].copy_from_slice(&serial.to_be_bytes());
        }
        tail
    }

    /// The NS set, encoded.
    pub fn ns_rrset(&self) -> RRsetRef<'_> {
        self.ns_rrset.as_ref()
    }
}

/// The SOA serial of etcd revision `revision` shifted by `offset`: serial arithmetic (RFC 1982)
/// wraps at 2^32, so truncation keeps the order. The offset is 0 until etcd's revision goes
/// backwards (a wiped or restored etcd); see [`serial_offset_after`].
pub fn serial(revision: i64, offset: u32) -> u32 {
    (revision as u32).wrapping_add(offset)
}

/// True when serial `a` comes after `b` in RFC 1982 arithmetic.
pub fn serial_after(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 1 << 31
}

/// The offset that keeps the serial of `revision` from going backwards after a table that
/// published `previous`: `offset` as it is when that serial is not before `previous`, else one
/// that makes it `previous + 1`.
pub fn serial_offset_after(previous: u32, revision: i64, offset: u32) -> u32 {
    if serial_after(previous, serial(revision, offset)) {
        previous.wrapping_add(1).wrapping_sub(revision as u32)
    } else {
        offset
    }
}
