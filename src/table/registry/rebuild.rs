//! Rebuilding one name of the writer's index from its contributors, and publishing the node
//! into the shards the next snapshot shares.

use std::hash::BuildHasher;
use std::sync::Arc;

use hickory_proto::rr::LowerName;

use super::super::names::{shard_of, Node};
use super::{source_of, Registry, STATIC_ID};
use crate::records::{single_rrsets, Built, RecordsBuilder, Roles};
use crate::wire::RRset;
use crate::wire::{name_from_wire, zone_offset};

impl Registry {
    /// Rebuilds the RRsets of name `id` from what contributes to it, and publishes the node
    /// (or its removal, when nothing contributes any more) if it changed.
    pub(super) fn recompute(&mut self, id: u32) {
        let Some(entry) = self.index.get(id) else {
            return;
        };
        if entry.contributors.is_empty() {
            if let Some(name) = self.index.release(id) {
                self.publish(self.hasher.hash_one(&name), &name, None);
            }
            return;
        }
        let name = self.index.name(id);
        let sets = match entry.contributors.single() {
            Some((id, roles)) if id != STATIC_ID => self.single_sets(id, roles),
            _ => None,
        };
        let node = match sets {
            Some(set) => Node::new(name, set.as_slice()),
            None => {
                let (sets, local) = self.build(name, id);
                Node::with_local(name, &sets, &local)
            }
        };
        self.index.set_node(id, node.clone());
        let hash = self.hasher.hash_one(node.name());
        let published = node.clone();
        self.publish(hash, published.name(), Some(node));
    }

    /// The RRsets of a name whose only contributor is instance `id` in `roles`, when
    /// [`single_rrsets`] knows its shape (the common case, and the cheap one).
    fn single_sets(&self, id: u32, roles: Roles) -> Option<Option<RRset>> {
        let inst = self.slab.get(id as usize)?.as_ref()?;
        let (feed, config) = source_of(&self.live, inst.source as usize)?;
        let zone = self.zones.get(feed.zone)?;
        let owner = || {
            let placement = feed
                .format
                .place(&feed.prefix, zone.labels, inst.etcd_key());
            placement.owner_name(&zone.name)
        };
        single_rrsets(&owner, &inst.registration(), roles, config.ttl)
    }

    /// The RRsets of `name` (entry `entry`) from everything that contributes to it, and its
    /// local sets.
    fn build(&self, name: &[u8], entry: u32) -> Built {
        let mut builder = RecordsBuilder::with_localities(&self.live.localities);
        for (id, roles) in self.index.contributors(entry) {
            if id == STATIC_ID {
                let Some(owner) = name_from_wire(name) else {
                    continue;
                };
                let lower = LowerName::new(&owner);
                for record in self
                    .live
                    .zones
                    .iter()
                    .filter_map(|z| z.statics.as_ref()?.names.get(&lower))
                    .flatten()
                {
                    builder.add_static(record);
                }
                continue;
            }
            let Some(inst) = self.slab.get(id as usize).and_then(Option::as_ref) else {
                continue;
            };
            let Some((feed, config)) = source_of(&self.live, inst.source as usize) else {
                continue;
            };
            let Some(zone) = self.zones.get(feed.zone) else {
                continue;
            };
            let owner = || {
                let placement = feed
                    .format
                    .place(&feed.prefix, zone.labels, inst.etcd_key());
                placement.owner_name(&zone.name)
            };
            builder.add(&owner, &inst.registration(), roles, config.ttl);
        }
        builder.finish_local()
    }

    /// Puts `node` (or, with `None`, the absence of `name`) into the published shard, copying
    /// the shard if the last snapshot still shares it. An unchanged node is left alone.
    fn publish(&mut self, hash: u64, name: &[u8], node: Option<Node>) {
        let (group, shard) = shard_of(hash);
        let Some(group) = self.groups.get_mut(group) else {
            return;
        };
        let published = group
            .get(shard)
            .and_then(|s| s.find(hash, |n| n.name() == name));
        if published == node.as_ref() {
            return;
        }
        if self.journal {
            let zone = self
                .zones
                .iter_mut()
                .find(|z| zone_offset(name, &z.name).is_some());
            if let Some(zone) = zone {
                journal_diff(
                    name,
                    published,
                    node.as_ref(),
                    &mut zone.removed,
                    &mut zone.added,
                );
            }
        }
        let Some(shard) = Arc::make_mut(group).get_mut(shard) else {
            return;
        };
        let shard = Arc::make_mut(shard);
        let hasher = &self.hasher;
        match (shard.find_entry(hash, |n| n.name() == name), node) {
            (Ok(mut found), Some(node)) => *found.get_mut() = node,
            (Ok(found), None) => {
                found.remove();
            }
            (Err(_), Some(node)) => {
                shard.insert_unique(hash, node, |n| hasher.hash_one(n.name()));
            }
            (Err(_), None) => {}
        }
    }
}

/// Appends to `removed` and `added` (each record as `name`, then type to RDATA) what changed at
/// `name` from `old` to `new`.
fn journal_diff(
    name: &[u8],
    old: Option<&Node>,
    new: Option<&Node>,
    removed: &mut Vec<u8>,
    added: &mut Vec<u8>,
) {
    fn tails(node: Option<&Node>) -> Vec<&[u8]> {
        let mut out = Vec::new();
        for set in node.iter().flat_map(|n| n.rrsets()) {
            let mut rest = set.rrs;
            while rest.len() > 12 {
                let rdlen = usize::from(u16::from_be_bytes([rest[10], rest[11]]));
                let len = (12 + rdlen).min(rest.len());
                // Stored records start with a pointer to the question: the owner is `name`.
                out.push(&rest[2..len]);
                rest = &rest[len..];
            }
        }
        out
    }
    let (before, after) = (tails(old), tails(new));
    let before_set: std::collections::HashSet<&[u8]> = before.iter().copied().collect();
    let after_set: std::collections::HashSet<&[u8]> = after.iter().copied().collect();
    for tail in before.iter().filter(|t| !after_set.contains(*t)) {
        removed.extend_from_slice(name);
        removed.extend_from_slice(tail);
    }
    for tail in after.iter().filter(|t| !before_set.contains(*t)) {
        added.extend_from_slice(name);
        added.extend_from_slice(tail);
    }
}
