//! What a multi-record RRset keeps beside its records so that one query can take any subset in
//! O(answer): where each record starts, the selection weights (cumulative, when they differ),
//! SRV's priority groups, and where each SRV record's additional records start. Encoded once,
//! when the table changes, as little-endian `u32` words stored with the set (pure).
//!
//! Layout: `n`, `flags`, `starts[n + 1]`; with [`WEIGHTS`], `cumulative[n]` as `u64` (two words
//! each); with [`GROUPS`], `g` and `ends[g]`; with [`EXTRAS`], `extra_starts[n + 1]`.

/// Flag: the records carry selection weights that differ.
const WEIGHTS: u32 = 1;
/// Flag: the records are in priority groups (SRV, sorted by priority).
const GROUPS: u32 = 2;
/// Flag: each record has its own additional records (SRV targets' addresses).
const EXTRAS: u32 = 4;

/// The selection weight of a registered `weight`: proportional to it, with weight 0 given a
/// very small chance rather than none (RFC 2782: "a very small chance of being selected").
pub fn selection_weight(weight: u16) -> u64 {
    match weight {
        0 => 1,
        w => u64::from(w) * 64,
    }
}

/// What one set's spread is built from, record by record in the set's order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SpreadInput {
    /// Byte offset of each record in the set's records, then their total length.
    pub starts: Vec<u32>,
    /// Selection weight of each record ([`selection_weight`]).
    pub weights: Vec<u64>,
    /// Priority of each record (SRV), in ascending order; empty for other types.
    pub priorities: Vec<u16>,
    /// Byte offset of each record's additional records, then their total length; empty when
    /// the set has none.
    pub extra_starts: Vec<u32>,
}

impl SpreadInput {
    /// The encoded spread, or nothing for a set of fewer than two records (nothing to choose).
    pub fn encode(&self) -> Box<[u8]> {
        let n = self.starts.len().saturating_sub(1);
        if n < 2 {
            return Box::default();
        }
        let differ = self.weights.len() == n && self.weights.iter().any(|w| *w != self.weights[0]);
        let groups: Vec<u32> = if self.priorities.len() == n {
            (1..=n)
                .filter(|&i| i == n || self.priorities[i] != self.priorities[i - 1])
                .map(|i| i as u32)
                .collect()
        } else {
            Vec::new()
        };
        let extras = self.extra_starts.len() == n + 1;
        let flag = |on: bool, bit: u32| if on { bit } else { 0 };
        let flags = flag(differ, WEIGHTS) | flag(groups.len() > 1, GROUPS) | flag(extras, EXTRAS);
        let mut words: Vec<u32> = Vec::with_capacity(2 + (n + 1) * 4);
        words.extend([n as u32, flags]);
        words.extend(&self.starts);
        if differ {
            let mut sum = 0u64;
            for w in &self.weights {
                sum += w;
                words.extend([sum as u32, (sum >> 32) as u32]);
            }
        }
        if groups.len() > 1 {
            words.push(groups.len() as u32);
            words.extend(&groups);
        }
        if extras {
            words.extend(&self.extra_starts);
        }
        words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }
}

/// A decoded view of an encoded spread.
#[derive(Debug, Clone, Copy)]
pub struct SpreadRef<'a> {
    bytes: &'a [u8],
    n: usize,
    flags: u32,
}

impl<'a> SpreadRef<'a> {
    /// The spread in `bytes`, if they hold one.
    pub fn new(bytes: &'a [u8]) -> Option<Self> {
        let word = |i: usize| bytes.get(i * 4..i * 4 + 4).map(le_u32);
        let n = word(0)? as usize;
        Some(Self {
            bytes,
            n,
            flags: word(1)?,
        })
    }

    /// The number of records.
    pub fn len(&self) -> usize {
        self.n
    }

    /// True for a set of no records (never encoded).
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    fn word(&self, i: usize) -> usize {
        self.bytes.get(i * 4..i * 4 + 4).map_or(0, le_u32) as usize
    }

    /// Where record `i` starts in the set's records (`i == len()`: their end).
    pub fn start(&self, i: usize) -> usize {
        self.word(2 + i)
    }

    /// Word index just past the starts.
    fn after_starts(&self) -> usize {
        2 + self.n + 1
    }

    /// True when the records' weights differ.
    pub fn weighted(&self) -> bool {
        self.flags & WEIGHTS != 0
    }

    /// The sum of the weights of records `0..=i` (weighted sets only).
    pub fn cumulative(&self, i: usize) -> u64 {
        let at = self.after_starts() + 2 * i;
        self.word(at) as u64 | (self.word(at + 1) as u64) << 32
    }

    /// Word index just past the weights.
    fn after_weights(&self) -> usize {
        self.after_starts() + if self.weighted() { 2 * self.n } else { 0 }
    }

    /// The priority groups as `[start, end)` index ranges, lowest priority first; one group
    /// holding every record when the set has no priorities.
    pub fn groups(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        let (count, first) = if self.flags & GROUPS != 0 {
            (self.word(self.after_weights()), self.after_weights() + 1)
        } else {
            (1, 0)
        };
        (0..count).map(move |g| {
            let start = if g == 0 { 0 } else { self.word(first + g - 1) };
            let end = if self.flags & GROUPS != 0 {
                self.word(first + g)
            } else {
                self.n
            };
            (start, end)
        })
    }

    /// Where record `i`'s additional records start in the set's additional bytes (`i ==
    /// len()`: their end); `None` when the records have no additional records of their own.
    pub fn extra_start(&self, i: usize) -> Option<usize> {
        if self.flags & EXTRAS == 0 {
            return None;
        }
        let groups = if self.flags & GROUPS != 0 {
            1 + self.word(self.after_weights())
        } else {
            0
        };
        Some(self.word(self.after_weights() + groups + i))
    }
}

/// A little-endian `u32` from four bytes.
fn le_u32(bytes: &[u8]) -> u32 {
    u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_record_has_no_spread() {
        let input = SpreadInput {
            starts: vec![0, 16],
            ..SpreadInput::default()
        };
        assert!(input.encode().is_empty());
    }

    #[test]
    fn starts_weights_groups_and_extras_come_back() {
        let input = SpreadInput {
            starts: vec![0, 30, 62, 90],
            weights: vec![64, 640, 1],
            priorities: vec![1, 1, 5],
            extra_starts: vec![0, 16, 16, 44],
        };
        let bytes = input.encode();
        let spread = SpreadRef::new(&bytes).expect("spread");
        assert_eq!(spread.len(), 3);
        assert_eq!(
            (0..=3).map(|i| spread.start(i)).collect::<Vec<_>>(),
            [0, 30, 62, 90]
        );
        assert!(spread.weighted());
        assert_eq!(
            (0..3).map(|i| spread.cumulative(i)).collect::<Vec<_>>(),
            [64, 704, 705]
        );
        assert_eq!(spread.groups().collect::<Vec<_>>(), [(0, 2), (2, 3)]);
        let extras: Vec<_> = (0..=3).filter_map(|i| spread.extra_start(i)).collect();
        assert_eq!(extras, [0, 16, 16, 44]);
    }

    #[test]
    fn equal_weights_and_one_priority_are_left_out() {
        let input = SpreadInput {
            starts: vec![0, 16, 32],
            weights: vec![640, 640],
            priorities: vec![10, 10],
            extra_starts: Vec::new(),
        };
        let bytes = input.encode();
        let spread = SpreadRef::new(&bytes).expect("spread");
        assert!(!spread.weighted());
        assert_eq!(spread.groups().collect::<Vec<_>>(), [(0, 2)]);
        assert_eq!(spread.extra_start(0), None);
        assert_eq!(bytes.len(), 4 * (2 + 3));
    }

    #[test]
    fn weight_zero_keeps_a_small_chance() {
        assert_eq!(selection_weight(0), 1);
        assert_eq!(selection_weight(1), 64);
        assert_eq!(selection_weight(100) / selection_weight(1), 100);
    }
}
