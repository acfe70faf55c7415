//! Rebuilding one name of the writer's index from its contributors, and publishing the node
//! into the shards the next snapshot shares.

use std::hash::BuildHasher;
use std::sync::Arc;

use hickory_proto::rr::LowerName;

use super::super::names::{shard_of, Node};
use super::{source_of, Registry, STATIC_ID};
use crate::records::{single_rrsets, Built, RecordsBuilder, Roles};
use crate::wire::name_from_wire;
use crate::wire::RRset;

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
