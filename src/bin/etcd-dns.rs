//! `etcd-dns`: authoritative DNS for the services registered in etcd.

use std::net::SocketAddr;

use anyhow::{Context, Result};
use clap::Parser;
use etcd_dns::dns::Listeners;
use etcd_dns::server::{self, ServerConfig};
use etcd_dns::table::{ZoneConfig, DEFAULT_NEGATIVE_TTL, DEFAULT_TTL};
use hickory_proto::rr::Name;
use tokio_util::sync::CancellationToken;
use tracing::info;

etcd_dns::etcd_args!(EtcdArgs, "ETCD_DNS_");

/// Authoritative DNS for service discovery, answered from a watched etcd prefix.
///
/// Services register under PREFIX (key `services/<name>`, value `{"IP":"192.168.1.26"}`, bound
/// to a lease); `<name>.ZONE` then answers their addresses, and stops as soon as the lease is
/// revoked or expires.
#[derive(Parser, Debug)]
#[command(version, about, long_about)]
struct Args {
    /// UDP and TCP address to answer on (repeatable); port 0 picks a free port
    #[arg(
        long,
        env = "ETCD_DNS_LISTEN",
        default_value = "0.0.0.0:53",
        value_delimiter = ','
    )]
    listen: Vec<SocketAddr>,
    #[command(flatten)]
    etcd: EtcdArgs,
    /// etcd key prefix of the registry
    #[arg(long, env = "ETCD_DNS_PREFIX", default_value = "services/")]
    prefix: String,
    /// DNS zone the registry is served as
    #[arg(long, env = "ETCD_DNS_ZONE", default_value = "services.local.")]
    zone: Name,
    /// TTL in seconds of live records whose value names none
    #[arg(long, env = "ETCD_DNS_TTL", default_value_t = DEFAULT_TTL)]
    ttl: u32,
    /// TTL in seconds of negative answers (NXDOMAIN, NODATA) and the SOA MINIMUM
    #[arg(long, env = "ETCD_DNS_NEGATIVE_TTL", default_value_t = DEFAULT_NEGATIVE_TTL)]
    negative_ttl: u32,
    /// Log level (trace, debug, info, warn, error) or a tracing filter; RUST_LOG wins
    #[arg(
        long,
        env = "ETCD_DNS_LOG_LEVEL",
        default_value = "info,hickory_server=warn"
    )]
    log_level: String,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    etcd_dns::logging::init(&args.log_level);
    let mut zone = args.zone.clone();
    zone.set_fqdn(true);
    let config = ServerConfig {
        zone: ZoneConfig {
            zone,
            prefix: args.prefix.clone(),
            ttl: args.ttl,
            negative_ttl: args.negative_ttl,
        },
        etcd: args.etcd.clone().into(),
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let listeners = Listeners::bind(&args.listen, threads)
        .with_context(|| format!("cannot listen on {:?}", args.listen))?;
    for addr in listeners.local_addrs() {
        info!(%addr, zone = %config.zone.zone, prefix = %config.zone.prefix, "listening");
    }
    let shutdown = CancellationToken::new();
    let running = server::start(config, listeners, shutdown.clone());
    wait_for_signal().await?;
    info!("shutting down");
    shutdown.cancel();
    running.wait().await;
    Ok(())
}

async fn wait_for_signal() -> Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot install the SIGTERM handler")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("cannot listen for SIGINT")?,
        _ = term.recv() => {}
    }
    Ok(())
}
