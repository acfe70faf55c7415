//! Correctness under churn, for `bench/churn.sh`: loads N instances, then deletes and puts
//! back the churned part of them at RATE changes per second for SECONDS, while two checkers
//! query the server: every stable name (never changed) must answer its address every time, and
//! every deleted name must answer NXDOMAIN one second after etcd acknowledged the delete.
//!
//! ```sh
//! cargo run --release --example churn_check -- --etcd http://127.0.0.1:2379 --dns 127.0.0.1:5300
//! ```
//!
//! Prints a summary and one `RESULT churn_check …` line; exits 1 on any wrong answer.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use etcd_client::{Client, Txn, TxnOp};
use etcd_dns::etcd::EtcdConfig;
use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::net::UdpSocket;
use tokio::sync::Semaphore;

/// Puts per load transaction (etcd's default `--max-txn-ops` is 128).
const LOAD_BATCH: u32 = 128;
/// Changes in flight at once.
const IN_FLIGHT: usize = 64;
/// A deleted name must be gone from DNS this long after etcd acknowledged the delete.
const REMOVAL_BOUND: Duration = Duration::from_secs(1);
/// How long one DNS query may take before it counts as unanswered.
const QUERY_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Parser, Debug)]
struct Args {
    /// etcd endpoint
    #[arg(long)]
    etcd: String,
    /// etcd-dns UDP address
    #[arg(long)]
    dns: SocketAddr,
    /// Instances loaded
    #[arg(long, default_value_t = 10_000)]
    instances: u32,
    /// Of them, never changed
    #[arg(long, default_value_t = 1_000)]
    stable: u32,
    /// Changes per second
    #[arg(long, default_value_t = 1_000)]
    rate: u32,
    /// Seconds of churn
    #[arg(long, default_value_t = 60.0)]
    seconds: f64,
}

fn key(i: u32) -> String {
    format!("services/c{i}")
}

fn address(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x0A40_0000u32 + i)
}

fn value(i: u32) -> String {
    format!(r#"{{"IP":"{}"}}"#, address(i))
}

/// Asks `name` once: the RCODE and the addresses.
async fn ask(dns: SocketAddr, name: &str, id: u16) -> Result<(ResponseCode, Vec<Ipv4Addr>)> {
    let socket = UdpSocket::bind("127.0.0.1:0").await?;
    socket.connect(dns).await?;
    let mut query = Message::query();
    query.metadata.id = id;
    query.add_query(Query::query(Name::from_ascii(name)?, RecordType::A));
    socket.send(&query.to_vec()?).await?;
    let mut buf = vec![0u8; 4096];
    let len = tokio::time::timeout(QUERY_TIMEOUT, socket.recv(&mut buf))
        .await
        .context("no answer")??;
    let reply = Message::from_vec(&buf[..len])?;
    if reply.metadata.id != id {
        bail!("reply for another query");
    }
    let addresses = reply
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect();
    Ok((reply.metadata.response_code, addresses))
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if args.stable >= args.instances || args.rate == 0 || args.seconds <= 0.0 {
        bail!("--stable must be below --instances; --rate and --seconds positive");
    }
    let client: Client = EtcdConfig::from_list(&args.etcd).connect().await?;
    let started = Instant::now();
    for first in (0..args.instances).step_by(LOAD_BATCH as usize) {
        let last = (first + LOAD_BATCH).min(args.instances);
        let puts: Vec<TxnOp> = (first..last)
            .map(|i| TxnOp::put(key(i), value(i), None))
            .collect();
        client.kv_client().txn(Txn::new().and_then(puts)).await?;
    }
    println!(
        "loaded {} instances in {:.2} s",
        args.instances,
        started.elapsed().as_secs_f64()
    );
    let last = args.instances - 1;
    let deadline = Instant::now() + Duration::from_secs(30);
    while ask(args.dns, &format!("c{last}.services.local."), 1)
        .await
        .map(|r| r.0)
        .ok()
        != Some(ResponseCode::NoError)
    {
        if Instant::now() > deadline {
            bail!("the server never answered c{last}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let wrong_stable = Arc::new(AtomicU64::new(0));
    let stable_asked = Arc::new(AtomicU64::new(0));
    let late_removals = Arc::new(AtomicU64::new(0));
    let removals_checked = Arc::new(AtomicU64::new(0));
    let done = Arc::new(tokio::sync::Notify::new());
    let stable_checker = {
        let (wrong, asked, done, dns, stable) = (
            wrong_stable.clone(),
            stable_asked.clone(),
            done.clone(),
            args.dns,
            args.stable,
        );
        tokio::spawn(async move {
            let mut n: u32 = 0;
            loop {
                let i = n % stable;
                n = n.wrapping_add(7919);
                let name = format!("c{i}.services.local.");
                let ask = ask(dns, &name, n as u16);
                tokio::select! {
                    _ = done.notified() => return,
                    result = ask => {
                        asked.fetch_add(1, Ordering::Relaxed);
                        let right = matches!(&result, Ok((ResponseCode::NoError, a)) if *a == vec![address(i)]);
                        if !right {
                            wrong.fetch_add(1, Ordering::Relaxed);
                            eprintln!("stable c{i}: {result:?}");
                        }
                    }
                }
            }
        })
    };

    // Churn: pass k over the churned keys deletes them when k is even, puts them back when odd.
    let churned = args.instances - args.stable;
    let total = (f64::from(args.rate) * args.seconds).round() as u64;
    let in_flight = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut tasks = tokio::task::JoinSet::new();
    let start = tokio::time::Instant::now();
    for n in 0..total {
        tokio::time::sleep_until(start + Duration::from_secs_f64(n as f64 / f64::from(args.rate)))
            .await;
        let permit = in_flight.clone().acquire_owned().await?;
        let i = args.stable + (n % u64::from(churned)) as u32;
        let delete = (n / u64::from(churned)) % 2 == 0;
        let mut client = client.clone();
        let (late, checked, dns) = (late_removals.clone(), removals_checked.clone(), args.dns);
        tasks.spawn(async move {
            let _permit = permit;
            if !delete {
                client.put(key(i), value(i), None).await?;
                return Ok::<_, anyhow::Error>(());
            }
            client.delete(key(i), None).await?;
            drop(_permit);
            tokio::time::sleep(REMOVAL_BOUND).await;
            checked.fetch_add(1, Ordering::Relaxed);
            let result = ask(dns, &format!("c{i}.services.local."), i as u16).await;
            if !matches!(result, Ok((ResponseCode::NXDomain, _))) {
                late.fetch_add(1, Ordering::Relaxed);
                eprintln!("removed c{i} still answers 1 s later: {result:?}");
            }
            Ok(())
        });
        while let Some(joined) = tasks.try_join_next() {
            joined??;
        }
    }
    while let Some(joined) = tasks.join_next().await {
        joined??;
    }
    let secs = start.elapsed().as_secs_f64();
    done.notify_waiters();
    stable_checker.abort();
    let (wrong, asked) = (
        wrong_stable.load(Ordering::Relaxed),
        stable_asked.load(Ordering::Relaxed),
    );
    let (late, checked) = (
        late_removals.load(Ordering::Relaxed),
        removals_checked.load(Ordering::Relaxed),
    );
    println!(
        "churn: {total} changes in {secs:.1} s = {:.0}/s; stable names: {asked} queries, {wrong} wrong; removals: {checked} checked 1 s after the delete, {late} still answering",
        total as f64 / secs
    );
    println!(
        "RESULT churn_check changes={total} seconds={secs:.2} stable_queries={asked} stable_wrong={wrong} removals={checked} removals_late={late}"
    );
    if wrong > 0 || late > 0 {
        bail!("wrong answers under churn");
    }
    Ok(())
}
