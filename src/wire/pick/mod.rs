//! Choosing the records of one answer from a large or weighted RRset, in O(answer) (pure):
//! as many as fit the transport and `--max-answers`, lowest SRV priority first, each priority
//! group in weighted random order (RFC 2782) or, with equal weights, a rotating window, so that
//! over many queries every record is answered in proportion to its weight. When every record
//! fits, every record is answered and their additional records follow as they fit (RFC 2181
//! §9); when the set must be cut, an SRV record goes with its target's addresses in the
//! additional section, or not at all, so that a partial answer is usable at once.

use super::spread::SpreadRef;
use super::RRsetRef;

/// A small, fast random generator for choosing records (xorshift64*): spreading load, not
/// secrets.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator started from `seed` (any value).
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n` > 0), without the bias of a remainder.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// Scratch space one thread reuses from query to query: nothing is allocated per answer once
/// it has grown to the largest answer seen.
#[derive(Debug)]
pub struct Picks {
    /// The chosen records, back to back.
    pub answers: Vec<u8>,
    /// Their additional records, back to back.
    pub extra: Vec<u8>,
    /// One bit per record of the set being picked from: chosen already.
    seen: Vec<u64>,
    /// The records chosen, in answer order (to clear `seen` after).
    chosen: Vec<u32>,
    /// The random source of weighted choices.
    pub rng: Rng,
}

impl Picks {
    /// Empty scratch with a generator seeded by `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            answers: Vec::new(),
            extra: Vec::new(),
            seen: Vec::new(),
            chosen: Vec::new(),
            rng: Rng::new(seed),
        }
    }
}

/// Why not every record of the set is in the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Cut {
    /// Every record is there.
    #[default]
    None,
    /// `--max-answers` stopped it: a complete answer by policy.
    Cap,
    /// The transport's size stopped it: over UDP the reply says TC.
    Size,
}

/// What [`pick`] chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Picked {
    /// Records in `Picks::answers`.
    pub answers: u16,
    /// Records in `Picks::extra`.
    pub extra: u16,
    /// Whether, and why, records were left out.
    pub cut: Cut,
}

/// Fills `picks.answers` with records of `set` (described by `spread`), each with its
/// additional records in `picks.extra`, while they fit `room` bytes and `cap` records.
/// `rotate` moves the window of equally weighted records from answer to answer.
pub fn pick(
    set: RRsetRef<'_>,
    spread: SpreadRef<'_>,
    room: usize,
    cap: usize,
    rotate: usize,
    picks: &mut Picks,
) -> Picked {
    picks.answers.clear();
    picks.extra.clear();
    picks.chosen.clear();
    let words = spread.len().div_ceil(64);
    if picks.seen.len() < words {
        picks.seen.resize(words, 0);
    }
    let mut cut = Cut::None;
    let mut extra = 0u16;
    // Every record fits: the answer is complete, and additional records use what is left.
    let extra_room = (spread.len() <= cap)
        .then(|| room.checked_sub(set.rrs.len()))
        .flatten();
    'groups: for (lo, hi) in spread.groups() {
        // Equal weights: successive answers take successive windows of about the size one
        // answer holds, so that they tile the set (a record's length stands for all of them).
        let first = spread.start(lo + 1).saturating_sub(spread.start(lo)).max(1);
        let window = (room / first).clamp(1, cap.max(1));
        let mut next = Order::new(spread, lo, hi, rotate.wrapping_mul(window));
        while let Some(i) = next.next(spread, picks) {
            let record = set
                .rrs
                .get(spread.start(i)..spread.start(i + 1))
                .unwrap_or_default();
            // A record goes with its additional records (an SRV record with its target's
            // addresses), or not at all: a client gets fewer targets, each usable at once.
            let extras = match (spread.extra_start(i), spread.extra_start(i + 1)) {
                (Some(from), Some(to)) => set.extra.get(from..to).unwrap_or_default(),
                _ => &[],
            };
            if let Some(extra_room) = extra_room {
                picks.answers.extend_from_slice(record);
                if picks.extra.len() + extras.len() <= extra_room {
                    picks.extra.extend_from_slice(extras);
                    extra = extra.saturating_add(count_owned(extras));
                }
                picks.chosen.push(i as u32);
                continue;
            }
            let used = picks.answers.len() + picks.extra.len();
            let stop = if picks.chosen.len() >= cap {
                Cut::Cap
            } else if used + record.len() + extras.len() > room {
                Cut::Size
            } else {
                Cut::None
            };
            if stop != Cut::None {
                unmark(&mut picks.seen, i);
                cut = stop;
                break 'groups;
            }
            picks.answers.extend_from_slice(record);
            picks.extra.extend_from_slice(extras);
            extra = extra.saturating_add(count_owned(extras));
            picks.chosen.push(i as u32);
        }
    }
    for &i in &picks.chosen {
        unmark(&mut picks.seen, i as usize);
    }
    Picked {
        answers: picks.chosen.len().min(u16::MAX as usize) as u16,
        extra,
        cut,
    }
}

/// The order in which one priority group's records are offered.
enum Order {
    /// Equal weights: `m` records from `lo + offset`, wrapping within `[lo, hi)`.
    Window {
        lo: usize,
        m: usize,
        offset: usize,
        taken: usize,
    },
    /// Weights: random draws by weight, each record once.
    Weighted {
        lo: usize,
        hi: usize,
        base: u64,
        total: u64,
        taken: usize,
        sweep: Option<usize>,
    },
}

impl Order {
    fn new(spread: SpreadRef<'_>, lo: usize, hi: usize, rotate: usize) -> Self {
        let m = hi.saturating_sub(lo);
        if !spread.weighted() || m == 0 {
            return Self::Window {
                lo,
                m,
                offset: if m == 0 { 0 } else { rotate % m },
                taken: 0,
            };
        }
        let base = if lo == 0 {
            0
        } else {
            spread.cumulative(lo - 1)
        };
        Self::Weighted {
            lo,
            hi,
            base,
            total: spread.cumulative(hi - 1) - base,
            taken: 0,
            sweep: None,
        }
    }

    /// The next record to offer, marked seen; `None` when the group is exhausted.
    fn next(&mut self, spread: SpreadRef<'_>, picks: &mut Picks) -> Option<usize> {
        match self {
            Self::Window {
                lo,
                m,
                offset,
                taken,
            } => {
                if *taken >= *m {
                    return None;
                }
                let i = *lo + (*offset + *taken) % *m;
                *taken += 1;
                mark(&mut picks.seen, i);
                Some(i)
            }
            Self::Weighted {
                lo,
                hi,
                base,
                total,
                taken,
                sweep,
            } => {
                if *taken >= *hi - *lo {
                    return None;
                }
                *taken += 1;
                // Draw by weight; a record drawn again is drawn anew. Past a few misses in a
                // row (a heavy record drawn over and over), sweep from a random place instead:
                // the answer stays O(answer), its order slightly less faithful.
                if sweep.is_none() {
                    for _ in 0..8 + *taken {
                        let r = *base + picks.rng.below((*total).max(1));
                        let i = upper_bound(spread, *lo, *hi, r);
                        if !is_seen(&picks.seen, i) {
                            mark(&mut picks.seen, i);
                            return Some(i);
                        }
                    }
                    *sweep = Some(*lo + picks.rng.below((*hi - *lo) as u64) as usize);
                }
                let m = *hi - *lo;
                let from = sweep.unwrap_or(*lo);
                for step in 0..m {
                    let i = *lo + (from - *lo + step) % m;
                    if !is_seen(&picks.seen, i) {
                        mark(&mut picks.seen, i);
                        *sweep = Some(i);
                        return Some(i);
                    }
                }
                None
            }
        }
    }
}

/// The first record in `[lo, hi)` whose cumulative weight exceeds `r`.
fn upper_bound(spread: SpreadRef<'_>, lo: usize, hi: usize, r: u64) -> usize {
    let (mut lo, mut hi) = (lo, hi - 1);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if spread.cumulative(mid) > r {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo
}

fn is_seen(seen: &[u64], i: usize) -> bool {
    seen.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
}

fn mark(seen: &mut [u64], i: usize) {
    if let Some(w) = seen.get_mut(i / 64) {
        *w |= 1 << (i % 64);
    }
}

fn unmark(seen: &mut [u64], i: usize) {
    if let Some(w) = seen.get_mut(i / 64) {
        *w &= !(1 << (i % 64));
    }
}

/// The number of records in `bytes`, each an owner name written out then type, class, TTL,
/// RDLENGTH and RDATA.
fn count_owned(bytes: &[u8]) -> u16 {
    let mut count = 0u16;
    let mut at = 0;
    while at < bytes.len() {
        while let Some(&len) = bytes.get(at) {
            at += 1 + len as usize;
            if len == 0 {
                break;
            }
        }
        let rdlen = bytes
            .get(at + 8..at + 10)
            .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
        at += 10 + rdlen as usize;
        count = count.saturating_add(1);
    }
    count
}

#[cfg(test)]
mod tests;
