//! The cache's counters and sizes on `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::DescriptorEncoder;

use super::AnswerCache;
use crate::metrics::{counter, gauge, Report};

impl Report for AnswerCache {
    fn report(&self, encoder: &mut DescriptorEncoder) -> std::fmt::Result {
        let (mut hits, mut stale, mut evictions, mut entries, mut bytes) = (0, 0, 0, 0, 0);
        let mut prefetches = 0;
        self.store.each(|shard| {
            hits += shard.hits;
            stale += shard.stale;
            prefetches += shard.prefetches;
            evictions += shard.evictions;
            let (n, b) = shard.size();
            entries += n;
            bytes += b;
        });
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        counter(
            encoder,
            "etcd_dns_cache_hits",
            "Forwarded queries answered from the answer cache",
            hits,
        )?;
        counter(
            encoder,
            "etcd_dns_cache_misses",
            "Forwarded questions not in the answer cache that were asked upstream",
            load(&self.misses),
        )?;
        counter(encoder, "etcd_dns_cache_coalesced", "Forwarded queries that waited for the same question already asked upstream instead of asking again", load(&self.coalesced))?;
        counter(
            encoder,
            "etcd_dns_cache_stale",
            "Expired answers served with TTL 30 because the upstreams failed (RFC 8767)",
            stale,
        )?;
        counter(
            encoder,
            "etcd_dns_cache_prefetches",
            "Cached answers asked upstream again in the last tenth of their lifetime, while still served",
            prefetches,
        )?;
        counter(
            encoder,
            "etcd_dns_cache_evictions",
            "Cached answers evicted to stay within --cache-size",
            evictions,
        )?;
        gauge(
            encoder,
            "etcd_dns_cache_entries",
            "Answers in the answer cache",
            entries as i64,
        )?;
        gauge(
            encoder,
            "etcd_dns_cache_bytes",
            "Bytes the answer cache holds (counted against --cache-size)",
            bytes as i64,
        )
    }
}
