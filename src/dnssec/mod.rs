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

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use cache::SigCache;
use hickory_proto::rr::RecordType;
use key::ZoneKey;

use crate::sources::Live;
use crate::wire::{wire_name, RRset, WireName};

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

    /// Signing with the keys of `paths` (`--dnssec-key`) the zones of `live`; `None` without
    /// any. Refused, saying why: a key that does not read, one for no live zone or given twice,
    /// and a zone file of a signed zone that delegates (its NS would be signed as the zone's own
    /// data, RFC 4035 §2.2, and names below it denied instead of referred).
    pub fn load(paths: &[PathBuf], live: &Live) -> Result<Option<Self>, LoadError> {
        if paths.is_empty() {
            return Ok(None);
        }
        let keys = paths
            .iter()
            .map(|p| ZoneKey::read(p))
            .collect::<Result<Vec<_>, _>>()?;
        let zones: Vec<WireName> = live.zones.iter().map(|z| wire_name(&z.zone)).collect();
        for (zone, wire) in live.zones.iter().zip(&zones) {
            let Some(statics) = zone
                .statics
                .as_ref()
                .filter(|_| keys.iter().any(|k| k.zone_wire == *wire))
            else {
                continue;
            };
            let delegation = statics
                .names
                .iter()
                .find(|(_, records)| records.iter().any(|r| r.record_type() == RecordType::NS));
            if let Some((name, _)) = delegation {
                return Err(LoadError::Delegation(
                    zone.zone.to_string(),
                    name.to_string(),
                ));
            }
        }
        let zones: Vec<&[u8]> = zones.iter().map(|z| &z[..]).collect();
        Ok(Some(Self::new(keys, &zones).map_err(LoadError::Keys)?))
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

    /// Sweeps the cache every [`SWEEP_EVERY`] until `shutdown`.
    pub async fn keep_swept<E>(self: Arc<Self>, shutdown: CancellationToken) -> Result<(), E> {
        let mut every = tokio::time::interval(SWEEP_EVERY);
        loop {
            tokio::select! {
                _ = every.tick() => self.sweep(),
                () = shutdown.cancelled() => return Ok(()),
            }
        }
    }

    /// Logs the signed zones and their keys; with `transfers`, a warning that secondaries get
    /// the zones unsigned.
    pub fn announce(&self, transfers: bool) {
        for signer in &self.zones {
            let key = &signer.key;
            info!(zone = %key.zone, tag = key.tag, flags = key.flags, ds = %key.ds_text(), "signing the live zone online (DNSSEC)");
            for key in &signer.published {
                info!(zone = %key.zone, tag = key.tag, ds = %key.ds_text(), "publishing a key that signs nothing (the next key of a rollover)");
            }
        }
        if transfers && !self.zones.is_empty() {
            warn!("zone transfers carry the live zone unsigned: secondaries serve it without DNSSEC, and validators that expect it signed (a DS at the parent) reject their answers");
        }
    }
}

/// How often signatures no longer current are dropped from the cache.
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Why `--dnssec-key` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A key file.
    #[error(transparent)]
    Key(#[from] key::KeyError),
    /// The keys do not fit the zones.
    #[error("{0}")]
    Keys(String),
    /// A signed zone's file delegates a name.
    #[error("the zone file of {0} delegates {1} (NS records below the apex), which a zone signed online cannot do: remove the delegation or leave the zone unsigned")]
    Delegation(String, String),
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
