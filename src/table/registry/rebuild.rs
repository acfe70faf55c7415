//! Rebuilding one name of the writer's index from its contributors, and publishing the node
//! into the shards the next snapshot shares.

use std::hash::BuildHasher;
use std::sync::Arc;

use hickory_proto::rr::LowerName;

use super::super::names::{shard_of, Node};
use super::{source_of, Registry, STATIC_ID};
use crate::records::RecordsBuilder;
use crate::wire::name_from_wire;

impl Registry {
    /// Rebuilds the RRsets of one name from what contributes to it, and publishes the node
    /// (or its removal, when nothing contributes any more) if it changed.
    pub(super) fn recompute(&mut self, name: &[u8]) {
        let hash = self.hasher.hash_one(name);
        let Ok(found) = self.names.find_entry(hash, |e| e.node.name() == name) else {
            return;
        };
        if found.get().contributors.is_empty() {
            found.remove();
            self.publish(hash, name, None);
            return;
        }
        let entry = found.into_mut();
        let mut builder = RecordsBuilder::default();
        for (id, roles) in entry.contributors.iter() {
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
            let Some((src, config)) = source_of(&self.live, inst.source as usize) else {
                continue;
            };
            let Some(zone) = self.zones.get(src.zone) else {
                continue;
            };
            let owner = || {
                let placement = src.format.place(&src.prefix, zone.labels, &inst.etcd_key);
                placement.owner_name(&zone.name)
            };
            builder.add(&owner, &inst.registration, roles, config.ttl);
        }
        let node = Node::new(name, &builder.finish());
        entry.node = node.clone();
        self.publish(hash, name, Some(node));
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
