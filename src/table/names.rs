//! The published names of a snapshot: flat hash tables in shards and groups, shared between
//! snapshots, and the [`Node`] that holds one name's wire name and pre-encoded RRsets.

use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::HashTable;

use crate::wire::{name_from_wire, RRset, RRsetRef};

/// The hasher of the live table: foldhash is several times faster than SipHash on short keys
/// and still seeded per process, so query names cannot be chosen to collide.
pub type FastHash = foldhash::fast::RandomState;

/// Number of shards of the published map (a power of two). A change copies the shards it
/// touches, so more shards mean cheaper changes at large sizes.
pub const SHARDS: usize = 4096;
/// Shards are held in this many groups of `SHARDS / GROUPS`: publishing a snapshot copies one
/// pointer per group, not per shard, which keeps a change cheap at small sizes too (each shard
/// pointer lives in its own allocation, so copying all 4,096 would cost 8,192 cache misses).
pub const GROUPS: usize = 64;
pub(super) const PER_GROUP: usize = SHARDS / GROUPS;

/// One shard: a flat table of nodes.
pub(super) type Shard = HashTable<Node>;
/// A group of shards, shared between snapshots until one of its shards changes.
pub(super) type Group = Arc<Vec<Arc<Shard>>>;

/// The shard of a name's hash, as (group, shard in group): bits 32.. (hashbrown uses the low
/// bits for the bucket and the top seven for its tag, so these are independent of both).
pub(super) fn shard_of(hash: u64) -> (usize, usize) {
    let shard = (hash >> 32) as usize & (SHARDS - 1);
    (shard / PER_GROUP, shard % PER_GROUP)
}

/// The published names of one snapshot: groups of shards of nodes, each shared with the
/// snapshots that did not change it.
#[derive(Clone, Default)]
pub struct Names {
    pub(super) hasher: FastHash,
    pub(super) groups: Arc<[Group]>,
}

impl std::fmt::Debug for Names {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Names({} nodes)", self.len())
    }
}

impl Names {
    /// The node of `name` (lowercase wire name).
    pub fn get(&self, name: &[u8]) -> Option<&Node> {
        let hash = self.hasher.hash_one(name);
        let (group, shard) = shard_of(hash);
        self.groups
            .get(group)?
            .get(shard)?
            .find(hash, |node| node.name() == name)
    }

    /// True when `name` is a name of the table (with records or an empty non-terminal).
    pub fn contains_key(&self, name: &[u8]) -> bool {
        self.get(name).is_some()
    }

    /// Every node, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Node> {
        self.shards().flat_map(|shard| shard.iter())
    }

    /// Number of names.
    pub fn len(&self) -> usize {
        self.shards().map(|shard| shard.len()).sum()
    }

    /// True when the table holds no name.
    pub fn is_empty(&self) -> bool {
        self.shards().all(|shard| shard.is_empty())
    }

    fn shards(&self) -> impl Iterator<Item = &Shard> {
        self.groups
            .iter()
            .flat_map(|group| group.iter().map(|s| &**s))
    }
}

/// One name of the live table in a single shared allocation: its lowercase wire name, then
/// its pre-encoded RRsets in ANY order (none for an empty non-terminal). Each set is a
/// header — type, count, additional count (u16 each), answer bytes, additional bytes (u32
/// each), little-endian — followed by those bytes and, for a set of several records, the
/// length of its spread (u32) and the spread.
#[derive(Clone, PartialEq, Eq)]
pub struct Node(Arc<[u8]>);

/// Largest node built without a temporary vector (most names: one or two small RRsets).
const SMALL_NODE: usize = 256;

/// Bytes a set's spread takes in a [`Node`]: its length and itself, for sets of several
/// records only (most sets hold one record and pay nothing).
fn spread_size(count: u16, spread: &[u8]) -> usize {
    if count > 1 {
        4 + spread.len()
    } else {
        0
    }
}

/// Bytes of a set's header inside a [`Node`].
const SET_HEADER: usize = 14;

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = name_from_wire(self.name())
            .map(|n| n.to_ascii())
            .unwrap_or_default();
        let types: Vec<u16> = self.rrsets().map(|s| s.rtype).collect();
        write!(f, "Node({name} {types:?})")
    }
}

/// Bytes a set takes in a [`Node`].
fn set_size(set: &RRset) -> usize {
    SET_HEADER + set.rrs.len() + set.extra.len() + spread_size(set.count, &set.spread)
}

/// The type a set header holds to say that local sets follow: no RRset has type 0.
const LOCAL_MARK: u16 = 0;

impl Node {
    /// True when `other` is this very node (not an equal copy): nodes are immutable and
    /// rebuilt on every change, so this tells whether a name changed.
    pub fn same(&self, other: &Node) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// A node for `name` holding `sets`.
    pub fn new(name: &[u8], sets: &[RRset]) -> Self {
        Self::with_local(name, sets, &[])
    }

    /// A node for `name` holding `sets` and, after them, `local`: sets of the instances of
    /// one zone each, by zone id ([`Node::local_rrset`]), which [`Node::rrsets`] does not see.
    /// Local sets follow a mark (an empty set of type 0), each behind its zone id (u16,
    /// little-endian).
    pub fn with_local(name: &[u8], sets: &[RRset], local: &[(u16, RRset)]) -> Self {
        let local_size = match local.len() {
            0 => 0,
            _ => SET_HEADER + local.iter().map(|(_, s)| 2 + set_size(s)).sum::<usize>(),
        };
        let size = 1 + name.len() + sets.iter().map(set_size).sum::<usize>() + local_size;
        // A node of the usual size is laid out on the stack and copied into its one
        // allocation; a bigger one goes through a vector.
        let mut small = [0u8; SMALL_NODE];
        let mut big = Vec::new();
        let bytes = if size <= SMALL_NODE {
            &mut small[..size]
        } else {
            big.resize(size, 0);
            &mut big[..]
        };
        let mut at = 0;
        let mut put = |part: &[u8]| {
            bytes[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        };
        put(&[name.len() as u8]);
        put(name);
        let mut put_set = |zone: Option<u16>, set: &RRset| {
            if let Some(zone) = zone {
                put(&zone.to_le_bytes());
            }
            put(&set.rtype.to_le_bytes());
            put(&set.count.to_le_bytes());
            put(&set.extra_count.to_le_bytes());
            put(&(set.rrs.len() as u32).to_le_bytes());
            put(&(set.extra.len() as u32).to_le_bytes());
            put(&set.rrs);
            put(&set.extra);
            if set.count > 1 {
                put(&(set.spread.len() as u32).to_le_bytes());
                put(&set.spread);
            }
        };
        for set in sets {
            put_set(None, set);
        }
        if !local.is_empty() {
            let mark = RRset {
                rtype: LOCAL_MARK,
                count: 0,
                rrs: Box::default(),
                extra_count: 0,
                extra: Box::default(),
                spread: Box::default(),
            };
            put_set(None, &mark);
            for (zone, set) in local {
                put_set(Some(*zone), set);
            }
        }
        Self(Arc::from(&*bytes))
    }

    /// The lowercase wire name.
    pub fn name(&self) -> &[u8] {
        let len = self.0.first().map_or(0, |&l| l as usize);
        self.0.get(1..1 + len).unwrap_or_default()
    }

    /// The RRsets, in ANY order.
    #[inline]
    pub fn rrsets(&self) -> impl Iterator<Item = RRsetRef<'_>> {
        let mut rest = self.0.get(1 + self.name().len()..).unwrap_or_default();
        std::iter::from_fn(move || {
            let (set, end) = read_set(rest)?;
            if set.rtype == LOCAL_MARK {
                return None;
            }
            rest = &rest[end..];
            Some(set)
        })
    }

    /// The RRset of type `rtype`.
    #[inline]
    pub fn rrset(&self, rtype: u16) -> Option<RRsetRef<'_>> {
        self.rrsets().find(|s| s.rtype == rtype)
    }

    /// The local sets: (zone id, set), none for most names.
    pub fn local_rrsets(&self) -> impl Iterator<Item = (u16, RRsetRef<'_>)> {
        let mut rest = self.0.get(1 + self.name().len()..).unwrap_or_default();
        // Past the sets every name has, to the mark.
        loop {
            match read_set(rest) {
                Some((set, end)) if set.rtype != LOCAL_MARK => rest = &rest[end..],
                Some((_, end)) => {
                    rest = &rest[end..];
                    break;
                }
                None => {
                    rest = &[];
                    break;
                }
            }
        }
        std::iter::from_fn(move || {
            let zone = u16::from_le_bytes([*rest.first()?, *rest.get(1)?]);
            let (set, end) = read_set(&rest[2..])?;
            rest = &rest[2 + end..];
            Some((zone, set))
        })
    }

    /// The local set of `rtype` for zone `zone`, and whether the name has local sets of that
    /// type at all (for another zone).
    pub fn local_rrset(&self, rtype: u16, zone: u16) -> (Option<RRsetRef<'_>>, bool) {
        let mut any = false;
        for (z, set) in self.local_rrsets() {
            if set.rtype == rtype {
                if z == zone {
                    return (Some(set), true);
                }
                any = true;
            }
        }
        (None, any)
    }
}

/// The set at the start of `rest` and where it ends.
#[inline(always)]
fn read_set(rest: &[u8]) -> Option<(RRsetRef<'_>, usize)> {
    let header = rest.get(..SET_HEADER)?;
    let u16_at = |at: usize| u16::from_le_bytes([header[at], header[at + 1]]);
    let u32_at = |at: usize| {
        u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]]) as usize
    };
    let (count, rrs_len, extra_len) = (u16_at(2), u32_at(6), u32_at(10));
    let body = SET_HEADER + rrs_len + extra_len;
    let rrs = rest.get(SET_HEADER..SET_HEADER + rrs_len)?;
    let extra = rest.get(SET_HEADER + rrs_len..body)?;
    // Sets of several records carry their spread after the records: its length, then it.
    let (spread, end) = if count > 1 {
        let len = rest.get(body..body + 4)?;
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        (rest.get(body + 4..body + 4 + len)?, body + 4 + len)
    } else {
        (&[][..], body)
    };
    let set = RRsetRef {
        rtype: u16_at(0),
        count,
        rrs,
        extra_count: u16_at(4),
        extra,
        spread,
    };
    Some((set, end))
}
