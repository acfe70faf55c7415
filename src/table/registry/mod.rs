//! The writer's side of the table: every instance by etcd key, every name with who
//! contributes to it, and the shards the next snapshot will share.

use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::HashTable;
use tracing::{debug, warn};

use super::names::{FastHash, Group, Names, GROUPS, PER_GROUP, SHARDS};
use super::serials::ZoneSerial;
use super::{Rejected, Snapshot};
use crate::logging::clip;
use crate::records::{instance_names, static_names, Placement, Roles};
use crate::service::{Invalid, Registration};
use crate::sources::{Live, Source};
use crate::zone::ZoneConfig;

mod index;
mod instance;
mod rebuild;

use index::NameIndex;
use instance::{etcd_key_of, is_instance, Instance};

/// The outcome of applying one etcd event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The key now serves records.
    Registered,
    /// The key's records are gone (or it had none).
    Removed,
    /// The key or value is invalid: skipped, with the reason.
    Rejected(Invalid),
    /// The key is no instance (a marker key, a disabled instance, a name outside the zone):
    /// it serves no records and is not reported.
    Ignored,
}

/// The writer's side of the table: every instance by key, and the derived records by name.
pub struct Registry {
    live: Arc<Live>,
    /// Each zone's wire name, label count, apex and serial, in [`Live::zones`] order.
    zones: Vec<ZoneSerial>,
    /// Instance ids, hashed by their etcd key (which the instance holds).
    ids: HashTable<u32>,
    /// Instances by id (a slab: freed ids are reused), so nodes name contributors in 4 bytes.
    slab: Vec<Option<Instance>>,
    free: Vec<u32>,
    /// Every name with its contributors, and which changed since the last snapshot.
    index: NameIndex,
    /// The published shards by group, shared with the last snapshot until a change copies one.
    groups: Vec<Group>,
    hasher: FastHash,
    /// Keys skipped as invalid, shared with the snapshots until it changes again (so
    /// publishing stays O(1); a change copies the map).
    rejected: Arc<Rejected>,
    /// The previous table's rejected keys, while a re-read rebuilds the registry: a key
    /// rejected there for the same reason is not logged again (cleared at the first snapshot).
    known_rejected: Arc<Rejected>,
    /// The highest etcd revision applied, over every zone.
    revision: i64,
    /// True once the first snapshot was made and IXFR history is kept: from then on each
    /// published change is recorded, record by record (the initial read is not).
    journal: bool,
}

impl Registry {
    /// A registry for the one zone `config`, fed by its native registry, holding only the
    /// zone file's static records, if any.
    pub fn new(config: Arc<ZoneConfig>) -> Self {
        Self::for_live(Arc::new(Live::native((*config).clone())))
    }

    /// A registry for `live`'s zones and registries holding only the zone files' static
    /// records, if any.
    pub fn for_live(live: Arc<Live>) -> Self {
        let hasher = FastHash::default();
        let mut registry = Self {
            index: NameIndex::new(hasher.clone()),
            ids: HashTable::new(),
            slab: Vec::new(),
            free: Vec::new(),
            groups: (0..GROUPS)
                .map(|_| Arc::new((0..PER_GROUP).map(|_| Arc::default()).collect()))
                .collect(),
            hasher,
            rejected: Arc::default(),
            known_rejected: Arc::default(),
            zones: live.zones.iter().map(|z| ZoneSerial::new(z)).collect(),
            revision: 0,
            journal: false,
            live,
        };
        let live = registry.live.clone();
        for config in &live.zones {
            for name in config.statics.iter().flat_map(|s| s.names.keys()) {
                for touched in static_names(&name.into(), &config.zone) {
                    registry.add_contributor(&touched, STATIC_ID, Roles::default());
                }
            }
        }
        registry
    }

    /// The same registry, told which keys the previous table rejected (and why), so that a
    /// re-read logs only the keys that are newly invalid or invalid for another reason.
    pub fn with_known_rejected(mut self, previous: Arc<Rejected>) -> Self {
        self.known_rejected = previous;
        self
    }

    /// Makes room for `instances` more instances and their names (about two each) at once,
    /// instead of growing every table step by step: a big initial read knows its size from
    /// its first page. Shards already shared with a snapshot are left to grow.
    pub fn reserve(&mut self, instances: usize) {
        let (slab, hasher) = (&self.slab, &self.hasher);
        self.ids
            .reserve(instances, |&id| hasher.hash_one(etcd_key_of(slab, id)));
        self.slab.reserve(instances.saturating_sub(self.free.len()));
        self.index.reserve(2 * instances);
        // A quarter more than the average, for the spread of names over shards.
        let per_shard = 2 * instances / SHARDS;
        if per_shard == 0 {
            return;
        }
        let hasher = &self.hasher;
        for group in &mut self.groups {
            let Some(group) = Arc::get_mut(group) else {
                continue;
            };
            for shard in group.iter_mut().filter_map(Arc::get_mut) {
                shard.reserve(per_shard + per_shard / 4, |n| hasher.hash_one(n.name()));
            }
        }
    }

    /// Number of valid instances.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when no instance is registered.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Keeps the SOA serial of the first zone from going backwards after a table that
    /// published `previous` (etcd wiped or restored to an older revision), carrying that
    /// table's offset along.
    pub fn continue_serial(&mut self, previous: u32, offset: u32) {
        if let Some(zone) = self.zones.first_mut() {
            zone.continue_after(previous, offset);
        }
    }

    /// [`Registry::continue_serial`] for every zone, from the zones of `previous` (a snapshot
    /// of the same zones).
    pub fn continue_serials(&mut self, previous: &Snapshot) {
        for (zone, view) in self.zones.iter_mut().zip(previous.zones.iter()) {
            let offset = view.serial.wrapping_sub(view.revision as u32);
            zone.continue_after(view.serial, offset);
        }
    }

    /// [`Registry::continue_serial`] for every zone an earlier run saved a serial for
    /// (`--serial-file`): a serial never goes backwards across a restart, an etcd wipe included.
    pub fn continue_saved(&mut self) {
        let live = self.live.clone();
        for saved in &live.saved_serials {
            if let Some(zone) = self.zones.iter_mut().find(|z| *z.name == *saved.zone) {
                zone.continue_after(saved.serial, saved.offset);
            }
        }
    }

    /// Records that every zone now reflects etcd revision `revision` (a full read).
    pub fn set_revision(&mut self, revision: i64) {
        self.revision = self.revision.max(revision);
        for zone in &mut self.zones {
            zone.advance(revision);
        }
    }

    /// Records that registry `source` changed at etcd revision `revision`: its zone's serial
    /// follows, the other zones' stay.
    pub fn advance(&mut self, source: usize, revision: i64) {
        self.revision = self.revision.max(revision);
        let zone = self.live.sources.get(source).map(|s| s.zone);
        if let Some(zone) = zone.and_then(|z| self.zones.get_mut(z)) {
            zone.advance(revision);
        }
    }

    /// Applies a put of `value` at `key` of the first registry (see [`Registry::put_from`]).
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> Applied {
        self.put_from(0, key, value)
    }

    /// Applies a put of `value` at `key` of registry `source`. An invalid key or value is
    /// skipped with a warning naming the key (once per key and reason); an invalid new value
    /// removes the key's old records.
    pub fn put_from(&mut self, source: usize, key: &[u8], value: &[u8]) -> Applied {
        // Borrowed unless the key is not UTF-8: no copy of a key the table keeps inline.
        let key_text = String::from_utf8_lossy(key);
        let live = self.live.clone();
        let Some((feed, config)) = source_of(&live, source) else {
            return Applied::Ignored;
        };
        let parsed = feed.format.parse(&feed.prefix, &config.zone, key, value);
        self.remove_instance(source, &key_text);
        match parsed {
            Ok(Some((placement, registration))) => {
                self.rejected_remove(&key_text);
                self.insert_instance(&key_text, source, &placement, registration);
                Applied::Registered
            }
            Ok(None) => {
                self.rejected_remove(&key_text);
                Applied::Ignored
            }
            Err(reason) => {
                let known = |map: &Rejected| map.get(&*key_text) == Some(&reason);
                if !known(&self.rejected) {
                    if !known(&self.known_rejected) {
                        let error = reason.to_string();
                        warn!(key = %clip(&key_text), error = %clip(&error),
                            "skipping invalid registration");
                    }
                    Arc::make_mut(&mut self.rejected).insert(key_text.into(), reason.clone());
                }
                Applied::Rejected(reason)
            }
        }
    }

    /// Applies a delete of `key` of the first registry.
    pub fn delete(&mut self, key: &[u8]) -> Applied {
        self.delete_from(0, key)
    }

    /// Applies a delete of `key` of registry `source`.
    pub fn delete_from(&mut self, source: usize, key: &[u8]) -> Applied {
        let key_text = String::from_utf8_lossy(key).into_owned();
        self.rejected_remove(&key_text);
        self.remove_instance(source, &key_text);
        Applied::Removed
    }

    /// Rebuilds the names changed since the last call and puts them into the shards. Called
    /// by [`Registry::snapshot`]; the initial read also calls it after every page, so that
    /// this work overlaps with etcd serving the next one.
    pub fn flush(&mut self) {
        for id in self.index.take_dirty() {
            self.recompute(id);
        }
        self.index.built();
    }

    /// A new immutable view of the current state: rebuilds the names changed since the last
    /// one, then shares the groups of shards (one pointer copy each).
    pub fn snapshot(&mut self) -> Snapshot {
        self.flush();
        let max = self.live.ixfr_history;
        for zone in &mut self.zones {
            zone.close_change(self.journal, max);
        }
        self.journal = max > 0;
        // The re-read is over: from now on a rejected key is compared with this table only.
        self.known_rejected = Arc::default();
        let names = Names {
            hasher: self.hasher.clone(),
            groups: self.groups.iter().cloned().collect(),
        };
        Snapshot::new(
            self.zones.iter().map(ZoneSerial::view).collect(),
            names,
            self.revision,
            self.ids.len(),
            self.rejected.clone(),
            true,
        )
    }

    fn rejected_remove(&mut self, key: &str) {
        if self.rejected.contains_key(key) {
            Arc::make_mut(&mut self.rejected).remove(key);
        }
    }

    fn add_contributor(&mut self, name: &[u8], id: u32, roles: Roles) {
        self.index.add(name, id, roles);
    }

    fn remove_contributor(&mut self, name: &[u8], id: u32) {
        self.index.remove(name, id);
    }

    /// Adds a valid instance of registry `source`: `etcd_key` as written, `placement` its
    /// names.
    fn insert_instance(
        &mut self,
        etcd_key: &str,
        source: usize,
        placement: &Placement<'_>,
        registration: Registration,
    ) {
        let Some(names) = self.names_of(source, placement, &registration) else {
            return;
        };
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                self.slab.push(None);
                (self.slab.len() - 1) as u32
            }
        };
        for (name, roles) in names {
            self.add_contributor(&name, id, roles);
        }
        debug!(key = %etcd_key, "registered");
        let hash = self.hasher.hash_one(etcd_key);
        self.slab[id as usize] = Some(Instance::new(etcd_key, source as u16, registration));
        let (slab, hasher) = (&self.slab, &self.hasher);
        self.ids
            .insert_unique(hash, id, |&id| hasher.hash_one(etcd_key_of(slab, id)));
    }

    fn remove_instance(&mut self, source: usize, etcd_key: &str) {
        let hash = self.hasher.hash_one(etcd_key);
        let slab = &self.slab;
        let Ok(found) = self
            .ids
            .find_entry(hash, |&id| is_instance(slab, id, source, etcd_key))
        else {
            return;
        };
        let (id, _) = found.remove();
        let Some(old) = self.slab.get_mut(id as usize).and_then(Option::take) else {
            return;
        };
        self.free.push(id);
        // Only the etcd key is kept, so the names are derived again (without checking again).
        let names = self
            .place(&old)
            .and_then(|placement| self.names_of(source, &placement, &old.registration()));
        for (name, _) in names.into_iter().flatten() {
            self.remove_contributor(&name, id);
        }
    }

    /// The placement of an accepted instance, derived from its key.
    fn place<'i>(&self, inst: &'i Instance) -> Option<Placement<'i>> {
        let feed = self.live.sources.get(inst.source as usize)?;
        let labels = self.zones.get(feed.zone)?.labels;
        Some(feed.format.place(&feed.prefix, labels, inst.etcd_key()))
    }

    /// Every name an instance of registry `source` touches, with its roles.
    fn names_of(
        &self,
        source: usize,
        placement: &Placement<'_>,
        registration: &Registration,
    ) -> Option<Vec<(Vec<u8>, Roles)>> {
        let feed = self.live.sources.get(source)?;
        let zone = &self.zones.get(feed.zone)?.name;
        Some(instance_names(placement, registration, zone))
    }
}

/// Registry `source` of `live` and the configuration of its zone.
fn source_of(live: &Live, source: usize) -> Option<(&Source, &ZoneConfig)> {
    let feed = live.sources.get(source)?;
    Some((feed, live.zones.get(feed.zone)?))
}

/// The contributor id of a zone file's static records (never an instance id).
const STATIC_ID: u32 = u32::MAX;

#[cfg(test)]
mod tests;
