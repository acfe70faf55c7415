//! The writer's index of names: every name of the table with who contributes to it, and which
//! names changed since the last snapshot.

use std::hash::BuildHasher;

use hashbrown::HashTable;

use super::super::contributors::{Contributors, Lists};
use super::super::names::{FastHash, Node};
use crate::records::Roles;

/// The writer's record of one name: its current node (which holds the name) and who
/// contributes to it (24 bytes).
pub(super) struct Entry {
    /// The name's last built node, or, until its first build, where its name waits.
    node: Slot,
    /// Instances (and the zone file) that contribute records to the name.
    pub(super) contributors: Contributors,
}

/// An entry's node, or the place of its name in [`NameIndex`]'s `pending` bytes before the
/// next snapshot first builds it: a new name costs no allocation of its own until then (a
/// big initial read adds millions of names at once).
enum Slot {
    Built(Node),
    Pending { at: u32, len: u8 },
}

const _: () = assert!(std::mem::size_of::<Entry>() == 24);

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
    /// The names of the entries not built yet, back to back (emptied once they are).
    pending: Vec<u8>,
    /// The contributors of the names that have more than one.
    lists: Lists,
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
            pending: Vec::new(),
            lists: Lists::default(),
            dirty: Vec::new(),
            listed: Vec::new(),
        }
    }

    /// Makes room for `names` more names.
    pub(super) fn reserve(&mut self, names: usize) {
        let (entries, pending, hasher) = (&self.entries, &self.pending, &self.hasher);
        self.ids
            .reserve(names, |&id| hasher.hash_one(name_of(entries, pending, id)));
        self.entries.reserve(names.saturating_sub(self.free.len()));
    }

    /// The entry `id`, if it is in use.
    pub(super) fn get(&self, id: u32) -> Option<&Entry> {
        self.entries.get(id as usize)?.as_ref()
    }

    /// The contributors of entry `id`, by id.
    pub(super) fn contributors(&self, id: u32) -> impl Iterator<Item = (u32, Roles)> + '_ {
        let contributors = self.get(id).map(|e| e.contributors).unwrap_or_default();
        contributors.iter(&self.lists)
    }

    /// The name of entry `id` (empty for a free one).
    pub(super) fn name(&self, id: u32) -> &[u8] {
        name_of(&self.entries, &self.pending, id)
    }

    /// Forgets the names waiting for their first build: every entry has been built (or
    /// released) since they were added. Called at the end of a snapshot's rebuild.
    pub(super) fn built(&mut self) {
        debug_assert!(self.dirty.is_empty());
        // Freed, not kept: after a big read it would hold tens of megabytes for nothing.
        self.pending = Vec::new();
    }

    /// Records that contributor `contributor` gives `name` `roles` (creating the entry), and
    /// marks the name dirty.
    pub(super) fn add(&mut self, name: &[u8], contributor: u32, roles: Roles) {
        let hash = self.hasher.hash_one(name);
        let (entries, pending) = (&self.entries, &self.pending);
        let id = match self
            .ids
            .find(hash, |&id| name_of(entries, pending, id) == name)
        {
            Some(&id) => id,
            None => {
                let entry = Entry {
                    node: Slot::Pending {
                        at: self.pending.len() as u32,
                        len: name.len() as u8,
                    },
                    contributors: Contributors::default(),
                };
                self.pending.extend_from_slice(name);
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
                let (entries, pending, hasher) = (&self.entries, &self.pending, &self.hasher);
                self.ids.insert_unique(hash, id, |&id| {
                    hasher.hash_one(name_of(entries, pending, id))
                });
                id
            }
        };
        if let Some(entry) = self.entries[id as usize].as_mut() {
            entry
                .contributors
                .insert(&mut self.lists, contributor, roles);
        }
        self.mark(id);
    }

    /// Records that `contributor` no longer gives `name` anything, and marks it dirty.
    pub(super) fn remove(&mut self, name: &[u8], contributor: u32) {
        let hash = self.hasher.hash_one(name);
        let (entries, pending) = (&self.entries, &self.pending);
        let Some(&id) = self
            .ids
            .find(hash, |&id| name_of(entries, pending, id) == name)
        else {
            return;
        };
        if let Some(entry) = self.entries[id as usize].as_mut() {
            entry.contributors.remove(&mut self.lists, contributor);
        }
        self.mark(id);
    }

    /// Replaces the node of entry `id`.
    pub(super) fn set_node(&mut self, id: u32, node: Node) {
        if let Some(Some(entry)) = self.entries.get_mut(id as usize) {
            entry.node = Slot::Built(node);
        }
    }

    /// Drops entry `id` (one nothing contributes to any more) and returns its name.
    pub(super) fn release(&mut self, id: u32) -> Option<Vec<u8>> {
        let name = self.get(id)?;
        let name = name.name(&self.pending).to_vec();
        let hash = self.hasher.hash_one(&name);
        if let Ok(found) = self.ids.find_entry(hash, |&other| other == id) {
            found.remove();
        }
        self.entries[id as usize] = None;
        self.free.push(id);
        Some(name)
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

impl Entry {
    /// The entry's name (`pending`: the index's names not built yet).
    fn name<'a>(&'a self, pending: &'a [u8]) -> &'a [u8] {
        match &self.node {
            Slot::Built(node) => node.name(),
            Slot::Pending { at, len } => {
                let at = *at as usize;
                pending.get(at..at + *len as usize).unwrap_or_default()
            }
        }
    }
}

/// The name of entry `id` (empty for a free slot).
fn name_of<'a>(entries: &'a [Option<Entry>], pending: &'a [u8], id: u32) -> &'a [u8] {
    entries
        .get(id as usize)
        .and_then(Option::as_ref)
        .map_or(&[], |entry| entry.name(pending))
}
