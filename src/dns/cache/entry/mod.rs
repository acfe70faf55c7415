//! One cached answer in wire form (pure): the reply an upstream gave, where its TTL fields are,
//! and how long it may be served. Writing it for a client copies the bytes, puts in the
//! client's ID, RD, CD and question as asked (same length, so every compression pointer into
//! the question stays valid), counts every TTL down by the time it spent here, and applies the
//! size rules of [`crate::dns::reply`].

use crate::dns::reply::Limit;
use crate::wire::{FLAG_CD, FLAG_RD, FLAG_TC, HEADER_LEN, POINTER_BITS, RCODE_BITS};

/// Longest a positive answer is kept, and the largest TTL we send (unbound's cache-max-ttl).
pub const MAX_TTL: u32 = 86_400;
/// Longest a negative answer is kept (unbound's cache-max-negative-ttl; RFC 2308 §5 suggests
/// one to three hours).
pub const MAX_NEGATIVE_TTL: u32 = 3_600;
/// Largest reply kept: one answer must not flush a whole shard of a small cache.
pub const MAX_REPLY: usize = 16 * 1024;
/// TTL of every record of a stale answer (RFC 8767 §4: 30 s).
pub const STALE_TTL: u32 = 30;
/// RR type of OPT, whose TTL field holds the extended RCODE and flags, not a TTL.
const TYPE_OPT: u16 = 41;
/// RR type of SOA.
const TYPE_SOA: u16 = 6;
/// RCODE NXDOMAIN.
const NXDOMAIN: u8 = 3;

/// A reply as it is kept, with the offsets of everything a client's copy changes.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The reply as the upstream path encoded it.
    reply: Box<[u8]>,
    /// Offset of every TTL field (OPT's excepted) and the TTL to count down from there.
    ttls: Box<[(u16, u32)]>,
    /// Length of the question section.
    question_len: u16,
    /// Offset of the additional section.
    additional_at: u16,
    /// True when the additional section holds records besides OPT (which can be dropped).
    extra_additional: bool,
    /// Where the OPT record is, if any.
    opt: Option<(u16, u16)>,
    /// Seconds the whole entry may be served from when it was stored.
    pub lifetime: u32,
    /// True for an answer served stale (RFC 8767) after the upstream failed.
    pub stale: bool,
}

fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// The offset after the (possibly compressed) name at `at`.
fn skip_name(bytes: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *bytes.get(at)?;
        if len & POINTER_BITS == POINTER_BITS {
            return Some(at + 2);
        }
        if len & POINTER_BITS != 0 {
            return None; // extended label types
        }
        at += 1 + len as usize;
        if len == 0 {
            return Some(at);
        }
    }
}

/// How long a cache may keep `reply` (a whole DNS message): its smallest TTL, or for a negative
/// answer min(SOA TTL, MINIMUM); `None` when it should not be cached at all (see
/// [`Entry::parse`]). DNS over HTTPS sends it as `Cache-Control: max-age` (RFC 8484 §5.1).
pub fn max_age(reply: &[u8]) -> Option<u32> {
    let question_len = skip_name(reply, HEADER_LEN)? + 4 - HEADER_LEN;
    Entry::parse(reply, question_len).map(|entry| entry.lifetime)
}

impl Entry {
    /// Reads a complete reply (`question_len` bytes of question after the header) worth
    /// keeping: NOERROR with answers (kept for their smallest TTL), or NXDOMAIN/NODATA with an
    /// SOA in the authority section (kept for min(SOA TTL, MINIMUM), RFC 2308 §5). `None` for
    /// anything else: other RCODEs, TC, a TTL of 0, a negative answer without SOA, or bytes
    /// that do not read cleanly.
    pub fn parse(reply: &[u8], question_len: usize) -> Option<Self> {
        if reply.len() > MAX_REPLY || *reply.get(2)? & FLAG_TC != 0 || be16(reply, 4)? != 1 {
            return None;
        }
        let rcode = *reply.get(3)? & RCODE_BITS;
        if rcode != 0 && rcode != NXDOMAIN {
            return None;
        }
        let counts = [be16(reply, 6)?, be16(reply, 8)?, be16(reply, 10)?];
        let mut at = HEADER_LEN + question_len;
        if skip_name(reply, HEADER_LEN)? + 4 != at {
            return None;
        }
        let mut ttls = Vec::new();
        let (mut opt, mut extra_additional, mut additional_at) = (None, false, at);
        let mut smallest = u32::MAX;
        let mut soa = None;
        for (section, count) in counts.into_iter().enumerate() {
            if section == 2 {
                additional_at = at;
            }
            for _ in 0..count {
                let start = at;
                let fixed = skip_name(reply, at)?;
                let rtype = be16(reply, fixed)?;
                let ttl = be32(reply, fixed + 4)?;
                let rdata = fixed + 10;
                at = rdata + be16(reply, fixed + 8)? as usize;
                if at > reply.len() {
                    return None;
                }
                if rtype == TYPE_OPT {
                    opt = Some((start as u16, (at - start) as u16));
                    continue;
                }
                if section == 1 && rtype == TYPE_SOA {
                    // MINIMUM is the last field of the RDATA.
                    soa = Some((ttls.len(), ttl.min(be32(reply, at.checked_sub(4)?)?)));
                }
                extra_additional |= section == 2;
                let ttl = ttl.min(MAX_TTL);
                smallest = smallest.min(ttl);
                ttls.push(((fixed + 4) as u16, ttl));
            }
        }
        if at != reply.len() {
            return None;
        }
        let lifetime = if rcode == NXDOMAIN || counts[0] == 0 {
            let (at, negative) = soa?;
            let negative = negative.min(MAX_NEGATIVE_TTL);
            // RFC 2308 §3: the SOA's TTL in a negative answer is min(TTL, MINIMUM).
            ttls[at].1 = negative;
            negative
        } else {
            smallest
        };
        (lifetime > 0).then(|| Self {
            reply: reply.into(),
            ttls: ttls.into_boxed_slice(),
            question_len: question_len as u16,
            additional_at: additional_at as u16,
            extra_additional,
            opt,
            lifetime,
            stale: false,
        })
    }

    /// Bytes this entry holds, for the cache's budget.
    pub fn cost(&self) -> usize {
        self.reply.len() + self.ttls.len() * std::mem::size_of::<(u16, u32)>()
    }

    /// The same answer to be served stale: every TTL [`STALE_TTL`], for that long.
    pub fn staled(&self) -> Self {
        let mut entry = self.clone();
        for (_, ttl) in entry.ttls.iter_mut() {
            *ttl = STALE_TTL;
        }
        entry.lifetime = STALE_TTL;
        entry.stale = true;
        entry
    }

    /// Writes this answer to a client into `out` (emptied first): `head` is the first four
    /// bytes of its query (ID, flags), `question` its question section as asked, `elapsed`
    /// the whole seconds since the entry was stored. Too large for `limit`: the additional
    /// section goes (OPT stays), then answers and authority, with TC. `false` when the
    /// question does not fit this entry (another length), and nothing is written.
    pub fn write(
        &self,
        out: &mut Vec<u8>,
        head: [u8; 4],
        question: &[u8],
        elapsed: u32,
        limit: Limit,
    ) -> bool {
        let question_end = HEADER_LEN + self.question_len as usize;
        if question.len() != self.question_len as usize {
            return false;
        }
        out.clear();
        out.extend_from_slice(&self.reply);
        out[..2].copy_from_slice(&head[..2]);
        out[2] = (out[2] & !FLAG_RD) | (head[2] & FLAG_RD);
        out[3] = (out[3] & !FLAG_CD) | (head[3] & FLAG_CD);
        out[HEADER_LEN..question_end].copy_from_slice(question);
        for &(at, ttl) in self.ttls.iter() {
            let at = at as usize;
            out[at..at + 4].copy_from_slice(&ttl.saturating_sub(elapsed).to_be_bytes());
        }
        if out.len() <= limit.size {
            return true;
        }
        let opt = self
            .opt
            .map(|(at, len)| &self.reply[at as usize..(at + len) as usize]);
        let opt_count = u16::from(opt.is_some());
        if self.extra_additional
            && (self.additional_at as usize + opt.map_or(0, <[u8]>::len)) <= limit.size
        {
            // RFC 2181 §9: dropping the additional section needs no TC.
            out.truncate(self.additional_at as usize);
            out.extend_from_slice(opt.unwrap_or_default());
            out[10..12].copy_from_slice(&opt_count.to_be_bytes());
            return true;
        }
        // As `reply::fit`: over UDP header, question and OPT with TC. TCP's limit is the
        // largest message, which no entry exceeds.
        out.truncate(question_end);
        out.extend_from_slice(opt.unwrap_or_default());
        out[2] |= FLAG_TC;
        out[6..10].fill(0);
        out[10..12].copy_from_slice(&opt_count.to_be_bytes());
        true
    }
}

#[cfg(test)]
mod tests;
