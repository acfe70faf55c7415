//! How long reading a big prefix takes, without building anything:
//! `cargo run --release --example read_cost -- http://127.0.0.1:2379 services/ [STRATEGY]`.
//!
//! STRATEGY is `paged` (the watcher's read, `read_prefix`, with a no-op consumer), `build` (the
//! same read into a table, as the watcher builds it: zone `services.local.`, registry prefix
//! `services/`, so a PREFIX such as `services/n1` reads part of it), `one` (one
//! request for the whole prefix with no limit) or `split:K` (K ranges by the byte after the
//! prefix's first key byte, read at once). Prints keys, bytes and milliseconds.

use std::time::{Duration, Instant};

use etcd_client::GetOptions;
use std::sync::Arc;

use etcd_dns::etcd::{read_prefix, read_prefix_at, EtcdConfig};
use etcd_dns::table::Registry;
use etcd_dns::zone::ZoneConfig;
use hickory_proto::rr::Name;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let endpoint = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:2379".into());
    let prefix = args.next().unwrap_or_else(|| "services/".into());
    let strategy = args.next().unwrap_or_else(|| "paged".into());
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let etcd = EtcdConfig::from_list(&endpoint);
        let client = etcd.connect().await?;
        let started = Instant::now();
        let (mut keys, mut bytes) = (0usize, 0usize);
        match strategy.as_str() {
            "paged" => {
                read_prefix(&client, &etcd, prefix.as_bytes(), |kvs| {
                    keys += kvs.len();
                    bytes += kvs
                        .iter()
                        .map(|kv| kv.key().len() + kv.value().len())
                        .sum::<usize>();
                })
                .await?;
            }
            "build" => {
                let config = Arc::new(ZoneConfig {
                    zone: Name::from_ascii("services.local.")?,
                    ttl: 5,
                    negative_ttl: 5,
                    statics: None,
                });
                let mut registry = Registry::new(config);
                let (mut put, mut flush) = (Duration::ZERO, Duration::ZERO);
                read_prefix_at(&client, &etcd, prefix.as_bytes(), 0, |kvs, left| {
                    let at = Instant::now();
                    if std::env::var_os("PAGES").is_some() {
                        let ms = started.elapsed().as_millis();
                        println!("  page of {} keys at {ms} ms", kvs.len());
                    }
                    registry.reserve(left);
                    keys += kvs.len();
                    for kv in kvs {
                        bytes += kv.key().len() + kv.value().len();
                        registry.put(kv.key(), kv.value());
                    }
                    let put_done = Instant::now();
                    registry.flush();
                    put += put_done - at;
                    flush += put_done.elapsed();
                })
                .await?;
                let at = Instant::now();
                let snapshot = registry.snapshot();
                println!(
                    "{} names; puts {} ms, flushes {} ms, snapshot {} ms",
                    snapshot.names.len(),
                    put.as_millis(),
                    flush.as_millis(),
                    at.elapsed().as_millis()
                );
            }
            "one" => {
                let mut kv = client.kv_client().max_decoding_message_size(1 << 30);
                let response = kv
                    .get(prefix.as_bytes(), Some(GetOptions::new().with_prefix()))
                    .await?;
                keys = response.kvs().len();
                bytes = response
                    .kvs()
                    .iter()
                    .map(|kv| kv.key().len() + kv.value().len())
                    .sum();
            }
            split => {
                let k: u8 = split.trim_start_matches("split:").parse()?;
                // Ranges of the second byte after the prefix ("n0", "n1", …), for the bench keys.
                let mut bounds: Vec<Vec<u8>> = (0..k)
                    .map(|i| {
                        let mut b = format!("{prefix}n").into_bytes();
                        b.push(b'0' + i * 10 / k);
                        b
                    })
                    .collect();
                bounds[0] = prefix.as_bytes().to_vec();
                bounds.push(etcd_dns::etcd::prefix_end(prefix.as_bytes()));
                let mut tasks = tokio::task::JoinSet::new();
                for pair in bounds.windows(2) {
                    let (from, to) = (pair[0].clone(), pair[1].clone());
                    let mut kv = client.kv_client().max_decoding_message_size(1 << 30);
                    tasks.spawn(async move {
                        let response = kv.get(from, Some(GetOptions::new().with_range(to))).await?;
                        let bytes: usize = response
                            .kvs()
                            .iter()
                            .map(|kv| kv.key().len() + kv.value().len())
                            .sum();
                        println!(
                            "  range done at {} ms: {} keys",
                            started.elapsed().as_millis(),
                            response.kvs().len()
                        );
                        anyhow::Ok((response.kvs().len(), bytes))
                    });
                }
                while let Some(done) = tasks.join_next().await {
                    let (k, b) = done??;
                    keys += k;
                    bytes += b;
                }
            }
        }
        println!(
            "{strategy}: {keys} keys, {:.1} MB, {} ms",
            bytes as f64 / 1e6,
            started.elapsed().as_millis()
        );
        anyhow::Ok(())
    })
}
