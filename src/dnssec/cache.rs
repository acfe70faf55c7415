//! Signatures kept per RRset version: a set is signed once, and again only when it changed or
//! its signature is half used up. A version is the table node the set was read from (nodes
//! are immutable and rebuilt on every change; the entry keeps its node alive, so a new node
//! can never be taken for the old one), the SOA serial, or nothing for what never changes.

use std::hash::BuildHasher;
use std::sync::Mutex;

use hashbrown::HashTable;

use crate::table::{FastHash, Node};

/// What a signature was made over.
#[derive(Debug, Clone)]
pub enum Version {
    /// The RRsets of this node (compared by identity).
    Node(Node),
    /// The zone's SOA with this serial.
    Serial(u32),
    /// A name that does not exist (compact denial) or a set that never changes (DNSKEY, NS).
    Fixed,
}

impl Version {
    fn same(&self, other: &Version) -> bool {
        match (self, other) {
            (Version::Node(a), Version::Node(b)) => a.same(b),
            (Version::Serial(a), Version::Serial(b)) => a == b,
            (Version::Fixed, Version::Fixed) => true,
            _ => false,
        }
    }
}

/// What a cached signature is for: owner (lowercase wire name), type and variant (0: the
/// whole set; otherwise 1 + the locality zone of a local set, or a denial's kind), and which
/// records of it ([`SigCache::subset`]; 0: all).
#[derive(Debug, Clone, Copy)]
pub struct SigKey<'a> {
    /// Owner.
    pub name: &'a [u8],
    /// Type covered (NSEC for a denial).
    pub rtype: u16,
    /// Which set of that type.
    pub variant: u16,
    /// Which records of the set, when an answer carries some of them.
    pub subset: u64,
}

struct Entry {
    hash: u64,
    name: Box<[u8]>,
    rtype: u16,
    variant: u16,
    subset: u64,
    version: Version,
    /// Unix seconds when it was made: a clock stepped back before it makes it unusable (its
    /// inception could lie in a validator's future).
    made: u64,
    /// Unix seconds after which it is signed again.
    until: u64,
    /// What the caller stored: RRSIG records (and NSEC) in the caller's layout.
    data: Box<[u8]>,
}

impl Entry {
    fn is(&self, key: &SigKey<'_>) -> bool {
        self.rtype == key.rtype
            && self.variant == key.variant
            && self.subset == key.subset
            && *self.name == *key.name
    }
}

/// Number of shards (a power of two): one lock each, so that threads rarely meet.
const SHARDS: usize = 64;

/// One shard: its entries and the bytes they hold.
#[derive(Default)]
struct Shard {
    table: HashTable<Entry>,
    bytes: usize,
}

impl Entry {
    /// Bytes it holds, roughly: its data, its name and its fields.
    fn size(&self) -> usize {
        self.data.len() + self.name.len() + std::mem::size_of::<Entry>()
    }
}

/// The signature cache, bounded in entries and in bytes: a shard past its share of either is
/// emptied.
pub struct SigCache {
    hasher: FastHash,
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
    bytes_per_shard: usize,
}

impl std::fmt::Debug for SigCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigCache({} entries)", self.len())
    }
}

impl SigCache {
    /// A cache of at most about `capacity` entries and `bytes` bytes.
    pub fn new(capacity: usize, bytes: usize) -> Self {
        Self {
            hasher: FastHash::default(),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
            bytes_per_shard: bytes.div_ceil(SHARDS).max(1),
        }
    }

    fn hash(&self, key: &SigKey<'_>) -> u64 {
        self.hasher
            .hash_one((key.name, key.rtype, key.variant, key.subset))
    }

    /// The identity of the records written in `parts` (an answer cut from a set, with its
    /// additional records), never 0: a rotating window of a large set is signed once per
    /// window and node version rather than once per answer.
    pub fn subset(&self, parts: &[&[u8]]) -> u64 {
        self.hasher.hash_one(parts) | 1
    }

    fn shard(&self, hash: u64) -> &Mutex<Shard> {
        &self.shards[(hash >> 40) as usize & (SHARDS - 1)]
    }

    /// Appends to `out` what is stored for `key` at `version`, if it is there and still
    /// current at `now`; true if it was.
    pub fn append(&self, key: &SigKey<'_>, version: &Version, now: u64, out: &mut Vec<u8>) -> bool {
        let hash = self.hash(key);
        let shard = self.shard(hash).lock().unwrap_or_else(|p| p.into_inner());
        let found = shard.table.find(hash, |e| e.is(key));
        match found {
            Some(entry)
                if entry.made <= now && now < entry.until && entry.version.same(version) =>
            {
                out.extend_from_slice(&entry.data);
                true
            }
            _ => false,
        }
    }

    /// Stores `data` for `key` at `version`, made at `made` and to be used until `until`
    /// (Unix seconds).
    pub fn store(&self, key: &SigKey<'_>, version: Version, made: u64, until: u64, data: &[u8]) {
        let hash = self.hash(key);
        let mut shard = self.shard(hash).lock().unwrap_or_else(|p| p.into_inner());
        let entry = Entry {
            hash,
            name: key.name.into(),
            rtype: key.rtype,
            variant: key.variant,
            subset: key.subset,
            version,
            made,
            until,
            data: data.into(),
        };
        let size = entry.size();
        if let Ok(old) = shard.table.find_entry(hash, |e| e.is(key)) {
            let old = old.into_mut();
            let freed = old.size();
            *old = entry;
            shard.bytes = shard.bytes - freed + size;
            return;
        }
        if shard.table.len() >= self.per_shard || shard.bytes + size > self.bytes_per_shard {
            shard.table.clear();
            shard.bytes = 0;
        }
        shard.bytes += size;
        shard.table.insert_unique(hash, entry, |e| e.hash);
    }

    /// Drops the entries no longer current at `now` (and the nodes they keep alive).
    pub fn sweep(&self, now: u64) {
        for shard in self.shards.iter() {
            let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            let Shard { table, bytes } = &mut *shard;
            table.retain(|e| {
                let keep = e.made <= now && now < e.until;
                if !keep {
                    *bytes -= e.size();
                }
                keep
            });
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).table.len())
            .sum()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &[u8]) -> SigKey<'_> {
        SigKey {
            name,
            rtype: 1,
            variant: 0,
            subset: 0,
        }
    }

    #[test]
    fn entries_hold_for_their_version_and_time_only() {
        let cache = SigCache::new(1000, 1 << 20);
        let mut out = Vec::new();
        cache.store(&key(b"a"), Version::Serial(7), 100, 160, b"sig");
        assert!(cache.append(&key(b"a"), &Version::Serial(7), 130, &mut out));
        assert_eq!(out, b"sig");
        assert!(
            !cache.append(&key(b"a"), &Version::Serial(8), 130, &mut out),
            "another version"
        );
        assert!(
            !cache.append(&key(b"b"), &Version::Serial(7), 130, &mut out),
            "another name"
        );
        assert!(
            !cache.append(&key(b"a"), &Version::Serial(7), 160, &mut out),
            "used up"
        );
        assert!(
            !cache.append(&key(b"a"), &Version::Serial(7), 99, &mut out),
            "the clock went back"
        );
        cache.sweep(200);
        assert!(cache.is_empty());
    }

    #[test]
    fn a_full_shard_is_emptied_so_the_cache_stays_bounded() {
        let cache = SigCache::new(64, 1 << 30);
        for i in 0..10_000u32 {
            cache.store(&key(&i.to_be_bytes()), Version::Fixed, 0, 10, b"x");
        }
        assert!(cache.len() <= 64 + SHARDS, "{} entries", cache.len());
        // In bytes too: entries of 10 KB in a cache of 1 MB.
        let cache = SigCache::new(1 << 20, 1 << 20);
        let big = vec![0u8; 10_000];
        for i in 0..1_000u32 {
            cache.store(&key(&i.to_be_bytes()), Version::Fixed, 0, 10, &big);
        }
        let held: usize = cache
            .shards
            .iter()
            .map(|s| s.lock().expect("lock").bytes)
            .sum();
        assert!(held <= (1 << 20) + SHARDS * 10_200, "{held} bytes");
        assert!(cache.len() >= 50, "still caching: {}", cache.len());
    }
}
