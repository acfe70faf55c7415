//! `etcd-dns`: authoritative DNS for the services registered in etcd.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use etcd_dns::dns::acl::Acl;
use etcd_dns::dns::{forward, zones, CatalogConfig, Listeners};
use etcd_dns::etcd::EtcdConfig;
use etcd_dns::http;
use etcd_dns::server::{self, ServerConfig};
use etcd_dns::zone::{ZoneConfig, DEFAULT_NEGATIVE_TTL, DEFAULT_TTL};
use hickory_proto::rr::Name;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

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
    /// Directory of static zone files (*.zone, RFC 1035 format; the file name is the zone)
    #[arg(long, env = "ETCD_DNS_ZONES", default_value = DEFAULT_ZONES)]
    zones: PathBuf,
    /// Upstream resolvers for every other name, IP or IP:PORT, comma separated
    /// [default: the nameservers of /etc/resolv.conf that are not this server]
    #[arg(long, env = "ETCD_DNS_UPSTREAM", conflicts_with = "no_forward")]
    upstream: Option<String>,
    /// Answer REFUSED for names outside our zones instead of forwarding them
    #[arg(long, env = "ETCD_DNS_NO_FORWARD")]
    no_forward: bool,
    /// Address for /metrics, /health, /ready and /services (port 0 picks a free port)
    #[arg(long, env = "ETCD_DNS_HTTP", default_value = http::DEFAULT_HTTP)]
    http: SocketAddr,
    /// Serve no HTTP endpoints, whatever --http says
    // Not a conflict with --http: an ETCD_DNS_HTTP set for every run (the container image sets
    // one) must not stop a run that asks for no HTTP.
    #[arg(long, env = "ETCD_DNS_NO_HTTP")]
    no_http: bool,
    /// How long the table may go without etcd confirming it before names under the zone answer
    /// SERVFAIL and /ready fails, e.g. 30s or 5m [default: unlimited]
    #[arg(long, env = "ETCD_DNS_MAX_STALE", value_parser = humantime::parse_duration)]
    max_stale: Option<Duration>,
    /// Clients allowed to AXFR the live zone: IP or IP/LEN, comma separated
    #[arg(long, env = "ETCD_DNS_ALLOW_TRANSFER", default_value = "")]
    allow_transfer: String,
    /// Log level (trace, debug, info, warn, error) or a tracing filter; RUST_LOG wins
    #[arg(long, env = "ETCD_DNS_LOG_LEVEL", default_value = etcd_dns::logging::DEFAULT_FILTER)]
    log_level: String,
}

/// Default directory of static zone files; it may be absent.
const DEFAULT_ZONES: &str = "zones";
/// Where the system's resolvers are listed.
const RESOLV_CONF: &str = "/etc/resolv.conf";

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    etcd_dns::logging::init(&args.log_level);
    let etcd: EtcdConfig = args.etcd.clone().into();
    etcd.validate()?;
    let mut zone = args.zone.clone();
    zone.set_fqdn(true);
    let required = args.zones != Path::new(DEFAULT_ZONES);
    let files = zones::load_dir(&args.zones, required).context("cannot load zone files")?;
    let (statics, zone_files) = zones::split_live(files, &zone);
    let upstreams = if args.no_forward {
        None
    } else if let Some(list) = &args.upstream {
        Some(forward::parse_upstreams(list).context("bad --upstream")?)
    } else {
        let found = forward::system_upstreams(Path::new(RESOLV_CONF), &args.listen);
        if found.is_empty() {
            warn!("no upstream in {RESOLV_CONF} other than this server; names outside our zones get REFUSED (set --upstream)");
            None
        } else {
            Some(found)
        }
    };
    let config = ServerConfig {
        zone: ZoneConfig {
            zone,
            prefix: args.prefix.clone(),
            ttl: args.ttl,
            negative_ttl: args.negative_ttl,
            statics: statics.map(Arc::new),
        },
        etcd,
        catalog: CatalogConfig {
            zone_files,
            upstreams,
            allow_transfer: Acl::parse(&args.allow_transfer).context("bad --allow-transfer")?,
        },
        max_stale: args.max_stale,
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut listeners = Listeners::bind(&args.listen, threads)
        .with_context(|| format!("cannot listen on {:?}", args.listen))?;
    if !args.no_http {
        listeners = listeners
            .with_http(args.http)
            .with_context(|| format!("cannot serve --http on {}", args.http))?;
    }
    for addr in listeners.local_addrs() {
        info!(%addr, zone = %config.zone.zone, prefix = %config.zone.prefix, "listening");
    }
    let shutdown = CancellationToken::new();
    let prefix = config.zone.prefix.clone();
    let running = server::start(config, listeners, shutdown.clone())?;
    let stopped = running.wait();
    tokio::pin!(stopped);
    let fatal = || format!("cannot read the registry {prefix:?} from etcd");
    tokio::select! {
        // Only a failure that retrying cannot fix stops the server on its own.
        result = &mut stopped => return result.with_context(fatal),
        signal = wait_for_signal() => signal?,
    }
    info!("shutting down");
    shutdown.cancel();
    stopped.await.with_context(fatal)
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
