//! The writer's index of names: every name of the table with who contributes to it, and which
//! names changed since the last snapshot.

use std::hash::BuildHasher;

use hashbrown::HashTable;

use super::super::contributors::Contributors;
use super::super::names::{FastHash, Node};
use crate::records::Roles;

/// The writer's record of one name: its current node (which holds the name) and who
/// contributes to it (32 bytes).
pub(super) struct Entry {
    /// The name's last built node: its wire name and RRsets.
    pub(super) node: Node,
    /// Instances (and the zone file) that contribute records to the name.
    pub(super) contributors: Contributors,
}

/// Every name with its contributors, by entry id, and the entries changed since the last
/// [`NameIndex::take_dirty`].
pub(super) struct NameIndex {
    hasher: FastHash,
    /// Entry ids hashed by name: 4 bytes a name in the table, the entries themselves in a
    /// slab (a million instances make two million names).
    ids: HashTable<u32>,
    /// Entries by id; freed ids are reused.
    entries: Vec<Option<Entry>>,
    free: Vec<u32>,
    /// Entries out of date, each listed once (`listed` holds a bit per id): rebuilt once each
    /// at the next snapshot, so a batch of events (or the initial read) costs O(changes).
    dirty: Vec<u32>,
    listed: Vec<u64>,
}

impl NameIndex {
    /// An empty index hashing names with `hasher` (the published shards' hasher).
    pub(super) fn new(hasher: FastHash) -> Self {
        Self {
            hasher,
            ids: HashTable::new(),
            entries: Vec::new(),
            free: Vec::new(),
            dirty: Vec::new(),
            listed: Vec::new(),
        }
    }

    /// Makes room for `names` more names.
    pub(super) fn reserve(&mut self, names: usize) {
        let (entries, hasher) = (&self.entries, &self.hasher);
        self.ids
            .reserve(names, |&id| hasher.hash_one(name_of(entries, id)));
        self.entries.reserve(names.saturating_sub(self.free.len()));
    }

    /// The entry `id`, if it is in use.
    pub(super) fn get(&self, id: u32) -> Option<&Entry> {
        self.entries.get(id as usize)?.as_ref()
    }

    /// Records that contributor `contributor` gives `name` `roles` (creating the entry), and
    /// marks the name dirty.
    pub(super) fn add(&mut self, name: &[u8], contributor: u32, roles: Roles) {
        let hash = self.hasher.hash_one(name);
        let entries = &self.entries;
        let id = match self.ids.find(hash, |&id| name_of(entries, id) == name) {
            Some(&id) => id,
            None => {
                let entry = Entry {
                    node: Node::new(name, &[]),
                    contributors: Contributors::default(),
                };
                let id = match self.free.pop() {
                    Some(id) => {
                        self.entries[id as usize] = Some(entry);
                        id
                    }
                    None => {
                        self.entries.push(Some(entry));
                        (self.entries.len() - 1) as u32
                    }
                };
                let (entries, hasher) = (&self.entries, &self.hasher);
                self.ids
                    .insert_unique(hash, id, |&id| hasher.hash_one(name_of(entries, id)));
                id
            }
        };
        if let Some(entry) = self.entries[id as usize].as_mut() {
            entry.contributors.insert(contributor, roles);
        }
        self.mark(id);
    }

    /// Records that `contributor` no longer gives `name` anything, and marks it dirty.
    pub(super) fn remove(&mut self, name: &[u8], contributor: u32) {
        let hash = self.hasher.hash_one(name);
        let entries = &self.entries;
        let Some(&id) = self.ids.find(hash, |&id| name_of(entries, id) == name) else {
            return;
        };
        if let Some(entry) = self.entries[id as usize].as_mut() {
            entry.contributors.remove(contributor);
        }
        self.mark(id);
    }

    /// Replaces the node of entry `id`.
    pub(super) fn set_node(&mut self, id: u32, node: Node) {
        if let Some(Some(entry)) = self.entries.get_mut(id as usize) {
            entry.node = node;
        }
    }

    /// Drops entry `id` (one nothing contributes to any more) and returns it.
    pub(super) fn release(&mut self, id: u32) -> Option<Entry> {
        let entry = self.entries.get_mut(id as usize)?.take()?;
        let hash = self.hasher.hash_one(entry.node.name());
        if let Ok(found) = self.ids.find_entry(hash, |&other| other == id) {
            found.remove();
        }
        self.free.push(id);
        Some(entry)
    }

    /// The entries marked dirty since the last call, each once; none is marked afterwards.
    pub(super) fn take_dirty(&mut self) -> Vec<u32> {
        let dirty = std::mem::take(&mut self.dirty);
        for &id in &dirty {
            if let Some(word) = self.listed.get_mut(id as usize / 64) {
                *word &= !(1 << (id % 64));
            }
        }
        dirty
    }

    fn mark(&mut self, id: u32) {
        let (word, bit) = (id as usize / 64, 1u64 << (id % 64));
        if word >= self.listed.len() {
            self.listed.resize(word + 1, 0);
        }
        if self.listed[word] & bit == 0 {
            self.listed[word] |= bit;
            self.dirty.push(id);
        }
    }
}

/// The name of entry `id` (empty for a free slot).
fn name_of(entries: &[Option<Entry>], id: u32) -> &[u8] {
    entries
        .get(id as usize)
        .and_then(Option::as_ref)
        .map_or(&[], |entry| entry.node.name())
}
