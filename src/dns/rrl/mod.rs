//! Response rate limiting (RRL) for UDP, as Knot's and NSD's: an open authoritative server is
//! an amplifier (a spoofed 40-byte query buys a reply of hundreds), so identical replies to
//! one client network are limited to `rate` a second. Every `slip`-th reply held back goes out
//! truncated instead — empty, TC set — so that a real client behind a spoofed flood retries
//! over TCP, which is never limited.
//!
//! Replies are counted per bucket: the client's network (`/24` and `/56` by default), the kind
//! of reply, and for positive replies the name and type asked; negative replies of a live or
//! static zone count against the zone, so that a flood of random names shares one bucket (Knot does
//! the same). Each bucket is a generic cell rate algorithm (GCRA) state in one atomic word:
//! `rate` replies a second sustained, a burst of one second's worth. A bucket that another key
//! hashed to is taken over (the limit fails open, never closed).

use std::cell::Cell;
use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use foldhash::fast::FixedState;

use super::acl::Acl;
use crate::wire::{FLAG_TC, HEADER_LEN, OPT_LEN, RCODE_BITS};

/// Responses per second per client network and bucket by default (NSD's and Knot's examples).
pub const DEFAULT_RATE: u32 = 200;
/// Every this many limited replies, one goes out truncated (NSD's and BIND's default).
pub const DEFAULT_SLIP: u32 = 2;
/// IPv4 client network length (NSD, Knot, BIND).
pub const DEFAULT_IPV4_PREFIX: u8 = 24;
/// IPv6 client network length (Knot's and BIND's /56).
pub const DEFAULT_IPV6_PREFIX: u8 = 56;
/// Buckets in the table: 1 MiB, touched only where flows land.
const BUCKETS: usize = 1 << 17;
/// Bits of a bucket word that hold the key's fingerprint; the rest hold the time.
const FINGERPRINT_BITS: u32 = 16;

/// `--rrl-*`: how replies are limited.
#[derive(Debug, Clone)]
pub struct RrlConfig {
    /// Replies per second per bucket.
    pub rate: u32,
    /// Every `slip`-th limited reply goes out truncated; 0 sends none.
    pub slip: u32,
    /// Length of the IPv4 network a client is counted with.
    pub ipv4_prefix: u8,
    /// Length of the IPv6 network a client is counted with.
    pub ipv6_prefix: u8,
    /// Clients never limited.
    pub exempt: Acl,
}

impl Default for RrlConfig {
    fn default() -> Self {
        Self {
            rate: DEFAULT_RATE,
            slip: DEFAULT_SLIP,
            ipv4_prefix: DEFAULT_IPV4_PREFIX,
            ipv6_prefix: DEFAULT_IPV6_PREFIX,
            exempt: Acl::default(),
        }
    }
}

/// What to do with one UDP reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send it.
    Send,
    /// Send it truncated: header and question, TC set.
    Slip,
    /// Send nothing.
    Drop,
}

/// The kinds of reply that count apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Kind {
    Positive = 1,
    Negative = 2,
    Error = 3,
}

/// The shared bucket table and the settings.
#[derive(Debug)]
pub struct RateLimiter {
    buckets: Box<[AtomicU64]>,
    /// Microseconds between two replies at the sustained rate.
    interval: u64,
    /// How far ahead of now a bucket's theoretical arrival time may run: a one-second burst.
    tolerance: u64,
    slip: u32,
    ipv4_mask: u32,
    ipv6_mask: u128,
    exempt: Acl,
    hasher: FixedState,
}

thread_local! {
    /// Limited replies seen by this thread, for choosing which to slip.
    static LIMITED: Cell<u32> = const { Cell::new(0) };
}

impl RateLimiter {
    /// A limiter with `config` (`rate` at least 1).
    pub fn new(config: &RrlConfig) -> Self {
        let rate = u64::from(config.rate.max(1));
        let interval = (1_000_000 / rate).max(1);
        let v4 = u32::from(config.ipv4_prefix.min(32));
        let v6 = u32::from(config.ipv6_prefix.min(128));
        Self {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            interval,
            tolerance: interval * (rate - 1),
            slip: config.slip,
            ipv4_mask: u32::MAX.checked_shl(32 - v4).unwrap_or(0),
            ipv6_mask: u128::MAX.checked_shl(128 - v6).unwrap_or(0),
            exempt: config.exempt.clone(),
            hasher: FixedState::with_seed(rand::random()),
        }
    }

    /// The verdict on `reply` (a complete DNS message we made) to `client`, at `now`
    /// (microseconds on a monotonic clock). `zone_at`: where the live zone starts in the
    /// question name, for negative replies of the live zone.
    pub fn check(&self, reply: &[u8], client: IpAddr, zone_at: Option<usize>, now: u64) -> Verdict {
        if self.exempt.contains(client) {
            return Verdict::Send;
        }
        let key = self.key(reply, client, zone_at);
        let fingerprint = key & ((1 << FINGERPRINT_BITS) - 1);
        let Some(bucket) = self
            .buckets
            .get((key >> FINGERPRINT_BITS) as usize % BUCKETS)
        else {
            return Verdict::Send;
        };
        let mut current = bucket.load(Ordering::Relaxed);
        loop {
            let (tat, owner) = (
                current >> FINGERPRINT_BITS,
                current & ((1 << FINGERPRINT_BITS) - 1),
            );
            // A bucket last used by another key, or idle long enough, starts afresh.
            let tat = if owner != fingerprint || tat < now {
                now
            } else {
                tat
            };
            if tat - now > self.tolerance {
                return self.limited();
            }
            let next = ((tat + self.interval) << FINGERPRINT_BITS) | fingerprint;
            match bucket.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Verdict::Send,
                Err(seen) => current = seen,
            }
        }
    }

    fn limited(&self) -> Verdict {
        if self.slip == 0 {
            return Verdict::Drop;
        }
        let n = LIMITED.with(|c| {
            let n = c.get().wrapping_add(1);
            c.set(n);
            n
        });
        if n.is_multiple_of(self.slip) {
            Verdict::Slip
        } else {
            Verdict::Drop
        }
    }

    /// The bucket key of `reply` to `client`: its network, the kind of reply, and the name
    /// (lower-cased; the zone's part for a negative live reply) and type for positive ones.
    fn key(&self, reply: &[u8], client: IpAddr, zone_at: Option<usize>) -> u64 {
        let mut hasher = self.hasher.build_hasher();
        let rcode = reply.get(3).map_or(0, |b| b & RCODE_BITS);
        let answers = reply.get(6..8).is_some_and(|n| n != [0, 0]);
        let kind = match rcode {
            0 if answers => Kind::Positive,
            0 | 3 => Kind::Negative,
            _ => Kind::Error,
        };
        let asked = match kind {
            Kind::Error => None,
            _ => question(reply),
        };
        let qtype = match (kind, asked) {
            (Kind::Positive, Some((_, qtype))) => qtype,
            _ => 0,
        };
        // Network, kind and type in one word: one step of the hash.
        let tag = u64::from(kind as u8) << 16 | u64::from(qtype);
        match client {
            IpAddr::V4(v4) => {
                hasher.write_u64(u64::from(u32::from(v4) & self.ipv4_mask) << 32 | tag)
            }
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => hasher.write_u64(u64::from(u32::from(v4) & self.ipv4_mask) << 32 | tag),
                None => {
                    hasher.write_u128(u128::from(v6) & self.ipv6_mask);
                    hasher.write_u64(tag);
                }
            },
        }
        if let Some((name, _)) = asked {
            let name = match (kind, zone_at) {
                (Kind::Negative, Some(at)) => name.get(at..).unwrap_or(name),
                _ => name,
            };
            hasher.write_u64(fold_name(name));
        }
        hasher.finish()
    }
}

/// `name` folded to one word eight bytes at a time, ignoring ASCII case: bit 5 of every byte
/// is set first, which lower-cases letters (and merges a few other byte pairs, which only
/// makes two odd names share a count). The result is mixed again by the keyed hasher.
fn fold_name(name: &[u8]) -> u64 {
    const CASE: u64 = 0x2020_2020_2020_2020;
    const MIX: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut folded = name.len() as u64;
    let mut chunks = name.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        folded = ((folded ^ (u64::from_le_bytes(word) | CASE)).wrapping_mul(MIX)).rotate_left(29);
    }
    let rest = chunks.remainder();
    let mut word = [0u8; 8];
    word[..rest.len()].copy_from_slice(rest);
    ((folded ^ (u64::from_le_bytes(word) | CASE)).wrapping_mul(MIX)).rotate_left(29)
}

/// The question name (wire form, as asked) and type of a reply we made; `None` without one.
fn question(reply: &[u8]) -> Option<(&[u8], u16)> {
    if reply.get(4..6)? == [0, 0] {
        return None;
    }
    let mut at = HEADER_LEN;
    loop {
        let len = usize::from(*reply.get(at)?);
        if len == 0 {
            break;
        }
        // Our replies echo the question uncompressed; anything else is not a name we wrote.
        if len > 63 {
            return None;
        }
        at += 1 + len;
    }
    let name = reply.get(HEADER_LEN..=at)?;
    let qtype = u16::from_be_bytes([*reply.get(at + 1)?, *reply.get(at + 2)?]);
    Some((name, qtype))
}

/// `reply` cut to its header, question and OPT record with TC set: what a slipped reply
/// carries, as Knot's (the client retries over TCP).
pub fn truncate(reply: &mut Vec<u8>) {
    if reply.len() < HEADER_LEN {
        return;
    }
    let opt = trailing_opt(reply).map(<[u8]>::to_vec);
    let end = question(reply).map_or(HEADER_LEN, |(name, _)| HEADER_LEN + name.len() + 4);
    reply.truncate(end.min(reply.len()));
    reply[2] |= FLAG_TC;
    let questions = u8::from(end > HEADER_LEN);
    let additional = u8::from(opt.is_some());
    reply[4..12].copy_from_slice(&[0, questions, 0, 0, 0, 0, 0, additional]);
    if let Some(opt) = opt {
        reply.extend_from_slice(&opt);
    }
}

/// The OPT record our replies end with (root owner, type 41, no options), if there is one.
fn trailing_opt(reply: &[u8]) -> Option<&[u8]> {
    if reply.get(10..12)? == [0, 0] {
        return None;
    }
    let opt = reply.get(reply.len().checked_sub(OPT_LEN)?..)?;
    let looks_like_opt = opt[0] == 0 && opt[1..3] == [0, 41] && opt[9..] == [0, 0];
    (reply.len() >= HEADER_LEN + OPT_LEN && looks_like_opt).then_some(opt)
}

/// Microseconds on the coarse monotonic clock (a few ms resolution, a memory read; reading the
/// precise clock would cost a UDP answer more than the limiter does).
pub fn now_micros() -> u64 {
    coarse_now().as_micros() as u64
}

#[cfg(target_os = "linux")]
fn coarse_now() -> Duration {
    use nix::time::{clock_gettime, ClockId};
    clock_gettime(ClockId::CLOCK_MONOTONIC_COARSE).map_or(Duration::ZERO, Duration::from)
}

#[cfg(not(target_os = "linux"))]
fn coarse_now() -> Duration {
    use std::sync::OnceLock;
    use std::time::Instant;
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

#[cfg(test)]
mod tests;
