//! The answer to a query of a signed zone that asks for DNSSEC (DO), or for the DNSKEY set:
//! the same records as an unsigned answer, each set with its RRSIG, and denials proven by one
//! NSEC at the query name (compact answers, RFC 9824: a missing name answers NOERROR with
//! NXNAME in the NSEC's types, a missing type answers the name's types).

use std::sync::atomic::Ordering;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use super::cache::{SigKey, Version};
use super::sign::{self, name_owned, pointer_owned, push_rrsig, rrsig_tail_len, types, SetToSign};
use super::{unix_now, Dnssec, ZoneSigner};
use crate::dns::live::{self, Found, NearClient, Room};
use crate::table::Snapshot;
use crate::wire::pick::{Cut, Picks};
use crate::wire::{Near, RRsetRef, ReplyBody, WireQuery, HEADER_LEN, POINTER_BITS, QNAME_POINTER};

/// What a signed answer was shaped by, for the counters.
#[derive(Debug, Default, Clone, Copy)]
pub struct Shape {
    /// Records of a large set left out.
    pub cut: Cut,
    /// What locality made of it.
    pub near: Near,
    /// The query asked for compact answers with NXDOMAIN (CO): the reply says CO too (RFC
    /// 9824 §5).
    pub compact_ok: bool,
}

/// The records that go after each section's own: RRSIGs, and the denial's NSEC.
#[derive(Debug, Default)]
struct Extra {
    bytes: Vec<u8>,
    answer: (usize, u16),
    authority: (usize, u16),
    additional: (usize, u16),
}

/// A thread's buffers for signed answers.
#[derive(Debug, Default)]
struct Buffers {
    /// The DNSSEC records of each section ([`Extra::bytes`]).
    extra: Vec<u8>,
    /// The answers with their RRSIG.
    answers: Vec<u8>,
    /// The additional records with theirs.
    additional: Vec<u8>,
}

thread_local! {
    /// This thread's [`Buffers`], lent to one answer at a time.
    static SCRATCH: std::cell::RefCell<Buffers> = std::cell::RefCell::new(Buffers::default());
}

/// The question as the signed path reads it.
#[derive(Debug)]
struct Asked<'q> {
    /// Lowercase question name.
    name: &'q [u8],
    qtype: u16,
    dnssec_ok: bool,
    /// DO and CO: a missing name answers NXDOMAIN (RFC 9824 §5).
    compact_ok: bool,
    /// Where the zone starts in `name`.
    zone_at: usize,
    rotate: usize,
    room: Room,
    /// Unix seconds.
    now: u64,
}

/// A pointer to where the zone starts in the question name.
fn zone_pointer(zone_at: usize) -> [u8; 2] {
    (u16::from(POINTER_BITS) << 8 | (HEADER_LEN + zone_at) as u16).to_be_bytes()
}

/// TTL of the SOA record of `tail` (type, class, TTL, …) and its MINIMUM (the last field).
fn soa_ttls(tail: &[u8]) -> (u32, u32) {
    let field = |at: usize| {
        tail.get(at..at + 4)
            .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    (field(4), field(tail.len().saturating_sub(4)))
}

impl Dnssec {
    /// Signs `set` into `out` (after its owner), counting it.
    fn sign(
        &self,
        signer: &ZoneSigner,
        set: &SetToSign<'_>,
        now: u64,
        out: &mut Vec<u8>,
    ) -> Option<()> {
        self.stats.signed.fetch_add(1, Ordering::Relaxed);
        push_rrsig(out, &signer.key, set, now)
    }

    /// Appends the cached records for `key` at `version`, or makes them with `make` (which
    /// appends them and says how long they may be reused) and caches them.
    fn cached(
        &self,
        key: SigKey<'_>,
        version: Version,
        now: u64,
        out: &mut Vec<u8>,
        make: impl FnOnce(&mut Vec<u8>) -> Option<u64>,
    ) -> Option<bool> {
        if self.cache.append(&key, &version, now, out) {
            return Some(true);
        }
        let start = out.len();
        let until = make(out)?;
        self.cache.store(&key, version, now, until, &out[start..]);
        Some(false)
    }

    /// The RRSIG of a set owned by `owner` (records of `rrs`, pointer-owned) written after
    /// `owner_bytes`, cached per `version`.
    #[allow(clippy::too_many_arguments)]
    fn set_rrsig(
        &self,
        signer: &ZoneSigner,
        key: SigKey<'_>,
        version: Version,
        ttl_rrs: &[u8],
        rrs: &[&[u8]],
        now: u64,
        out: &mut Vec<u8>,
    ) -> Option<bool> {
        self.cached(key, version, now, out, |out| {
            let rdatas: Vec<&[u8]> = rrs
                .iter()
                .flat_map(|r| pointer_owned(r))
                .map(|(_, d)| d)
                .collect();
            let ttl = pointer_owned(ttl_rrs).next().map_or(0, |(ttl, _)| ttl);
            let set = SetToSign {
                owner: key.name,
                rtype: key.rtype,
                ttl,
                rdatas,
            };
            self.sign(signer, &set, now, out)?;
            Some(sign::validity(now, ttl).2)
        })
    }

    /// RRSIGs of the additional records `extra` (owners written out): one per run of one
    /// owner and type, each written after its owner; the count.
    fn extra_rrsigs(
        &self,
        signer: &ZoneSigner,
        extra: &[u8],
        now: u64,
        out: &mut Vec<u8>,
    ) -> Option<u16> {
        // One RRSIG per owner and type, wherever in the section their records lie: a
        // validator gathers an RRset from the whole section.
        let mut records: Vec<_> = name_owned(extra)
            .map(|(owner, rtype, ttl, rdata)| {
                (owner.to_ascii_lowercase(), rtype, ttl, rdata, owner)
            })
            .collect();
        records.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        let mut count = 0u16;
        for run in records.chunk_by(|a, b| a.0 == b.0 && a.1 == b.1) {
            let (lower, rtype, ttl, _, owner) = &run[0];
            let set = SetToSign {
                owner: lower,
                rtype: *rtype,
                ttl: *ttl,
                rdatas: run.iter().map(|r| r.3).collect(),
            };
            out.extend_from_slice(owner);
            self.sign(signer, &set, now, out)?;
            count += 1;
        }
        Some(count)
    }

    /// Writes the signed reply to `query` (a name of `signer`'s zone, which starts at
    /// `zone_at`) with `write`: as [`live::live_body`] answers it, with RRSIGs when the query
    /// has DO, and the DNSKEY set at the apex.
    #[allow(clippy::too_many_arguments)]
    pub fn answer(
        &self,
        signer: &ZoneSigner,
        snapshot: &Snapshot,
        query: &WireQuery<'_>,
        zone_at: usize,
        rotate: usize,
        room: Room,
        near: Option<NearClient>,
        picks: &mut Picks,
        write: impl FnOnce(&mut ReplyBody<'_>),
    ) -> Shape {
        // This thread's buffers, reused answer after answer: nothing allocated once grown.
        let mut buffers = SCRATCH.with_borrow_mut(std::mem::take);
        let mut extra = Extra {
            bytes: std::mem::take(&mut buffers.extra),
            ..Extra::default()
        };
        extra.bytes.clear();
        let mut body = ReplyBody {
            authoritative: true,
            ..ReplyBody::default()
        };
        let mut shape = Shape::default();
        let found = live::find(snapshot, query.name(), query.qtype, zone_at, near);
        // Room for the answer's RRSIG (its owner is a pointer).
        let room = Room {
            bytes: room.bytes.saturating_sub(2 + rrsig_tail_len(&signer.key)),
            ..room
        };
        let asked = Asked {
            name: query.name(),
            qtype: query.qtype,
            dnssec_ok: query.edns.is_some_and(|e| e.dnssec_ok),
            compact_ok: query.edns.is_some_and(|e| e.dnssec_ok && e.compact_ok),
            zone_at,
            rotate,
            room,
            now: unix_now(),
        };
        let signed = self.fill(
            signer, found, &asked, picks, &mut body, &mut extra, &mut shape,
        );
        if signed.is_none() {
            body = ReplyBody {
                rcode: ResponseCode::ServFail.low(),
                ..ReplyBody::default()
            };
            extra.bytes.clear();
            extra.answer = (0, 0);
            extra.authority = (0, 0);
            extra.additional = (0, 0);
        }
        // Each section's DNSSEC records after its own: the answers and the additional records
        // copied with their signatures, the authority's (after the SOA) as they are. The
        // unsigned path's writer is the same and pays nothing for it.
        let (a, au) = (extra.answer.0, extra.authority.0);
        let answers = &mut buffers.answers;
        answers.clear();
        answers.extend_from_slice(body.answers.0);
        answers.extend_from_slice(body.answers.1);
        answers.extend_from_slice(&extra.bytes[..a]);
        let additional = &mut buffers.additional;
        additional.clear();
        additional.extend_from_slice(body.additional.0);
        additional.extend_from_slice(&extra.bytes[a + au..a + au + extra.additional.0]);
        body.answers = (answers, &[], body.answers.2 + extra.answer.1);
        // Live answers carry no authority records besides the SOA.
        body.authority = (&extra.bytes[a..a + au], extra.authority.1);
        body.additional = (additional, body.additional.1 + extra.additional.1);
        shape.cut = body.cut;
        shape.compact_ok = asked.compact_ok;
        write(&mut body);
        buffers.extra = extra.bytes;
        SCRATCH.with_borrow_mut(|kept| *kept = buffers);
        shape
    }

    /// `body` and `extra` for what was `found` for the question `asked`.
    #[allow(clippy::too_many_arguments)]
    fn fill<'b>(
        &self,
        signer: &'b ZoneSigner,
        found: Found<'b>,
        asked: &Asked<'_>,
        picks: &'b mut Picks,
        body: &mut ReplyBody<'b>,
        extra: &mut Extra,
        shape: &mut Shape,
    ) -> Option<()> {
        let (name, zone_at, now) = (asked.name, asked.zone_at, asked.now);
        match found {
            Found::Fail => {
                body.authoritative = false;
                body.rcode = ResponseCode::ServFail.low();
            }
            // RFC 9824 §3.5: NXNAME is a meta-type, never asked for.
            _ if asked.qtype == types::NXNAME => body.rcode = ResponseCode::FormErr.low(),
            // As Knot's onlinesign: signatures are made per answer, not kept to be listed.
            _ if asked.qtype == types::RRSIG => {
                body.authoritative = false;
                body.rcode = ResponseCode::Refused.low();
            }
            // The NSEC a denial at this name would carry, as the answer.
            Found::NxDomain(zone) | Found::NoData(zone, _)
                if asked.qtype == types::NSEC && asked.dnssec_ok =>
            {
                let node = match found {
                    Found::NoData(_, node) => node,
                    _ => None,
                };
                let start = extra.bytes.len();
                self.nsec(signer, zone, zone_at, name, node, now, &mut extra.bytes)?;
                extra.answer = (extra.bytes.len() - start, 2);
            }
            _ if zone_at == 0 && asked.qtype == u16::from(RecordType::DNSKEY) => {
                let set = signer.dnskey.as_ref();
                body.answers = (set.rrs, &[], set.count);
                if asked.dnssec_ok {
                    self.answer_rrsig(
                        signer,
                        name,
                        set,
                        Version::Fixed,
                        0,
                        &[set.rrs],
                        now,
                        extra,
                    )?;
                }
            }
            Found::Soa(zone) => {
                body.answers = (&QNAME_POINTER, &zone.soa_tail, 1);
                let start = extra.bytes.len();
                self.soa_rrsig(signer, zone, 0, now, &mut extra.bytes)?;
                extra.answer = (extra.bytes.len() - start, 1);
            }
            Found::Ns(zone) => {
                let set = zone.ns_rrset();
                let (first, second) = set.rotated(asked.rotate);
                body.answers = (first, second, set.count);
                self.answer_rrsig(signer, name, set, Version::Fixed, 0, &[set.rrs], now, extra)?;
            }
            Found::NxDomain(zone) => {
                // Compact answer: NOERROR, the name "exists" with only NSEC and RRSIG; NXDOMAIN
                // for a querier that said it understands (CO).
                if asked.compact_ok {
                    body.rcode = ResponseCode::NXDomain.low();
                }
                body.soa = Some((&*zone.soa_tail, zone_at));
                self.denial(signer, zone, zone_at, name, None, now, extra)?;
            }
            Found::NoData(zone, node) => {
                body.soa = Some((&*zone.soa_tail, zone_at));
                self.denial(signer, zone, zone_at, name, node, now, extra)?;
            }
            Found::Set {
                node,
                set,
                near,
                local,
                ..
            } => {
                shape.near = near;
                body.near = near;
                let variant = if near == Near::Local { 1 + local } else { 0 };
                return self.answer_set(
                    signer, name, node, set, variant, asked, picks, body, extra, shape,
                );
            }
        }
        Some(())
    }

    /// The answer's RRSIG over `set` into `extra` (owned by the question name).
    #[allow(clippy::too_many_arguments)]
    fn answer_rrsig(
        &self,
        signer: &ZoneSigner,
        name: &[u8],
        set: RRsetRef<'_>,
        version: Version,
        variant: u16,
        rrs: &[&[u8]],
        now: u64,
        extra: &mut Extra,
    ) -> Option<bool> {
        let start = extra.bytes.len();
        extra.bytes.extend_from_slice(&QNAME_POINTER);
        let key = SigKey {
            name,
            rtype: set.rtype,
            variant,
            subset: 0,
        };
        let hit = self.set_rrsig(signer, key, version, set.rrs, rrs, now, &mut extra.bytes)?;
        extra.answer = (extra.bytes.len() - start, 1);
        Some(hit)
    }
}

mod denial;
mod set;
