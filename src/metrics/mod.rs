//! What `/metrics` reports. Query counters are kept per answering thread, so that no core waits
//! on another: a UDP thread owns its [`QueryStats`] and is its only writer (a load and a store,
//! no locked instruction); tasks share one set with atomic adds. A scrape sums them all.
//!
//! Reading the clock twice would cost a live answer more than counting it, so answers made on
//! the spot (live names, errors) are timed one in [`TIMING_SAMPLE`]; answers that wait on the
//! catalog or a transfer are all timed. The histogram's quantiles are unaffected; its count is
//! the number of timed answers, `etcd_dns_queries_total` the number of answers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

mod events;

pub use events::{ClientEvent, CLIENT_EVENTS};

/// How a request was answered, as the `path` label says it.
pub const PATHS: [&str; 5] = ["live", "transfer", "static", "forward", "error"];
/// Query types with a label of their own; every other type counts as "other".
const QTYPES: [(u16, &str); 11] = [
    (1, "A"),
    (2, "NS"),
    (5, "CNAME"),
    (6, "SOA"),
    (12, "PTR"),
    (16, "TXT"),
    (28, "AAAA"),
    (33, "SRV"),
    (251, "IXFR"),
    (252, "AXFR"),
    (255, "ANY"),
];
/// RCODE names by value (the low four bits of the header); every other one is "other".
const RCODES: [&str; 6] = [
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
];
/// Upper bounds of the latency histogram's buckets, in seconds: from a live answer (a few µs)
/// to a forwarded one that waited on every upstream (seconds).
pub const LATENCY_BUCKETS: [f64; 14] = [
    5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 0.25, 1.0, 5.0,
];
/// One in this many answers made on the spot is timed.
pub const TIMING_SAMPLE: u64 = 16;
/// Counters per (path, qtype, rcode).
const QUERY_COUNTERS: usize = PATHS.len() * (QTYPES.len() + 1) * (RCODES.len() + 1);
/// Buckets per path, the last one above every bound.
const BUCKETS: usize = LATENCY_BUCKETS.len() + 1;

/// One writer's query counters.
#[derive(Debug)]
pub struct QueryStats {
    /// True when one thread alone writes these: plain loads and stores are then enough.
    exclusive: bool,
    queries: Box<[AtomicU64]>,
    latency: Box<[AtomicU64]>,
    latency_ns: [AtomicU64; PATHS.len()],
    dropped: AtomicU64,
    upstream_failures: AtomicU64,
    /// Per [`ClientEvent`].
    events: [AtomicU64; CLIENT_EVENTS.len()],
    /// Answers seen, for choosing which to time.
    ticks: AtomicU64,
}

/// The counter index of a QTYPE: its place in [`QTYPES`], or the "other" slot.
fn qtype_slot(qtype: u16) -> usize {
    match qtype {
        1 => 0,
        2 => 1,
        5 => 2,
        6 => 3,
        12 => 4,
        16 => 5,
        28 => 6,
        33 => 7,
        251 => 8,
        252 => 9,
        255 => 10,
        _ => QTYPES.len(),
    }
}

impl QueryStats {
    fn new(exclusive: bool) -> Self {
        let zeros = |n| (0..n).map(|_| AtomicU64::new(0)).collect();
        Self {
            exclusive,
            queries: zeros(QUERY_COUNTERS),
            latency: zeros(PATHS.len() * BUCKETS),
            latency_ns: Default::default(),
            dropped: AtomicU64::new(0),
            upstream_failures: AtomicU64::new(0),
            events: Default::default(),
            ticks: AtomicU64::new(0),
        }
    }

    /// True for one call in [`TIMING_SAMPLE`]: time this answer.
    pub fn time_this_one(&self) -> bool {
        let tick = self.ticks.load(Ordering::Relaxed);
        self.bump(&self.ticks, 1);
        tick.is_multiple_of(TIMING_SAMPLE)
    }

    fn bump(&self, counter: &AtomicU64, n: u64) {
        if self.exclusive {
            counter.store(
                counter.load(Ordering::Relaxed).wrapping_add(n),
                Ordering::Relaxed,
            );
        } else {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Counts one answered request: its `path` (an index into [`PATHS`]), QTYPE, the RCODE of
    /// `reply` and, when it was timed, how long it took.
    pub fn answered(&self, path: usize, qtype: u16, reply: &[u8], elapsed: Option<Duration>) {
        let path = path.min(PATHS.len() - 1);
        let rcode = reply.get(3).map_or(RCODES.len(), |b| (b & 0x0f) as usize);
        let rcode = rcode.min(RCODES.len());
        let at = (path * (QTYPES.len() + 1) + qtype_slot(qtype)) * (RCODES.len() + 1) + rcode;
        if let Some(counter) = self.queries.get(at) {
            self.bump(counter, 1);
        }
        if let Some(elapsed) = elapsed {
            self.timed(path, elapsed);
        }
    }

    fn timed(&self, path: usize, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let bucket = LATENCY_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(LATENCY_BUCKETS.len());
        if let Some(counter) = self.latency.get(path * BUCKETS + bucket) {
            self.bump(counter, 1);
        }
        self.bump(&self.latency_ns[path], elapsed.as_nanos() as u64);
    }

    /// Counts a request that got no reply (a response, or bytes too short to answer).
    pub fn dropped(&self) {
        self.bump(&self.dropped, 1);
    }

    /// Counts a forwarded query that no upstream answered (SERVFAIL to the client).
    pub fn upstream_failed(&self) {
        self.bump(&self.upstream_failures, 1);
    }

    /// Counts one thing a client made happen.
    pub fn event(&self, event: ClientEvent) {
        if let Some(counter) = self.events.get(event as usize) {
            self.bump(counter, 1);
        }
    }
}

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
    /// Every [`QueryStats`] ever handed out, summed on scrape.
    writers: Mutex<Vec<Arc<QueryStats>>>,
    /// The set tasks share (TCP, the catalog, transfers).
    shared: Arc<QueryStats>,
    /// Watch responses applied (events and progress notifications).
    pub watch_events: AtomicU64,
    /// Full reads of the registry after the first one.
    pub resyncs: AtomicU64,
    /// TCP connections open now.
    pub tcp_connections: AtomicU64,
    /// `--tcp-max-clients` in effect.
    pub tcp_max_connections: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        let shared = Arc::new(QueryStats::new(false));
        Self {
            reports: Mutex::new(Vec::new()),
            writers: Mutex::new(vec![shared.clone()]),
            shared,
            watch_events: AtomicU64::new(0),
            resyncs: AtomicU64::new(0),
            tcp_connections: AtomicU64::new(0),
            tcp_max_connections: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// Counters for one thread that alone writes them (a UDP socket's thread).
    pub fn exclusive(&self) -> Arc<QueryStats> {
        let stats = Arc::new(QueryStats::new(true));
        // A poisoned lock only means a scrape panicked; the list itself is intact.
        let mut writers = self.writers.lock().unwrap_or_else(|e| e.into_inner());
        writers.push(stats.clone());
        stats
    }

    /// Adds a part's own counters to what a scrape writes.
    pub fn add_report(&self, report: Arc<dyn Report>) {
        let mut reports = self.reports.lock().unwrap_or_else(|e| e.into_inner());
        reports.push(report);
    }

    /// The counters tasks share.
    pub fn shared(&self) -> &QueryStats {
        &self.shared
    }

    /// The query counters summed over every writer.
    fn sums(&self) -> Sums {
        let writers = self.writers.lock().unwrap_or_else(|e| e.into_inner());
        let mut sums = Sums {
            queries: vec![0; QUERY_COUNTERS],
            latency: vec![0; PATHS.len() * BUCKETS],
            ..Sums::default()
        };
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        for stats in writers.iter() {
            for (sum, counter) in sums.queries.iter_mut().zip(stats.queries.iter()) {
                *sum += load(counter);
            }
            for (sum, counter) in sums.latency.iter_mut().zip(stats.latency.iter()) {
                *sum += load(counter);
            }
            for (sum, counter) in sums.latency_ns.iter_mut().zip(&stats.latency_ns) {
                *sum += load(counter);
            }
            sums.dropped += load(&stats.dropped);
            sums.upstream_failures += load(&stats.upstream_failures);
            for (sum, counter) in sums.events.iter_mut().zip(&stats.events) {
                *sum += load(counter);
            }
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
    latency_ns: [u64; PATHS.len()],
    dropped: u64,
    upstream_failures: u64,
    events: [u64; CLIENT_EVENTS.len()],
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
        for (p, path) in PATHS.iter().enumerate() {
            for (q, qtype) in qtype_names.clone().enumerate() {
                for (r, rcode) in rcode_names.clone().enumerate() {
                    let at = (p * (QTYPES.len() + 1) + q) * (RCODES.len() + 1) + r;
                    let value = sums.queries[at];
                    if value > 0 {
                        let labels = [("path", *path), ("qtype", qtype), ("rcode", rcode)];
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
        for (p, path) in PATHS.iter().enumerate() {
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
                .encode_family(&[("path", *path)])?
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
        let reports = self.reports.lock().unwrap_or_else(|e| e.into_inner());
        for report in reports.iter() {
            report.report(&mut encoder)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
