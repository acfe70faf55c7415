//! Pre-encoded RRsets: records stored in wire form once, when the table changes, and copied
//! into answers as they are.

use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecoder, BinEncodable, BinEncoder, Restrict};

use super::name::wire_name_cased;
use super::spread::{SpreadInput, SpreadRef};
use super::QNAME_POINTER;

/// One pre-encoded RRset: its records (owner = pointer to the question) and, for SRV, the
/// targets' addresses for the additional section (full owner names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RRset {
    /// Record type.
    pub rtype: u16,
    /// Number of records in `rrs`.
    pub count: u16,
    /// The records, back to back.
    pub rrs: Box<[u8]>,
    /// Number of records in `extra`.
    pub extra_count: u16,
    /// Additional-section records, back to back.
    pub extra: Box<[u8]>,
    /// Where each record starts, its weight and priority, its additional records
    /// ([`super::spread`]); empty for a set of one record.
    pub spread: Box<[u8]>,
}

/// Type, class, TTL, RDLENGTH and RDATA of `record`, names uncompressed (the bytes are reused
/// in other messages, where pointers would be wrong).
pub fn rr_tail(record: &Record) -> Vec<u8> {
    let mut rdata = Vec::with_capacity(32);
    {
        let mut encoder = BinEncoder::new(&mut rdata);
        encoder.set_canonical_form(true);
        // RDATA of at most a few hundred bytes cannot fail to encode.
        let _ = record.data.emit(&mut encoder);
    }
    let mut out = Vec::with_capacity(10 + rdata.len());
    out.extend_from_slice(&u16::from(record.record_type()).to_be_bytes());
    out.extend_from_slice(&u16::from(record.dns_class).to_be_bytes());
    out.extend_from_slice(&record.ttl.to_be_bytes());
    out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    out.extend_from_slice(&rdata);
    out
}

impl RRset {
    /// Encodes `records` (one owner, one type) and `extra` (any owners).
    pub fn encode(records: &[Record], extra: &[Record]) -> Self {
        let mut rrs = Vec::with_capacity(records.len() * 16);
        for record in records {
            rrs.extend_from_slice(&QNAME_POINTER);
            rrs.extend_from_slice(&rr_tail(record));
        }
        let mut extra_bytes = Vec::new();
        for record in extra {
            extra_bytes.extend_from_slice(&wire_name_cased(&record.name));
            extra_bytes.extend_from_slice(&rr_tail(record));
        }
        let mut set = Self {
            rtype: records.first().map_or(0, |r| r.record_type().into()),
            count: records.len() as u16,
            rrs: rrs.into_boxed_slice(),
            extra_count: extra.len() as u16,
            extra: extra_bytes.into_boxed_slice(),
            spread: Box::default(),
        };
        set.spread = set.plain_spread();
        set
    }

    /// A set of type `rtype` from RDATA already in wire form (names uncompressed), every record
    /// at `ttl` (RFC 2181 §5.2: one TTL per RRset).
    pub fn from_rdata<'a>(
        rtype: u16,
        ttl: u32,
        rdatas: impl IntoIterator<Item = &'a [u8], IntoIter: Clone>,
    ) -> Self {
        let rdatas = rdatas.into_iter();
        // Sized up front: one allocation, and no shrinking copy into the box.
        let size = rdatas
            .clone()
            .map(|r| QNAME_POINTER.len() + 10 + r.len())
            .sum();
        let mut rrs = Vec::with_capacity(size);
        let mut count = 0u16;
        for rdata in rdatas {
            rrs.extend_from_slice(&QNAME_POINTER);
            push_rr_tail(&mut rrs, rtype, ttl, rdata);
            count = count.saturating_add(1);
        }
        let mut set = Self {
            rtype,
            count,
            rrs: rrs.into_boxed_slice(),
            extra_count: 0,
            extra: Box::default(),
            spread: Box::default(),
        };
        set.spread = set.plain_spread();
        set
    }

    /// Where each record starts in `rrs`, then `rrs.len()`.
    pub fn record_starts(&self) -> Vec<u32> {
        let mut starts = Vec::with_capacity(self.count as usize + 1);
        let mut at = 0;
        while at < self.rrs.len() {
            starts.push(at as u32);
            at += rr_len(&self.rrs[at..]);
        }
        starts.push(self.rrs.len() as u32);
        starts
    }

    /// The spread of equally weighted records: where each starts.
    fn plain_spread(&self) -> Box<[u8]> {
        if self.count < 2 {
            return Box::default();
        }
        SpreadInput {
            starts: self.record_starts(),
            ..SpreadInput::default()
        }
        .encode()
    }

    /// Adds an additional-section record owned by `owner` (wire form).
    pub fn push_extra(&mut self, owner: &[u8], rtype: u16, ttl: u32, rdata: &[u8]) {
        let mut extra = std::mem::take(&mut self.extra).into_vec();
        extra.extend_from_slice(owner);
        push_rr_tail(&mut extra, rtype, ttl, rdata);
        self.extra = extra.into_boxed_slice();
        self.extra_count = self.extra_count.saturating_add(1);
    }

    /// A borrowed view of this set, as the query path reads sets out of table nodes.
    pub fn as_ref(&self) -> RRsetRef<'_> {
        RRsetRef {
            rtype: self.rtype,
            count: self.count,
            rrs: &self.rrs,
            extra_count: self.extra_count,
            extra: &self.extra,
            spread: &self.spread,
        }
    }
}

/// A pre-encoded RRset borrowed from where it is stored (a table node or an [`RRset`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RRsetRef<'a> {
    /// Record type.
    pub rtype: u16,
    /// Number of records in `rrs`.
    pub count: u16,
    /// The records, back to back, each owned by a pointer to the question name.
    pub rrs: &'a [u8],
    /// Number of records in `extra`.
    pub extra_count: u16,
    /// Additional-section records, back to back.
    pub extra: &'a [u8],
    /// Its spread ([`super::spread`]); empty for a set of one record.
    pub spread: &'a [u8],
}

impl<'a> RRsetRef<'a> {
    /// The records decoded, owned by `owner` (for zone transfers and tests: slow, never on
    /// the query path). Each stored record is the question pointer, then type, class, TTL,
    /// RDLENGTH and RDATA with names uncompressed, so RDATA decodes on its own.
    pub fn records(&self, owner: &Name) -> Vec<Record> {
        let mut out = Vec::with_capacity(self.count as usize);
        let mut rest = self.rrs;
        while rest.len() >= 12 {
            let len = rr_len(rest).min(rest.len());
            let (rr, next) = rest.split_at(len);
            rest = next;
            let field = |at: usize| u16::from_be_bytes([rr[at], rr[at + 1]]);
            let ttl = u32::from_be_bytes([rr[6], rr[7], rr[8], rr[9]]);
            let rtype = RecordType::from(field(2));
            let mut decoder = BinDecoder::new(&rr[12..]);
            let rdlen = Restrict::new((rr.len() - 12) as u16);
            if let Ok(data) = RData::read(&mut decoder, rtype, rdlen) {
                let mut record = Record::from_rdata(owner.clone(), ttl, data);
                record.dns_class = DNSClass::from(field(4));
                out.push(record);
            }
        }
        out
    }

    /// The records split at record `start` (mod count): write `.0` then `.1` to rotate. O(1):
    /// the spread says where each record starts.
    pub fn rotated(&self, start: usize) -> (&'a [u8], &'a [u8]) {
        let Some(spread) = SpreadRef::new(self.spread).filter(|s| s.len() > 1) else {
            return (self.rrs, &[]);
        };
        let at = spread.start(start % spread.len()).min(self.rrs.len());
        (&self.rrs[at..], &self.rrs[..at])
    }
}

/// Appends type, class IN, TTL, RDLENGTH and `rdata`.
fn push_rr_tail(out: &mut Vec<u8>, rtype: u16, ttl: u32, rdata: &[u8]) {
    out.extend_from_slice(&rtype.to_be_bytes());
    out.extend_from_slice(&u16::from(DNSClass::IN).to_be_bytes());
    out.extend_from_slice(&ttl.to_be_bytes());
    out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    out.extend_from_slice(rdata);
}

/// Length of the pointer-owned record at the start of `rrs`.
fn rr_len(rrs: &[u8]) -> usize {
    match rrs.get(10..12) {
        Some(len) => 12 + u16::from_be_bytes([len[0], len[1]]) as usize,
        None => rrs.len(),
    }
}
