//! RRSIG and NSEC records in wire form (pure but for the key's signature): the data a
//! signature covers (RFC 4034 §3.1.8.1, canonical form §6), how long it is valid, and the
//! compact denial of existence (RFC 9824).

use super::key::{ZoneKey, ALGORITHM};

/// RR type numbers used here.
pub mod types {
    /// NS.
    pub const NS: u16 = 2;
    /// CNAME.
    pub const CNAME: u16 = 5;
    /// SOA.
    pub const SOA: u16 = 6;
    /// PTR.
    pub const PTR: u16 = 12;
    /// MX.
    pub const MX: u16 = 15;
    /// SRV.
    pub const SRV: u16 = 33;
    /// RRSIG.
    pub const RRSIG: u16 = 46;
    /// NSEC.
    pub const NSEC: u16 = 47;
    /// DNSKEY.
    pub const DNSKEY: u16 = 48;
    /// NXNAME (RFC 9824): in an NSEC bitmap, "this name does not exist".
    pub const NXNAME: u16 = 128;
}

/// How far a signature's validity reaches beyond the TTL of what it covers, both ways: a
/// validator whose clock is this much off still accepts it. A signature is reused for half of
/// it, so every one served has at least its TTL and a minute left.
pub const SLACK_SECS: u32 = 120;

/// The longest TTL a signature's validity follows: a day.
pub const MAX_VALIDITY_TTL: u32 = 86_400;

/// The validity of a signature made at `now` (Unix seconds) over records of `ttl`:
/// (inception, expiration, reuse until). Expiration is the TTL plus [`SLACK_SECS`]: a
/// lease-bound record is vouched for about as long as a cache may keep it, not for days.
pub fn validity(now: u64, ttl: u32) -> (u32, u32, u64) {
    let inception = now.saturating_sub(u64::from(SLACK_SECS));
    // A TTL of years (a zone file's) must not push expiration out of serial arithmetic's reach.
    let ttl = ttl.min(MAX_VALIDITY_TTL);
    let expiration = now + u64::from(ttl) + u64::from(SLACK_SECS);
    // RFC 4034 §3.1.5: serial number arithmetic modulo 2^32.
    (
        inception as u32,
        expiration as u32,
        now + u64::from(SLACK_SECS / 2),
    )
}

/// The number of labels of a wire name (the root not counted, a leading `*` not counted).
fn labels(name: &[u8]) -> u8 {
    let mut count = 0u8;
    let mut at = 0;
    while let Some(&len) = name.get(at) {
        if len == 0 {
            break;
        }
        if !(at == 0 && len == 1 && name.get(1) == Some(&b'*')) {
            count = count.saturating_add(1);
        }
        at += 1 + usize::from(len);
    }
    count
}

/// Where the uncompressed wire name starting at `at` ends.
fn name_end(bytes: &[u8], mut at: usize) -> usize {
    while let Some(&len) = bytes.get(at) {
        at += 1 + usize::from(len);
        if len == 0 {
            break;
        }
    }
    at.min(bytes.len())
}

/// `rdata` in canonical form (RFC 4034 §6.2): the domain names inside the RDATA of NS, CNAME,
/// SOA, PTR, MX and SRV in lowercase. Names here are never compressed, and length bytes are
/// below 64, so lowercasing the bytes of a name changes only its letters.
fn canonical_rdata(rtype: u16, rdata: &[u8]) -> Vec<u8> {
    let mut out = rdata.to_vec();
    let names = match rtype {
        types::NS | types::CNAME | types::PTR => 0..name_end(rdata, 0),
        types::MX => 2..name_end(rdata, 2),
        types::SRV => 6..name_end(rdata, 6),
        types::SOA => 0..name_end(rdata, name_end(rdata, 0)),
        _ => 0..0,
    };
    if let Some(slice) = out.get_mut(names) {
        slice.make_ascii_lowercase();
    }
    out
}

/// One RRset to sign: owner (lowercase wire name), type, TTL and each record's RDATA.
#[derive(Debug)]
pub struct SetToSign<'a> {
    /// Owner name, lowercase wire form.
    pub owner: &'a [u8],
    /// Type.
    pub rtype: u16,
    /// Original TTL.
    pub ttl: u32,
    /// RDATA of each record, names uncompressed.
    pub rdatas: Vec<&'a [u8]>,
}

/// Bytes an RRSIG record of `key`'s zone takes after its owner: type, class, TTL, RDLENGTH,
/// 18 fixed bytes, the signer's name and the 64-byte signature.
pub fn rrsig_tail_len(key: &ZoneKey) -> usize {
    10 + 18 + key.zone_wire.len() + 64
}

/// Appends to `out` the RRSIG over `set` made at `now`, after its owner: type RRSIG, class IN,
/// TTL, RDLENGTH and RDATA. `None` if signing failed (the key cannot sign: never seen).
pub fn push_rrsig(out: &mut Vec<u8>, key: &ZoneKey, set: &SetToSign<'_>, now: u64) -> Option<()> {
    let (inception, expiration, _) = validity(now, set.ttl);
    let mut rdata = Vec::with_capacity(18 + key.zone_wire.len() + 64);
    rdata.extend_from_slice(&set.rtype.to_be_bytes());
    rdata.push(ALGORITHM);
    rdata.push(labels(set.owner));
    rdata.extend_from_slice(&set.ttl.to_be_bytes());
    rdata.extend_from_slice(&expiration.to_be_bytes());
    rdata.extend_from_slice(&inception.to_be_bytes());
    rdata.extend_from_slice(&key.tag.to_be_bytes());
    rdata.extend_from_slice(&key.zone_wire);
    // The signed data: the RDATA so far, then every record in canonical form and order.
    let mut records: Vec<Vec<u8>> = set
        .rdatas
        .iter()
        .map(|r| canonical_rdata(set.rtype, r))
        .collect();
    records.sort();
    records.dedup();
    let mut data = rdata.clone();
    for record in &records {
        data.extend_from_slice(set.owner);
        data.extend_from_slice(&set.rtype.to_be_bytes());
        data.extend_from_slice(&1u16.to_be_bytes());
        data.extend_from_slice(&set.ttl.to_be_bytes());
        data.extend_from_slice(&(record.len() as u16).to_be_bytes());
        data.extend_from_slice(record);
    }
    let signature = key.sign(&data)?;
    rdata.extend_from_slice(signature.as_ref());
    out.extend_from_slice(&types::RRSIG.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&set.ttl.to_be_bytes());
    out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    out.extend_from_slice(&rdata);
    Some(())
}

/// The RDATA of the NSEC at `owner` (lowercase wire name) that says which `types` it has: the
/// next name is `\000.owner`, the least name after it, so the NSEC covers no other name
/// (RFC 4470 §3, RFC 9824). RRSIG and NSEC are added to `types`.
pub fn nsec_rdata(owner: &[u8], types: &[u16]) -> Vec<u8> {
    let mut rdata = Vec::with_capacity(owner.len() + 2 + 34);
    rdata.extend_from_slice(&next_name(owner));
    let mut all: Vec<u16> = types.to_vec();
    all.extend_from_slice(&[types::RRSIG, types::NSEC]);
    all.sort_unstable();
    all.dedup();
    // Type bit maps (RFC 4034 §4.1.2): per window of 256 types, the bytes up to the last set bit.
    let mut at = 0;
    while at < all.len() {
        let window = all[at] >> 8;
        let mut bits = [0u8; 32];
        let mut len = 0;
        while at < all.len() && all[at] >> 8 == window {
            let low = usize::from(all[at] & 0xff);
            bits[low / 8] |= 0x80 >> (low % 8);
            len = low / 8 + 1;
            at += 1;
        }
        rdata.push(window as u8);
        rdata.push(len as u8);
        rdata.extend_from_slice(&bits[..len]);
    }
    rdata
}

/// The least name after `owner` in canonical order (RFC 4034 §6.1) that covers no other
/// name: `\000.owner`, or, when that would exceed 255 octets, `owner` with the last octet of
/// its first label raised by one (RFC 4471 §3.1.2: no longer name can lie between them),
/// stepping over the capitals, which sort as their lowercase.
fn next_name(owner: &[u8]) -> Vec<u8> {
    if owner.len() + 2 <= crate::wire::MAX_NAME_WIRE {
        let mut next = vec![1, 0];
        next.extend_from_slice(owner);
        return next;
    }
    let mut next = owner.to_vec();
    let last = usize::from(owner.first().copied().unwrap_or(0));
    if let Some(byte) = next.get_mut(last).filter(|_| last > 0) {
        *byte = match byte.saturating_add(1) {
            b'A'..=b'Z' => b'[',
            raised => raised,
        };
    }
    next
}

/// Each pointer-owned record of `rrs` (the answer form: a 2-byte pointer, type, class, TTL,
/// RDLENGTH, RDATA): its TTL and RDATA.
pub fn pointer_owned(rrs: &[u8]) -> impl Iterator<Item = (u32, &[u8])> {
    let mut rest = rrs;
    std::iter::from_fn(move || {
        let head = rest.get(..12)?;
        let len = usize::from(u16::from_be_bytes([head[10], head[11]]));
        let rdata = rest.get(12..12 + len)?;
        let ttl = u32::from_be_bytes([head[6], head[7], head[8], head[9]]);
        rest = &rest[12 + len..];
        Some((ttl, rdata))
    })
}

/// Each record of `rrs` written with its owner name (the additional section's form): owner,
/// type, TTL, RDATA.
pub fn name_owned(rrs: &[u8]) -> impl Iterator<Item = (&[u8], u16, u32, &[u8])> {
    let mut rest = rrs;
    std::iter::from_fn(move || {
        let end = name_end(rest, 0);
        let owner = rest.get(..end)?;
        let head = rest.get(end..end + 10)?;
        let rtype = u16::from_be_bytes([head[0], head[1]]);
        let ttl = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
        let len = usize::from(u16::from_be_bytes([head[8], head[9]]));
        let rdata = rest.get(end + 10..end + 10 + len)?;
        rest = &rest[end + 10 + len..];
        Some((owner, rtype, ttl, rdata))
    })
}

#[cfg(test)]
mod tests;
