//! The recent changes of each live zone, for IXFR (RFC 1995): what each snapshot removed and
//! added, as records, keyed by the serials before and after; bounded to `--ixfr-history`
//! changes per zone. A re-read of the registry starts an empty history (its changes are not
//! known record by record), so a secondary behind it gets a full transfer.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, RwLock};

/// Changes kept per zone by default (`--ixfr-history`).
pub const DEFAULT_IXFR_HISTORY: usize = 1000;

/// One snapshot's change of a zone: records as owner (lowercase wire name, uncompressed) then
/// type, class, TTL, RDLENGTH and RDATA, back to back.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Change {
    /// The serial before.
    pub from: u32,
    /// The serial after.
    pub to: u32,
    /// Records removed.
    pub removed: Vec<u8>,
    /// Records added.
    pub added: Vec<u8>,
}

impl Change {
    /// Bytes it holds.
    pub fn size(&self) -> usize {
        self.removed.len() + self.added.len()
    }
}

/// A zone's recent changes, oldest first, each starting where the one before ended.
#[derive(Debug, Default)]
pub struct History {
    changes: VecDeque<Arc<Change>>,
}

/// A zone's history as the writer appends to it and transfers read it.
pub type SharedHistory = Arc<RwLock<History>>;

impl History {
    /// Appends `change`, keeping at most `max` changes; a change that does not start where the
    /// last one ended (a serial moved without the journal seeing why) starts the history anew.
    pub fn push(&mut self, change: Change, max: usize) {
        if self
            .changes
            .back()
            .is_some_and(|last| last.to != change.from)
        {
            self.changes.clear();
        }
        self.changes.push_back(Arc::new(change));
        while self.changes.len() > max {
            self.changes.pop_front();
        }
    }

    /// The changes from serial `from` up to serial `to`, in order, if the history holds that
    /// whole stretch.
    pub fn between(&self, from: u32, to: u32) -> Option<Vec<Arc<Change>>> {
        let start = self.changes.iter().position(|c| c.from == from)?;
        let mut out = Vec::new();
        for change in self.changes.iter().skip(start) {
            out.push(change.clone());
            if change.to == to {
                return Some(out);
            }
        }
        None
    }

    /// Number of changes held.
    pub fn len(&self) -> usize {
        self.changes.len()
    }

    /// True when no change is held.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// Splits `records` (owner, then type to RDATA) into single records.
pub fn records(mut bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let mut at = 0;
        while let Some(&len) = bytes.get(at) {
            at += 1 + len as usize;
            if len == 0 {
                break;
            }
        }
        let rdlen = bytes.get(at + 8..at + 10)?;
        let end = at + 10 + usize::from(u16::from_be_bytes([rdlen[0], rdlen[1]]));
        let record = bytes.get(..end)?;
        bytes = &bytes[end..];
        Some(record)
    })
}

/// The net change of `changes` in a row: records removed from the first state and added in the
/// last, a record removed and added again (or added and removed) in between counting for
/// nothing (RFC 1995 §5: a condensed difference).
pub fn condense(changes: &[Arc<Change>]) -> (Vec<&[u8]>, Vec<&[u8]>) {
    let mut removed: Vec<&[u8]> = Vec::new();
    let mut added: Vec<&[u8]> = Vec::new();
    let mut removed_set: HashSet<&[u8]> = HashSet::new();
    let mut added_set: HashSet<&[u8]> = HashSet::new();
    for change in changes {
        for record in records(&change.removed) {
            if !added_set.remove(record) {
                removed_set.insert(record);
                removed.push(record);
            }
        }
        for record in records(&change.added) {
            if !removed_set.remove(record) {
                added_set.insert(record);
                added.push(record);
            }
        }
    }
    // Each record once, where it first came.
    let mut emitted = HashSet::new();
    removed.retain(|r| removed_set.contains(r) && emitted.insert(*r));
    let mut emitted = HashSet::new();
    added.retain(|r| added_set.contains(r) && emitted.insert(*r));
    (removed, added)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record `name` A 10.0.0.`last` as the journal holds it.
    fn a(name: &str, last: u8) -> Vec<u8> {
        let mut out = vec![name.len() as u8];
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 10, 0, 0, last]);
        out
    }

    fn change(from: u32, to: u32, removed: &[Vec<u8>], added: &[Vec<u8>]) -> Change {
        Change {
            from,
            to,
            removed: removed.concat(),
            added: added.concat(),
        }
    }

    #[test]
    fn changes_condense_to_their_net_effect() {
        let mut history = History::default();
        history.push(change(1, 2, &[], &[a("x", 1), a("y", 2)]), 10);
        history.push(change(2, 3, &[a("x", 1)], &[a("z", 3)]), 10);
        history.push(change(3, 4, &[a("old", 9), a("z", 3)], &[a("x", 1)]), 10);
        let all = history.between(1, 4).expect("held");
        let (removed, added) = condense(&all);
        assert_eq!(removed, [a("old", 9).as_slice()]);
        assert_eq!(added, [a("x", 1).as_slice(), a("y", 2).as_slice()]);
        let one = history.between(2, 3).expect("held");
        let (removed, added) = condense(&one);
        assert_eq!((removed.len(), added.len()), (1, 1));
        assert!(history.between(0, 4).is_none(), "older than the history");
        assert!(history.between(2, 5).is_none(), "newer than the history");
    }

    #[test]
    fn the_history_is_bounded_and_restarts_on_a_gap() {
        let mut history = History::default();
        for serial in 1..=5 {
            history.push(change(serial, serial + 1, &[], &[a("x", serial as u8)]), 3);
        }
        assert_eq!(history.len(), 3);
        assert!(history.between(2, 6).is_none(), "dropped");
        assert!(history.between(3, 6).is_some());
        history.push(change(9, 10, &[], &[]), 3);
        assert_eq!(history.len(), 1, "a gap starts anew");
    }
}
