//! DNSSEC online signing of the live zones (`--dnssec-key`): each zone's key (BIND's files,
//! algorithm 13), the DNSKEY it publishes, RRSIGs made when a DO query first needs them and
//! kept per RRset version, and compact denial of existence (RFC 9824).
//!
//! - [`key`]: key files read and written, DNSKEY, DS.
//! - [`sign`]: what a signature covers, its validity, NSEC (pure, but for the key).
//! - [`cache`]: signatures per RRset version.
//! - [`answer`]: the signed answer to a query of a signed zone.
//! - [`cli`]: `etcd-dns dnssec keygen | ds`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

pub mod answer;
pub mod cache;
pub mod cli;
pub mod key;
pub mod sign;

use cache::SigCache;
use key::ZoneKey;

use crate::wire::RRset;

/// TTL of the DNSKEY set: it changes only when the server restarts with another key, and
/// validators ask for it once per zone, so an hour (as BIND and Knot default to).
pub const DNSKEY_TTL: u32 = 3600;

/// Most signatures kept: enough for every set of 100,000 instances and the denials of many
/// missing names; a full shard of the cache is emptied.
pub const CACHE_ENTRIES: usize = 1 << 20;

/// Most bytes the kept signatures may hold (an entry of a large SRV set carries the RRSIGs of
/// all its additional records): 256 MiB.
pub const CACHE_BYTES: usize = 256 << 20;

/// One signed zone: the key that signs it, the keys only published (a rollover's next key),
/// and the DNSKEY set at the apex.
#[derive(Debug)]
pub struct ZoneSigner {
    /// The key that signs.
    pub key: ZoneKey,
    /// Keys in the DNSKEY set that sign nothing (pre-published, RFC 6781 §4.1.1.1).
    pub published: Vec<ZoneKey>,
    /// The DNSKEY set, each record owned by a pointer to the question name.
    pub dnskey: RRset,
}

/// Counters of the signer, for `/metrics`.
#[derive(Debug, Default)]
pub struct DnssecStats {
    /// Signatures made.
    pub signed: AtomicU64,
    /// Signed answers served from cached signatures only.
    pub cached: AtomicU64,
}

/// The signed zones, their signatures and counters.
#[derive(Debug)]
pub struct Dnssec {
    zones: Vec<ZoneSigner>,
    /// Signatures per RRset version.
    pub cache: SigCache,
    /// Counters.
    pub stats: DnssecStats,
}

impl Dnssec {
    /// Signing with `keys`: per zone, the first key given signs and any later one is only
    /// published in the DNSKEY set (to roll keys over). `zones` are the live zones (lowercase
    /// wire names): a key for any other zone, or one key given twice, is an error naming it.
    pub fn new(keys: Vec<ZoneKey>, zones: &[&[u8]]) -> Result<Self, String> {
        let mut signers: Vec<ZoneSigner> = Vec::new();
        for key in keys {
            if !zones.contains(&&*key.zone_wire) {
                return Err(format!(
                    "the key (tag {}) is for {}, which is not a live zone (--zone, --registry …@ZONE)",
                    key.tag, key.zone
                ));
            }
            match signers
                .iter_mut()
                .find(|s| s.key.zone_wire == key.zone_wire)
            {
                Some(signer) => {
                    let known = std::iter::once(&signer.key).chain(&signer.published);
                    if known.into_iter().any(|k| k.public == key.public) {
                        return Err(format!(
                            "the key with tag {} for {} is given twice",
                            key.tag, key.zone
                        ));
                    }
                    signer.published.push(key);
                }
                None => signers.push(ZoneSigner {
                    key,
                    published: Vec::new(),
                    dnskey: RRset::from_rdata(sign::types::DNSKEY, DNSKEY_TTL, std::iter::empty()),
                }),
            }
        }
        for signer in &mut signers {
            let rdatas: Vec<Vec<u8>> = std::iter::once(&signer.key)
                .chain(&signer.published)
                .map(|k| k.dnskey_rdata())
                .collect();
            signer.dnskey = RRset::from_rdata(
                sign::types::DNSKEY,
                DNSKEY_TTL,
                rdatas.iter().map(|r| &r[..]),
            );
        }
        Ok(Self {
            zones: signers,
            cache: SigCache::new(CACHE_ENTRIES, CACHE_BYTES),
            stats: DnssecStats::default(),
        })
    }

    /// The signer of the zone named `zone` (lowercase wire name), if it is signed.
    #[inline]
    pub fn signer(&self, zone: &[u8]) -> Option<&ZoneSigner> {
        self.zones.iter().find(|s| &*s.key.zone_wire == zone)
    }

    /// The signed zones.
    pub fn zones(&self) -> impl Iterator<Item = &ZoneSigner> {
        self.zones.iter()
    }

    /// Drops the cached signatures no longer current (and the table nodes they keep).
    pub fn sweep(&self) {
        self.cache.sweep(unix_now());
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl crate::metrics::Report for Dnssec {
    fn report(
        &self,
        encoder: &mut prometheus_client::encoding::DescriptorEncoder,
    ) -> std::fmt::Result {
        use prometheus_client::encoding::EncodeMetric;
        use prometheus_client::metrics::counter::ConstCounter;
        use prometheus_client::metrics::gauge::ConstGauge;
        use prometheus_client::metrics::MetricType;
        let counters = [
            (
                "etcd_dns_dnssec_signatures",
                "RRSIGs made (a set's first signed answer, a changed set, a signature half used up, a denial, an answer cut from a large set)",
                &self.stats.signed,
            ),
            (
                "etcd_dns_dnssec_cached_answers",
                "Signed answers served from cached signatures alone",
                &self.stats.cached,
            ),
        ];
        for (name, help, value) in counters {
            let family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            ConstCounter::new(value.load(Ordering::Relaxed)).encode(family)?;
        }
        let family = encoder.encode_descriptor(
            "etcd_dns_dnssec_cache_entries",
            "Signatures kept for reuse",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(self.cache.len() as i64).encode(family)?;
        Ok(())
    }
}
