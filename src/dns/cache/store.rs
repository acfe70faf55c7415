//! Where cached answers live: a fixed number of shards, each a hash index over slots in a
//! vector, evicting by CLOCK (second chance) when an insert would pass the shard's share of
//! the byte budget. Each shard is behind a `std` mutex held only for a lookup and a copy of
//! one answer (a few hundred nanoseconds, never across I/O or an await): with many shards the
//! UDP threads rarely meet, and a reader never waits on a network round trip.

use std::sync::{Mutex, MutexGuard};

use hashbrown::HashTable;

use super::entry::Entry;

/// Bytes counted for a slot besides its key and entry (index, slot, allocations' headers).
const SLOT_OVERHEAD: usize = 96;
/// Most shards; fewer when the budget is small, so each still holds a few dozen answers.
const MAX_SHARDS: usize = 64;
/// Budget per shard below which fewer shards are used.
const MIN_SHARD_BYTES: usize = 64 * 1024;

/// One cached answer with what finds and ages it.
#[derive(Debug)]
pub struct Slot {
    hash: u64,
    key: Box<[u8]>,
    /// The answer.
    pub entry: Entry,
    /// Milliseconds (the cache's clock) when it was stored.
    pub stored: u64,
    /// Milliseconds after which it may no longer be served stale.
    pub stale_until: u64,
    /// Set on every hit, cleared by the CLOCK hand: a second chance before eviction.
    used: bool,
    /// A refresh of this answer was asked for (at most one per stored answer).
    pub prefetched: bool,
}

impl Slot {
    fn cost(&self) -> usize {
        SLOT_OVERHEAD + self.key.len() + self.entry.cost()
    }

    /// Milliseconds (the cache's clock) at which it expires.
    pub fn expires(&self) -> u64 {
        self.stored + u64::from(self.entry.lifetime) * 1000
    }
}

/// One shard's slots and counters (counted under its lock, so counting costs no atomics).
#[derive(Debug, Default)]
pub struct Shard {
    index: HashTable<u32>,
    slots: Vec<Slot>,
    hand: usize,
    bytes: usize,
    budget: usize,
    /// Answers served from this shard.
    pub hits: u64,
    /// Answers served stale from this shard.
    pub stale: u64,
    /// Answers refreshed upstream shortly before they expired.
    pub prefetches: u64,
    /// Answers evicted to make room.
    pub evictions: u64,
}

impl Shard {
    fn find(&self, hash: u64, key: &[u8]) -> Option<usize> {
        let slots = &self.slots;
        self.index
            .find(hash, |&i| *slots[i as usize].key == *key)
            .map(|&i| i as usize)
    }

    /// The slot of `key`, marked used.
    pub fn get(&mut self, hash: u64, key: &[u8]) -> Option<&mut Slot> {
        let at = self.find(hash, key)?;
        let slot = &mut self.slots[at];
        slot.used = true;
        Some(slot)
    }

    /// Stores `entry` at `key`, replacing what was there and evicting others as the budget
    /// requires. An entry larger than the whole shard is not stored.
    pub fn insert(&mut self, hash: u64, key: &[u8], entry: Entry, stored: u64, stale_until: u64) {
        let slot = Slot {
            hash,
            key: key.into(),
            entry,
            stored,
            stale_until,
            used: false,
            prefetched: false,
        };
        let cost = slot.cost();
        if cost > self.budget {
            return;
        }
        if let Some(at) = self.find(hash, key) {
            self.bytes -= self.slots[at].cost();
            self.slots[at] = slot;
            self.bytes += cost;
            let budget = self.budget;
            self.evict_while(|bytes| bytes > budget);
            return;
        }
        let budget = self.budget;
        self.evict_while(|bytes| bytes + cost > budget);
        let at = self.slots.len() as u32;
        self.slots.push(slot);
        self.bytes += cost;
        let slots = &self.slots;
        self.index
            .insert_unique(hash, at, |&i| slots[i as usize].hash);
    }

    /// Evicts by CLOCK while `over(bytes held)`: the hand skips (and clears) used slots once.
    fn evict_while(&mut self, over: impl Fn(usize) -> bool) {
        while over(self.bytes) && !self.slots.is_empty() {
            if self.hand >= self.slots.len() {
                self.hand = 0;
            }
            let slot = &mut self.slots[self.hand];
            if std::mem::take(&mut slot.used) {
                self.hand += 1;
                continue;
            }
            // The last slot moves into the hand's place: step past it, so that the newest
            // answer is not the next one looked at.
            self.remove(self.hand);
            self.hand += 1;
            self.evictions += 1;
        }
    }

    /// Removes slot `at`; the last slot moves into its place.
    fn remove(&mut self, at: usize) {
        let hash = self.slots[at].hash;
        if let Ok(found) = self.index.find_entry(hash, |&i| i as usize == at) {
            found.remove();
        }
        let last = self.slots.len() - 1;
        if at != last {
            let moved = self.slots[last].hash;
            if let Some(index) = self.index.find_mut(moved, |&i| i as usize == last) {
                *index = at as u32;
            }
        }
        let gone = self.slots.swap_remove(at);
        self.bytes -= gone.cost();
    }

    /// Answers held and their bytes.
    pub fn size(&self) -> (usize, usize) {
        (self.slots.len(), self.bytes)
    }
}

/// The shards, chosen by hash.
#[derive(Debug)]
pub struct Store {
    shards: Box<[Mutex<Shard>]>,
}

impl Store {
    /// A store that keeps at most about `budget` bytes.
    pub fn new(budget: usize) -> Self {
        let count = (budget / MIN_SHARD_BYTES)
            .clamp(1, MAX_SHARDS)
            .next_power_of_two();
        let shards = (0..count)
            .map(|_| {
                Mutex::new(Shard {
                    budget: budget / count,
                    ..Shard::default()
                })
            })
            .collect();
        Self { shards }
    }

    /// The shard of `hash`, locked. A poisoned lock only means a thread panicked while holding
    /// it; the shard's slots are consistent between calls, so it is used as it is.
    pub fn shard(&self, hash: u64) -> MutexGuard<'_, Shard> {
        // Bits that hashbrown uses neither for the bucket (the low ones) nor for the tag (the
        // top seven) of the index inside the shard.
        let at = (hash >> 40) as usize & (self.shards.len() - 1);
        self.shards[at].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every shard in turn, for the counters.
    pub fn each(&self, mut f: impl FnMut(&Shard)) {
        for shard in self.shards.iter() {
            f(&shard.lock().unwrap_or_else(|e| e.into_inner()));
        }
    }
}
