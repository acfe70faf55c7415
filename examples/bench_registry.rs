//! Drives etcd and an etcd-dns server for `bench/run.sh`, talking to etcd in-process (one client,
//! no `etcdctl` per key) and to DNS over one UDP socket.
//!
//! ```sh
//! cargo run --release --example bench_registry -- load  --etcd http://127.0.0.1:2379 --count 100000
//! cargo run --release --example bench_registry -- fresh --etcd http://127.0.0.1:2379 --dns 127.0.0.1:5353
//! cargo run --release --example bench_registry -- churn --etcd http://127.0.0.1:2379 --rate 1000 --seconds 10 --keys 100000
//! cargo run --release --example bench_registry -- wait  --dns 127.0.0.1:5353 --name n0.services.local.
//! ```
//!
//! Every subcommand prints a readable summary and then one `RESULT <subcommand> key=value …` line
//! that scripts can parse. Instance `i` of `load` is key `<prefix>n<i>` with address
//! [`instance_addr`]`(i)`, which `bench/run.sh` repeats in the zone files it gives NSD and Knot.

use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use etcd_client::{Client, PutOptions, Txn, TxnOp};
use etcd_dns::etcd::EtcdConfig;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Puts per transaction in `load` (etcd's default `--max-txn-ops` is 128).
const LOAD_BATCH: usize = 128;
/// Transactions in flight at once in `load`.
const LOAD_IN_FLIGHT: usize = 16;
/// Puts in flight at once in `churn`; when all are busy the pacing falls behind and the achieved
/// rate shows it.
const CHURN_IN_FLIGHT: usize = 64;
/// How long one poll waits for its reply before sending the next query.
const REPLY_WAIT: Duration = Duration::from_millis(20);
/// TTL of the leases `fresh` grants; they are revoked long before it runs out.
const FRESH_LEASE_TTL: i64 = 60;

/// Benchmark driver for etcd-dns: fills etcd, measures propagation, keeps etcd busy.
#[derive(Parser, Debug)]
#[command(about)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Put COUNT keys `<prefix>n<i>` = `{"IP":"10.x.y.z"}` in transactions of 128 puts, 16 in flight, and print the time taken.
    Load {
        /// etcd endpoints, comma separated
        #[arg(long)]
        etcd: String,
        /// Number of instances to put
        #[arg(long)]
        count: u32,
        /// Key prefix of the registry
        #[arg(long, default_value = "services/")]
        prefix: String,
    },
    /// Put fresh keys under a lease and revoke them, CHANGES times, and print p50/p99/max of put→answer and revoke→NXDOMAIN.
    Fresh {
        /// etcd endpoints, comma separated
        #[arg(long)]
        etcd: String,
        /// The DNS server under test (UDP)
        #[arg(long)]
        dns: SocketAddr,
        /// Number of put + revoke cycles
        #[arg(long, default_value_t = 1000)]
        changes: u32,
        /// Key prefix of the registry
        #[arg(long, default_value = "services/")]
        prefix: String,
        /// Zone the registry is served as
        #[arg(long, default_value = "services.local.")]
        zone: String,
        /// Pause between two polls of the DNS server, in microseconds
        #[arg(long, default_value_t = 100)]
        interval_us: u64,
        /// Give up on one change after this many milliseconds
        #[arg(long, default_value_t = 2000)]
        timeout_ms: u64,
    },
    /// Rewrite KEYS existing keys `<prefix>n<i>` with new addresses at RATE puts/s, paced, for SECONDS, and print the achieved rate.
    Churn {
        /// etcd endpoints, comma separated
        #[arg(long)]
        etcd: String,
        /// Updates per second
        #[arg(long, default_value_t = 1000)]
        rate: u32,
        /// How long to keep updating
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Number of existing keys to rewrite in turn (`n0` … `n<KEYS-1>`)
        #[arg(long)]
        keys: u32,
        /// Key prefix of the registry
        #[arg(long, default_value = "services/")]
        prefix: String,
    },
    /// Poll the DNS server for NAME until it answers (NOERROR with records) or is gone (NXDOMAIN), and print the time since SINCE.
    Wait {
        /// The DNS server (UDP)
        #[arg(long)]
        dns: SocketAddr,
        /// Name to ask for (type A)
        #[arg(long)]
        name: String,
        /// What to wait for
        #[arg(long, value_enum, default_value_t = Until::Answer)]
        until: Until,
        /// Start of the measurement, nanoseconds since the Unix epoch (`date +%s%N`); default: now
        #[arg(long)]
        since_unix_ns: Option<u128>,
        /// Pause between two polls, in microseconds
        #[arg(long, default_value_t = 1000)]
        interval_us: u64,
        /// Give up (exit 1) after this many seconds
        #[arg(long, default_value_t = 60.0)]
        timeout: f64,
    },
}

/// The outcome `wait` polls for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Until {
    /// NOERROR with at least one answer record.
    Answer,
    /// NXDOMAIN.
    Nxdomain,
}

/// What a poll accepts as the awaited reply.
#[derive(Clone, Copy, Debug)]
enum Want {
    /// NOERROR with at least one record in the answer section.
    AnyAnswer,
    /// NOERROR with this address among the A records.
    Addr(Ipv4Addr),
    /// NXDOMAIN.
    NxDomain,
}

impl Want {
    fn accepts(self, reply: &Message) -> bool {
        let code = reply.metadata.response_code;
        match self {
            Want::AnyAnswer => code == ResponseCode::NoError && !reply.answers.is_empty(),
            Want::Addr(ip) => {
                code == ResponseCode::NoError
                    && reply
                        .answers
                        .iter()
                        .any(|r| matches!(&r.data, RData::A(a) if a.0 == ip))
            }
            Want::NxDomain => code == ResponseCode::NXDomain,
        }
    }
}

/// The address of instance `i` in `load` (and in the zone files of `bench/run.sh`):
/// 10.0.0.1 + i, so `n0` is 10.0.0.1 and `n99999` is 10.1.134.160.
fn instance_addr(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x0A00_0001u32.wrapping_add(i))
}

/// The JSON value etcd-dns reads for an address.
fn value(ip: Ipv4Addr) -> String {
    format!(r#"{{"IP":"{ip}"}}"#)
}

/// A blocking UDP client that asks one name again and again until the reply is the awaited one.
/// Blocking (on its own thread) because tokio's timers cannot sleep for 100 µs.
struct Poller {
    socket: UdpSocket,
    server: SocketAddr,
    next_id: AtomicU16,
}

impl Poller {
    fn new(server: SocketAddr) -> Result<Self> {
        let socket = UdpSocket::bind("127.0.0.1:0").context("cannot bind a UDP socket")?;
        socket
            .connect(server)
            .with_context(|| format!("cannot connect the UDP socket to {server}"))?;
        socket
            .set_read_timeout(Some(REPLY_WAIT))
            .context("cannot set the UDP read timeout")?;
        Ok(Self {
            socket,
            server,
            next_id: AtomicU16::new(rand::random()),
        })
    }

    /// Asks `name` (type A) every `interval` until the reply is `want`; returns when the
    /// awaited reply arrived, or `None` if it did not by `deadline`. A refused port (server not
    /// listening yet) counts as "not yet".
    fn poll(
        &self,
        name: &Name,
        want: Want,
        interval: Duration,
        deadline: Instant,
    ) -> Result<Option<Instant>> {
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let mut query = Message::new(id, MessageType::Query, OpCode::Query);
            query.add_query(Query::query(name.clone(), RecordType::A));
            let bytes = query.to_vec().context("cannot encode the DNS query")?;
            match self.socket.send(&bytes) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                    std::thread::sleep(interval);
                    continue;
                }
                Err(e) => return Err(e).with_context(|| format!("cannot send to {}", self.server)),
            }
            // Read until the reply to this query, a timeout, or a refusal; older replies that
            // arrive late are skipped by their ID.
            loop {
                let len = match self.socket.recv(&mut buf) {
                    Ok(len) => len,
                    Err(e)
                        if matches!(
                            e.kind(),
                            ErrorKind::WouldBlock
                                | ErrorKind::TimedOut
                                | ErrorKind::ConnectionRefused
                        ) =>
                    {
                        break
                    }
                    Err(e) => {
                        return Err(e)
                            .with_context(|| format!("cannot receive from {}", self.server))
                    }
                };
                let now = Instant::now();
                let Ok(reply) = Message::from_vec(&buf[..len]) else {
                    continue;
                };
                if reply.metadata.id != id {
                    continue;
                }
                if want.accepts(&reply) {
                    return Ok(Some(now));
                }
                break;
            }
            std::thread::sleep(interval);
        }
        Ok(None)
    }
}

/// Nearest-rank percentile of sorted samples, in milliseconds.
fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1e3
}

/// p50, p99 and max of the samples, in milliseconds.
fn summary(samples: &mut [Duration]) -> (f64, f64, f64) {
    samples.sort_unstable();
    (
        percentile_ms(samples, 50.0),
        percentile_ms(samples, 99.0),
        percentile_ms(samples, 100.0),
    )
}

async fn connect(etcd: &str) -> Result<Client> {
    EtcdConfig::from_list(etcd)
        .connect()
        .await
        .with_context(|| format!("cannot connect to etcd at {etcd}"))
}

async fn load(etcd: &str, count: u32, prefix: &str) -> Result<()> {
    let client = connect(etcd).await?;
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    let mut next = 0u32;
    let mut done = 0u64;
    while next < count || !tasks.is_empty() {
        while next < count && tasks.len() < LOAD_IN_FLIGHT {
            let end = next.saturating_add(LOAD_BATCH as u32).min(count);
            let ops: Vec<TxnOp> = (next..end)
                .map(|i| TxnOp::put(format!("{prefix}n{i}"), value(instance_addr(i)), None))
                .collect();
            let mut client = client.clone();
            let first = next;
            tasks.spawn(async move {
                client
                    .txn(Txn::new().and_then(ops))
                    .await
                    .with_context(|| format!("txn putting keys n{first}..n{end} failed"))?;
                Ok::<u64, anyhow::Error>(u64::from(end - first))
            });
            next = end;
        }
        if let Some(joined) = tasks.join_next().await {
            done += joined.context("a load task panicked")??;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "load: {done} keys under {prefix} in {secs:.3} s ({:.0} keys/s)",
        done as f64 / secs
    );
    println!("RESULT load keys={done} seconds={secs:.3}");
    Ok(())
}

/// Runs `poller.poll` on a blocking thread, starting now.
fn spawn_poll(
    poller: &Arc<Poller>,
    name: &Name,
    want: Want,
    interval: Duration,
    deadline: Instant,
) -> tokio::task::JoinHandle<Result<Option<Instant>>> {
    let poller = Arc::clone(poller);
    let name = name.clone();
    tokio::task::spawn_blocking(move || poller.poll(&name, want, interval, deadline))
}

#[allow(clippy::too_many_arguments)]
async fn fresh(
    etcd: &str,
    dns: SocketAddr,
    changes: u32,
    prefix: &str,
    zone: &str,
    interval: Duration,
    timeout: Duration,
) -> Result<()> {
    let mut client = connect(etcd).await?;
    let poller = Arc::new(Poller::new(dns)?);
    let run: u32 = rand::random::<u32>() % 1_000_000;
    let zone = zone.trim_end_matches('.');
    let (mut put_ack, mut put_answer, mut revoke_ack, mut revoke_gone) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut put_timeouts, mut revoke_timeouts) = (0u32, 0u32);
    for i in 0..changes {
        let label = format!("fresh{run}-{i}");
        let key = format!("{prefix}{label}");
        let name = Name::from_ascii(format!("{label}.{zone}."))
            .with_context(|| format!("bad DNS name for {label} in zone {zone}"))?;
        let ip = Ipv4Addr::from(0x0AC8_0000u32.wrapping_add(i));
        let lease = client
            .lease_grant(FRESH_LEASE_TTL, None)
            .await
            .context("lease grant failed")?
            .id();

        let t0 = Instant::now();
        let poll = spawn_poll(&poller, &name, Want::Addr(ip), interval, t0 + timeout);
        client
            .put(
                key.as_bytes(),
                value(ip),
                Some(PutOptions::new().with_lease(lease)),
            )
            .await
            .with_context(|| format!("put {key} failed"))?;
        put_ack.push(t0.elapsed());
        match poll.await.context("the DNS poller panicked")?? {
            Some(at) => put_answer.push(at - t0),
            None => put_timeouts += 1,
        }

        let t0 = Instant::now();
        let poll = spawn_poll(&poller, &name, Want::NxDomain, interval, t0 + timeout);
        client
            .lease_revoke(lease)
            .await
            .with_context(|| format!("revoking the lease of {key} failed"))?;
        revoke_ack.push(t0.elapsed());
        match poll.await.context("the DNS poller panicked")?? {
            Some(at) => revoke_gone.push(at - t0),
            None => revoke_timeouts += 1,
        }
    }

    let rows = [
        ("put acknowledged by etcd", summary(&mut put_ack)),
        ("put -> answer", summary(&mut put_answer)),
        ("revoke acknowledged by etcd", summary(&mut revoke_ack)),
        ("revoke -> NXDOMAIN", summary(&mut revoke_gone)),
    ];
    println!(
        "fresh: {changes} changes, polling every {} us, timeouts: put {put_timeouts}, revoke {revoke_timeouts} (limit {} ms)",
        interval.as_micros(),
        timeout.as_millis()
    );
    println!(
        "  {:<28} {:>8} {:>8} {:>8}",
        "ms from request sent", "p50", "p99", "max"
    );
    for (what, (p50, p99, max)) in rows {
        println!("  {what:<28} {p50:>8.2} {p99:>8.2} {max:>8.2}");
    }
    let (_, put) = rows[1];
    let (_, revoke) = rows[3];
    let (_, put_a) = rows[0];
    let (_, revoke_a) = rows[2];
    println!(
        "RESULT fresh changes={changes} put_timeouts={put_timeouts} revoke_timeouts={revoke_timeouts} \
         put_p50={:.2} put_p99={:.2} put_max={:.2} revoke_p50={:.2} revoke_p99={:.2} revoke_max={:.2} \
         put_ack_p50={:.2} revoke_ack_p50={:.2} put_ack_p99={:.2} revoke_ack_p99={:.2}",
        put.0, put.1, put.2, revoke.0, revoke.1, revoke.2, put_a.0, revoke_a.0, put_a.1, revoke_a.1
    );
    if put_answer.is_empty() {
        bail!("no change was ever answered: is {dns} serving zone {zone} from prefix {prefix}?");
    }
    Ok(())
}

async fn churn(etcd: &str, rate: u32, seconds: f64, keys: u32, prefix: &str) -> Result<()> {
    if rate == 0 || keys == 0 || seconds.is_nan() || seconds <= 0.0 {
        bail!("--rate, --keys and --seconds must be positive");
    }
    let client = connect(etcd).await?;
    let total = (f64::from(rate) * seconds).round() as u64;
    let in_flight = Arc::new(Semaphore::new(CHURN_IN_FLIGHT));
    let mut tasks: JoinSet<Result<()>> = JoinSet::new();
    let (mut ok, mut errors) = (0u64, 0u64);
    let mut first_error: Option<anyhow::Error> = None;
    let mut reap = |joined: Result<Result<()>, tokio::task::JoinError>| match joined {
        Ok(Ok(())) => ok += 1,
        Ok(Err(e)) => {
            errors += 1;
            first_error.get_or_insert(e);
        }
        Err(e) => {
            errors += 1;
            first_error.get_or_insert(anyhow::Error::new(e).context("a churn task panicked"));
        }
    };
    let start = tokio::time::Instant::now();
    for i in 0..total {
        // Absolute due times: a late tick is followed by quick ones, so the average rate holds
        // whenever etcd keeps up.
        tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / f64::from(rate))).await;
        let permit = Arc::clone(&in_flight)
            .acquire_owned()
            .await
            .context("the churn semaphore closed")?;
        let key = format!("{prefix}n{}", i % u64::from(keys));
        let ip = Ipv4Addr::from(0x0A80_0000u32 | (i as u32 & 0x007F_FFFF));
        let mut client = client.clone();
        tasks.spawn(async move {
            let _permit = permit;
            client
                .put(key.as_bytes(), value(ip), None)
                .await
                .with_context(|| format!("put {key} failed"))?;
            Ok(())
        });
        while let Some(joined) = tasks.try_join_next() {
            reap(joined);
        }
    }
    while let Some(joined) = tasks.join_next().await {
        reap(joined);
    }
    let secs = start.elapsed().as_secs_f64();
    let achieved = ok as f64 / secs;
    println!(
        "churn: {ok} updates of {keys} keys in {secs:.2} s = {achieved:.0}/s (target {rate}/s), {errors} errors"
    );
    println!("RESULT churn updates={ok} errors={errors} seconds={secs:.3} rate={achieved:.1} target={rate}");
    if let Some(e) = first_error {
        eprintln!("churn: first error: {e:#}");
        if ok == 0 {
            return Err(e);
        }
    }
    Ok(())
}

fn unix_now_ns() -> Result<u128> {
    Ok(SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the clock is before 1970")?
        .as_nanos())
}

fn wait(
    dns: SocketAddr,
    name: &str,
    until: Until,
    since_unix_ns: Option<u128>,
    interval: Duration,
    timeout: f64,
) -> Result<()> {
    let since = match since_unix_ns {
        Some(ns) => ns,
        None => unix_now_ns()?,
    };
    let name = Name::from_ascii(name).with_context(|| format!("bad DNS name {name}"))?;
    let want = match until {
        Until::Answer => Want::AnyAnswer,
        Until::Nxdomain => Want::NxDomain,
    };
    let poller = Poller::new(dns)?;
    let deadline = Instant::now() + Duration::from_secs_f64(timeout.max(0.0));
    match poller.poll(&name, want, interval, deadline)? {
        Some(_) => {
            let ms = unix_now_ns()?.saturating_sub(since) as f64 / 1e6;
            println!("wait: {name} {until:?} after {ms:.1} ms");
            println!("RESULT wait ms={ms:.1}");
            Ok(())
        }
        None => bail!("{name} did not reach {until:?} at {dns} within {timeout} s"),
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    match Args::parse().command {
        Command::Load {
            etcd,
            count,
            prefix,
        } => load(&etcd, count, &prefix).await,
        Command::Fresh {
            etcd,
            dns,
            changes,
            prefix,
            zone,
            interval_us,
            timeout_ms,
        } => {
            fresh(
                &etcd,
                dns,
                changes,
                &prefix,
                &zone,
                Duration::from_micros(interval_us),
                Duration::from_millis(timeout_ms),
            )
            .await
        }
        Command::Churn {
            etcd,
            rate,
            seconds,
            keys,
            prefix,
        } => churn(&etcd, rate, seconds, keys, &prefix).await,
        Command::Wait {
            dns,
            name,
            until,
            since_unix_ns,
            interval_us,
            timeout,
        } => tokio::task::spawn_blocking(move || {
            wait(
                dns,
                &name,
                until,
                since_unix_ns,
                Duration::from_micros(interval_us),
                timeout,
            )
        })
        .await
        .context("the DNS poller panicked")?,
    }
}
