//! What `/metrics` reports. Query counters are kept per answering thread, so that no core waits
//! on another: a UDP thread owns its [`ThreadStats`] and is their only writer (a load and a
//! store, no locked instruction); tasks share one set with atomic adds (`stats.rs`). A scrape
//! sums them all.
//!
//! Reading the clock twice would cost a live answer more than counting it, so answers made on
//! the spot (live names, errors) are timed one in [`TIMING_SAMPLE`]; answers that wait on the
//! catalog or a transfer are all timed. The histogram's quantiles are unaffected; its count is
//! the number of timed answers, `etcd_dns_queries_total` the number of answers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

mod events;
mod stats;

pub use events::{ClientEvent, CLIENT_EVENTS};
use stats::{query_counter, BUCKETS, CUTS, NEARS, QTYPES, QUERY_COUNTERS, RCODES};
pub use stats::{
    Exclusive, Path, QueryStats, Shared, ThreadStats, Writer, LATENCY_BUCKETS, TIMING_SAMPLE,
};

/// The `kind` labels of zone transfers, by slot (see `crate::dns::transfer`).
pub const TRANSFER_KINDS: [&str; 4] = ["axfr", "ixfr", "ixfr_full", "ixfr_current"];

/// Counters a part keeps itself (the answer cache, in its own shards), written into
/// `/metrics` at scrape time.
pub trait Report: std::fmt::Debug + Send + Sync {
    /// Writes its metric families.
    fn report(&self, encoder: &mut DescriptorEncoder) -> std::fmt::Result;
}

/// Everything `/metrics` reports that the table and the watcher do not.
#[derive(Debug)]
pub struct Metrics {
    /// Parts that report their own counters.
    reports: Mutex<Vec<Arc<dyn Report>>>,
    /// Every thread's counters ever handed out, summed on scrape.
    threads: Mutex<Vec<Arc<QueryStats<Exclusive>>>>,
    /// The set tasks share (TCP, the catalog, transfers).
    shared: QueryStats<Shared>,
    /// Watch responses applied (events and progress notifications).
    pub watch_events: AtomicU64,
    /// Full reads of the registry after the first one.
    pub resyncs: AtomicU64,
    /// Zone transfers by kind ([`TRANSFER_KINDS`]).
    pub transfers: [AtomicU64; TRANSFER_KINDS.len()],
    /// TCP connections open now.
    pub tcp_connections: AtomicU64,
    /// `--tcp-max-clients` in effect.
    pub tcp_max_connections: AtomicU64,
    /// Requests answered over each encrypted transport ([`ENCRYPTED_TRANSPORTS`]).
    pub encrypted: [AtomicU64; ENCRYPTED_TRANSPORTS.len()],
}

/// The `transport` label of each of [`Metrics::encrypted`], in order.
pub const ENCRYPTED_TRANSPORTS: [&str; 3] = ["tls", "https", "quic"];

impl Default for Metrics {
    fn default() -> Self {
        Self {
            reports: Mutex::new(Vec::new()),
            threads: Mutex::new(Vec::new()),
            shared: QueryStats::default(),
            watch_events: AtomicU64::new(0),
            resyncs: AtomicU64::new(0),
            transfers: Default::default(),
            tcp_connections: AtomicU64::new(0),
            tcp_max_connections: AtomicU64::new(0),
            encrypted: Default::default(),
        }
    }
}

impl Metrics {
    /// Counters for one thread that alone writes them (a UDP socket's thread).
    pub fn exclusive(&self) -> ThreadStats {
        let stats = Arc::new(QueryStats::default());
        // A poisoned lock only means a scrape panicked; the list itself is intact.
        let mut threads = self.threads.lock().unwrap_or_else(|e| e.into_inner());
        threads.push(stats.clone());
        ThreadStats::new(stats)
    }

    /// Adds a part's own counters to what a scrape writes.
    pub fn add_report(&self, report: Arc<dyn Report>) {
        let mut reports = self.reports.lock().unwrap_or_else(|e| e.into_inner());
        reports.push(report);
    }

    /// The counters tasks share.
    pub fn shared(&self) -> &QueryStats<Shared> {
        &self.shared
    }

    /// The query counters summed over every writer.
    fn sums(&self) -> Sums {
        let threads = self.threads.lock().unwrap_or_else(|e| e.into_inner());
        let mut sums = Sums {
            queries: vec![0; QUERY_COUNTERS],
            latency: vec![0; Path::ALL.len() * BUCKETS],
            ..Sums::default()
        };
        sums.add(&self.shared);
        for stats in threads.iter() {
            sums.add(stats);
        }
        sums
    }
}

/// The label set of exemplars, which these histograms have none of.
type NoLabels = [(&'static str, &'static str); 0];

/// Query counters summed at scrape time.
#[derive(Default)]
struct Sums {
    queries: Vec<u64>,
    latency: Vec<u64>,
    latency_ns: [u64; Path::ALL.len()],
    dropped: u64,
    upstream_failures: u64,
    cuts: [u64; CUTS.len()],
    nears: [u64; NEARS.len()],
    events: [u64; CLIENT_EVENTS.len()],
}

impl Sums {
    /// Adds one writer's counters.
    fn add<W: Writer>(&mut self, stats: &QueryStats<W>) {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        for (sum, counter) in self.queries.iter_mut().zip(stats.queries.iter()) {
            *sum += load(counter);
        }
        for (sum, counter) in self.latency.iter_mut().zip(stats.latency.iter()) {
            *sum += load(counter);
        }
        for (sum, counter) in self.latency_ns.iter_mut().zip(&stats.latency_ns) {
            *sum += load(counter);
        }
        self.dropped += load(&stats.dropped);
        self.upstream_failures += load(&stats.upstream_failures);
        for (sum, counter) in self.cuts.iter_mut().zip(&stats.cuts) {
            *sum += load(counter);
        }
        for (sum, counter) in self.nears.iter_mut().zip(&stats.nears) {
            *sum += load(counter);
        }
        for (sum, counter) in self.events.iter_mut().zip(&stats.events) {
            *sum += load(counter);
        }
    }
}

/// Writes one counter family with a single value.
pub fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> std::fmt::Result {
    let counter = ConstCounter::new(value);
    let metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
    counter.encode(metric)
}

/// Writes one gauge family with a single value.
pub fn gauge<N>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: N,
) -> std::fmt::Result
where
    ConstGauge<N>: EncodeMetric,
{
    let gauge = ConstGauge::new(value);
    let metric = encoder.encode_descriptor(name, help, None, gauge.metric_type())?;
    gauge.encode(metric)
}

impl Collector for Metrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let sums = self.sums();
        let mut family = encoder.encode_descriptor(
            "etcd_dns_queries",
            "DNS requests answered, by path (live, transfer, static, forward, error), query type and response code",
            None,
            MetricType::Counter,
        )?;
        let rcode_names = RCODES.iter().copied().chain(["other"]);
        let qtype_names = QTYPES.iter().map(|(_, n)| *n).chain(["other"]);
        for path in Path::ALL {
            for (q, qtype) in qtype_names.clone().enumerate() {
                for (r, rcode) in rcode_names.clone().enumerate() {
                    let value = sums.queries[query_counter(path as usize, q, r)];
                    if value > 0 {
                        let labels = [("path", path.label()), ("qtype", qtype), ("rcode", rcode)];
                        ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
                    }
                }
            }
        }
        let mut family = encoder.encode_descriptor(
            "etcd_dns_query_duration_seconds",
            "Time from a request's arrival at the router to its reply, by path",
            None,
            MetricType::Histogram,
        )?;
        for path in Path::ALL {
            let p = path as usize;
            let counts = &sums.latency[p * BUCKETS..(p + 1) * BUCKETS];
            let count: u64 = counts.iter().sum();
            if count == 0 {
                continue;
            }
            let buckets: Vec<(f64, u64)> = LATENCY_BUCKETS
                .iter()
                .copied()
                .chain([f64::INFINITY])
                .zip(counts.iter().copied())
                .collect();
            let sum = sums.latency_ns[p] as f64 / 1e9;
            family
                .encode_family(&[("path", path.label())])?
                .encode_histogram::<NoLabels>(sum, count, &buckets, None)?;
        }
        counter(
            &mut encoder,
            "etcd_dns_dropped",
            "Requests that got no reply: responses, and bytes too short for a DNS header",
            sums.dropped,
        )?;
        counter(
            &mut encoder,
            "etcd_dns_upstream_failures",
            "Forwarded queries that no upstream answered (SERVFAIL to the client)",
            sums.upstream_failures,
        )?;
        let mut family = encoder.encode_descriptor(
            "etcd_dns_partial_answers",
            "Answers that carried part of a large set: cut to --max-answers records, or to what fits the transport (UDP: with TC)",
            None,
            MetricType::Counter,
        )?;
        for (reason, value) in CUTS.iter().zip(sums.cuts) {
            ConstCounter::new(value).encode(family.encode_family(&[("reason", *reason)])?)?;
        }
        let mut family = encoder.encode_descriptor(
            "etcd_dns_locality_answers",
            "Answers --locality shaped: from the instances of the client's zone (local), or from every instance because the client's zone is unknown or has fewer than --locality-min (fallback)",
            None,
            MetricType::Counter,
        )?;
        for (answer, value) in NEARS.iter().zip(sums.nears) {
            ConstCounter::new(value).encode(family.encode_family(&[("answer", *answer)])?)?;
        }
        let mut family = encoder.encode_descriptor(
            "etcd_dns_client_events",
            "What clients made happen that is counted instead of logged: malformed requests, oversized datagrams, refused transfers, replies rate-limited or slipped, TCP connections evicted, refused, timed out or closed for garbage",
            None,
            MetricType::Counter,
        )?;
        for (event, value) in CLIENT_EVENTS.iter().zip(sums.events) {
            ConstCounter::new(value).encode(family.encode_family(&[("event", *event)])?)?;
        }
        gauge(
            &mut encoder,
            "etcd_dns_tcp_connections",
            "TCP connections open now",
            self.tcp_connections.load(Ordering::Relaxed) as i64,
        )?;
        gauge(
            &mut encoder,
            "etcd_dns_tcp_max_connections",
            "Most TCP connections kept open at once (--tcp-max-clients); the idlest is closed for a new one",
            self.tcp_max_connections.load(Ordering::Relaxed) as i64,
        )?;
        let mut family = encoder.encode_descriptor(
            "etcd_dns_encrypted_queries",
            "Requests answered over an encrypted transport, by transport: tls (DNS over TLS), https (DNS over HTTPS), quic (DNS over QUIC); also counted in etcd_dns_queries_total",
            None,
            MetricType::Counter,
        )?;
        for (transport, value) in ENCRYPTED_TRANSPORTS.iter().zip(&self.encrypted) {
            ConstCounter::new(value.load(Ordering::Relaxed))
                .encode(family.encode_family(&[("transport", *transport)])?)?;
        }
        counter(
            &mut encoder,
            "etcd_dns_watch_events",
            "etcd watch responses applied to the table (events and progress notifications)",
            self.watch_events.load(Ordering::Relaxed),
        )?;
        counter(
            &mut encoder,
            "etcd_dns_resyncs",
            "Full re-reads of the registry after the first (reconnects, compactions)",
            self.resyncs.load(Ordering::Relaxed),
        )?;
        let mut family = encoder.encode_descriptor(
            "etcd_dns_transfers",
            "Zone transfers sent, by kind: axfr, and IXFR answered incrementally, with the whole zone (the history did not reach back), or with the SOA alone (current, or over UDP)",
            None,
            MetricType::Counter,
        )?;
        for (kind, value) in TRANSFER_KINDS.iter().zip(&self.transfers) {
            ConstCounter::new(value.load(Ordering::Relaxed))
                .encode(family.encode_family(&[("kind", *kind)])?)?;
        }
        let reports = self.reports.lock().unwrap_or_else(|e| e.into_inner());
        for report in reports.iter() {
            report.report(&mut encoder)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
