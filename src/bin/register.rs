//! `register`: keep one service instance registered in etcd under a lease.

use std::net::IpAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use etcd_dns::etcd::EtcdConfig;
use etcd_dns::register::check::{self, Check, Gate, HttpTarget, DEFAULT_CHECK_INTERVAL};
use etcd_dns::register::{self, RegisterSpec, DEFAULT_LEASE_TTL};
use tokio_util::sync::CancellationToken;

etcd_dns::etcd_args!(EtcdArgs, "REGISTER_");

/// Registers a service instance in etcd and keeps it alive until SIGINT/SIGTERM, which revoke
/// the lease so the name disappears at once.
///
/// With --check-http or --check-cmd the instance is registered only while the check passes:
/// when it fails the lease is revoked (the name stops answering), when it passes again a new
/// lease is granted and the key put back.
#[derive(Parser, Debug)]
#[command(
    name = "register",
    version,
    about,
    long_about,
    subcommand_negates_reqs = true
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Service name: the key is PREFIX<name> (DNS <name>.<zone>)
    #[arg(long, env = "REGISTER_NAME", required = true)]
    name: Option<String>,
    /// Address to publish [default: this host's first non-loopback address]
    #[arg(long, env = "REGISTER_IP")]
    ip: Option<IpAddr>,
    /// Port, published as SRV
    #[arg(long, env = "REGISTER_PORT")]
    port: Option<u16>,
    /// Instance label: registers PREFIX<name>/<instance>, one of several instances
    #[arg(long, env = "REGISTER_INSTANCE")]
    instance: Option<String>,
    /// Lease TTL in seconds (at least 2): how long a crashed service stays registered
    #[arg(long, env = "REGISTER_TTL", default_value_t = DEFAULT_LEASE_TTL)]
    ttl: i64,
    /// TXT string, k=v (repeatable; commas are kept, so REGISTER_TXT holds one string)
    #[arg(long = "txt", env = "REGISTER_TXT")]
    txt: Vec<String>,
    /// Tag, a DNS label: found at _<name>._<tag>.<zone> (repeatable; REGISTER_TAGS: comma-separated)
    #[arg(long = "tag", env = "REGISTER_TAGS", value_delimiter = ',')]
    tag: Vec<String>,
    /// Weight of this instance among the service's (SRV weight; shapes A/AAAA answers too)
    #[arg(long, env = "REGISTER_WEIGHT")]
    weight: Option<u16>,
    /// The instance's failure domain (availability zone, rack): etcd-dns --locality prefers it for nearby clients
    #[arg(long, env = "REGISTER_LOCALITY", value_name = "ZONE")]
    locality: Option<String>,
    /// Registered only while GET URL answers 2xx within the check timeout (http:// only)
    #[arg(
        long,
        env = "REGISTER_CHECK_HTTP",
        value_name = "URL",
        conflicts_with = "check_cmd"
    )]
    check_http: Option<HttpTarget>,
    /// Registered only while `sh -c CMD` exits 0 within the check timeout (killed past it)
    #[arg(
        long,
        env = "REGISTER_CHECK_CMD",
        value_name = "CMD",
        value_parser = check::parse_command
    )]
    check_cmd: Option<String>,
    /// Time between two checks (500ms, 5s, 1m); the timeout of one check is this, at most 2s
    #[arg(
        long,
        env = "REGISTER_CHECK_INTERVAL",
        value_name = "DURATION",
        default_value = DEFAULT_CHECK_INTERVAL,
        value_parser = check::parse_interval
    )]
    check_interval: Duration,
    #[command(flatten)]
    etcd: EtcdArgs,
    /// etcd key prefix of the registry
    #[arg(
        long,
        env = "REGISTER_PREFIX",
        default_value = "services/",
        global = true
    )]
    prefix: String,
    /// Log level (trace, debug, info, warn, error) or a tracing filter; RUST_LOG wins
    #[arg(
        long,
        env = "REGISTER_LOG_LEVEL",
        default_value = etcd_dns::logging::DEFAULT_FILTER,
        global = true
    )]
    log_level: String,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print every registered instance and its address, then the count
    List,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    etcd_dns::logging::init(&args.log_level);
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("register: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<()> {
    let etcd: EtcdConfig = args.etcd.clone().into();
    etcd.validate()?;
    if let Some(Command::List) = args.command {
        let listing = register::list(&etcd, &args.prefix)
            .await
            .context("cannot list the registry")?;
        for (key, target) in &listing.instances {
            println!("{key}\t{target}");
        }
        for (key, reason) in &listing.rejected {
            eprintln!("skipped {key}: {reason}");
        }
        let n = listing.instances.len();
        println!("{n} instance{}", if n == 1 { "" } else { "s" });
        return Ok(());
    }
    let name = args.name.context("--name is required")?;
    let ip = match args.ip {
        Some(ip) => ip,
        None => register::default_ip()
            .context("no non-loopback address found on this host; pass --ip")?,
    };
    let spec = RegisterSpec {
        prefix: args.prefix,
        name,
        instance: args.instance,
        ip,
        port: args.port,
        ttl: args.ttl,
        txt: args.txt,
        tags: args.tag,
        weight: args.weight,
        zone: args.locality,
    };
    let shutdown = CancellationToken::new();
    let check = match (args.check_http, args.check_cmd) {
        (Some(target), _) => Some(Check::Http(target)),
        (None, Some(command)) => Some(Check::Command(command)),
        (None, None) => None,
    };
    let gate = match check {
        Some(check) => Gate::spawn(check, args.check_interval, shutdown.clone()),
        None => Gate::open(),
    };
    let (signal, stop) = (
        shutdown.clone(),
        etcd_dns::signals::stop_signal()
            .context("cannot install the SIGINT and SIGTERM handlers")?,
    );
    tokio::spawn(async move {
        stop.await;
        signal.cancel();
    });
    register::run(&etcd, &spec, gate, shutdown)
        .await
        .with_context(|| format!("cannot register {}", spec.key()))
}
