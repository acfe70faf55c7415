//! Cost of the plain query path at N instances, without sockets or etcd:
//! `cargo run --release --example query_cost -- 100000 [QUERIES]`.
//!
//! Builds the table as the watcher would (N puts, one snapshot), applies up to 1,000 single
//! updates (put, snapshot, publish: the watcher's work per change), then answers QUERIES packets —
//! 90 % existing names at random, 10 % NXDOMAIN, type A, as `bench/run.sh` sends — through
//! [`Router::answer_now`] with a reused reply buffer, as the UDP loop calls it. Prints the build time and the time per
//! query. Wall-clock numbers move with the machine; under
//! `valgrind --tool=cachegrind --cache-sim=yes` the instruction and cache-miss counts do not,
//! which makes it the tool for comparing two versions of the table on a noisy VM.
//!
//! With `RRL=1` in the environment, response rate limiting is on (its defaults) and the queries
//! come from 65,536 client networks in turn, none of them over the limit: the cost of the check.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use etcd_dns::dns::acl::Acl;
use etcd_dns::dns::router::{Answer, Router};
use etcd_dns::dns::rrl::{RateLimiter, RrlConfig};
use etcd_dns::metrics::Metrics;
use etcd_dns::table::{Registry, Table};
use etcd_dns::zone::ZoneConfig;
use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RecordType};
use hickory_server::net::xfer::Protocol;
use hickory_server::zone_handler::Catalog;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().unwrap_or_else(|| "100000".into()).parse()?;
    let queries: usize = args.next().unwrap_or_else(|| "1000000".into()).parse()?;
    let zone = Name::from_ascii("services.local.")?;
    let config = Arc::new(ZoneConfig {
        zone: zone.clone(),
        ttl: 5,
        negative_ttl: 5,
        statics: None,
    });

    let started = Instant::now();
    let mut registry = Registry::new(config.clone());
    for i in 0..n {
        let ip = std::net::Ipv4Addr::from(0x0a00_0001u32 + i as u32);
        let value = format!(r#"{{"IP":"{ip}"}}"#);
        registry.put(format!("services/n{i}").as_bytes(), value.as_bytes());
    }
    let table = Arc::new(Table::new(&config));
    table.store(registry.snapshot());
    let built = started.elapsed();

    // The same mix as bench/run.sh's query file, from a fixed seed.
    let mut seed = 20240601u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let packets: Vec<Vec<u8>> = (0..4096)
        .map(|i| {
            let label = match i % 10 {
                9 => format!("nx{i}"),
                _ => format!("n{}", next() % n.max(1) as u64),
            };
            let name = Name::from_ascii(format!("{label}.services.local."))?;
            let mut message = Message::query();
            message.metadata.id = i as u16;
            message.add_query(Query::query(name, RecordType::A));
            Ok(message.to_vec()?)
        })
        .collect::<anyhow::Result<_>>()?;

    // Live updates as the watcher applies them one at a time: a put, a snapshot, a publish.
    let updates = (n / 10).clamp(1, 1000);
    let started = Instant::now();
    for i in 0..updates {
        let ip = std::net::Ipv4Addr::from(0x0b00_0001u32 + i as u32);
        let value = format!(r#"{{"IP":"{ip}"}}"#);
        registry.put(format!("services/n{i}").as_bytes(), value.as_bytes());
        table.store(registry.snapshot());
    }
    let per_update = started.elapsed().as_secs_f64() * 1e6 / updates as f64;

    let metrics = Arc::new(Metrics::default());
    let mut router = Router::new(
        table,
        metrics,
        Catalog::new(),
        etcd_dns::dns::statics::StaticZones::default(),
        false,
        Acl::default(),
    );
    let rate_limited = std::env::var_os("RRL").is_some();
    if rate_limited {
        router = router.with_rate_limit(RateLimiter::new(&RrlConfig::default()));
    }
    let stats = router.exclusive_stats();
    let client = |i: usize| -> SocketAddr {
        let network = if rate_limited { (i % 65_536) as u32 } else { 0 };
        SocketAddr::from((Ipv4Addr::from(0x0a00_0001 | network << 8), 5300))
    };
    let (mut answered, mut bytes) = (0usize, 0usize);
    let mut buffer = Vec::with_capacity(512);
    let started = Instant::now();
    for i in 0..queries {
        let packet = &packets[i % packets.len()];
        if let Answer::Reply(reply) =
            router.answer_now(packet, client(i), Protocol::Udp, buffer, &stats)
        {
            answered += 1;
            bytes += reply.len();
            buffer = reply;
        } else {
            buffer = Vec::with_capacity(512);
        }
    }
    let elapsed = started.elapsed();
    println!(
        "N={n}: table built in {:.0} ms; {updates} single updates at {per_update:.1} us each; {queries} queries in {:.0} ms = {:.0} ns/query ({answered} answered, {:.1} B average)",
        built.as_secs_f64() * 1e3,
        elapsed.as_secs_f64() * 1e3,
        elapsed.as_secs_f64() * 1e9 / queries as f64,
        bytes as f64 / answered.max(1) as f64,
    );
    Ok(())
}
