//! `etcd-dns`: authoritative DNS for the services registered in etcd.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use etcd_dns::dns::acl::Acl;
use etcd_dns::dns::locality::Locality;
use etcd_dns::dns::rrl::{self, RrlConfig};
use etcd_dns::dns::tcp::{self, TcpLimits};
use etcd_dns::dns::tls::TlsFlags;
use etcd_dns::dns::{forward, zones, CatalogConfig, Listeners};
use etcd_dns::dns::{notify, tsig};
use etcd_dns::dnssec::Dnssec;
use etcd_dns::etcd::EtcdConfig;
use etcd_dns::http;
use etcd_dns::server::{self, RunError, ServerConfig};
use etcd_dns::sources::{RegistrySpec, DEFAULT_PREFIX};
use etcd_dns::table::journal::DEFAULT_IXFR_HISTORY;
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
///
/// `etcd-dns dnssec keygen ZONE` makes a DNSSEC key for --dnssec-key; `etcd-dns dnssec ds KEY`
/// prints its DS record.
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
    #[command(flatten)]
    tls: TlsFlags,
    /// etcd key prefix of the native registry [default: services/]
    #[arg(long, env = "ETCD_DNS_PREFIX")]
    prefix: Option<String>,
    /// DNS zone the registry is served as (and the default ZONE of --registry)
    #[arg(long, env = "ETCD_DNS_ZONE", default_value = "services.local.")]
    zone: Name,
    /// A registry to serve, FORMAT=PREFIX[@ZONE] (repeatable, or comma separated): FORMAT is
    /// native, etcd-naming, go-zero, kratos, go-micro, skydns, rpcx or dubbo; ZONE defaults to
    /// --zone. Given, it replaces the default native=services/ (docs/REGISTRIES.md, "Other
    /// registries")
    #[arg(long, env = "ETCD_DNS_REGISTRY", value_delimiter = ',')]
    registry: Vec<RegistrySpec>,
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
    /// MiB of forwarded answers to cache (answered on the fast path, TTLs counted down,
    /// negative answers per RFC 2308, stale ones when upstreams fail); 0 caches nothing
    #[arg(long, env = "ETCD_DNS_CACHE_SIZE", default_value_t = etcd_dns::dns::cache::DEFAULT_CACHE_MIB)]
    cache_size: usize,
    /// Address for /metrics, /health, /ready and /services (port 0 picks a free port)
    #[arg(long, env = "ETCD_DNS_HTTP", default_value = http::DEFAULT_HTTP)]
    http: SocketAddr,
    /// Serve no HTTP endpoints, whatever --http says
    // Not a conflict with --http: an ETCD_DNS_HTTP set for every run (the container image sets
    // one) must not stop a run that asks for no HTTP.
    #[arg(long, env = "ETCD_DNS_NO_HTTP")]
    no_http: bool,
    /// How long the table may go without an etcd quorum confirming it before names under the
    /// zone answer SERVFAIL and /ready fails, e.g. 30s or 5m; at least 5s with etcd's default
    /// timings, or an election shows as SERVFAIL [default: unlimited]
    #[arg(long, env = "ETCD_DNS_MAX_STALE", value_parser = humantime::parse_duration)]
    max_stale: Option<Duration>,
    /// Most records in one A, AAAA, SRV or PTR answer, chosen per query by weight so that load
    /// spreads over every instance (8 keeps UDP answers small, as Route 53's multivalue
    /// answers) [default: as many as fit the transport]
    #[arg(long, env = "ETCD_DNS_MAX_ANSWERS", value_parser = clap::value_parser!(u16).range(1..))]
    max_answers: Option<u16>,
    /// Client networks by zone, CIDR=ZONE comma separated (10.1.0.0/16=eu-west-1a): A, AAAA
    /// and SRV answers prefer the instances whose "zone" is the client's
    #[arg(
        long,
        env = "ETCD_DNS_LOCALITY",
        default_value = "",
        value_name = "CIDR=ZONE,…"
    )]
    locality: String,
    /// Fewest instances of the client's zone that make an answer local; with fewer, every
    /// instance is answered
    #[arg(long, env = "ETCD_DNS_LOCALITY_MIN", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    locality_min: u16,
    /// Forwarders whose EDNS Client Subnet stands for their client in --locality (IP or
    /// IP/LEN, comma separated); replies to them carry the ECS scope
    #[arg(
        long,
        env = "ETCD_DNS_TRUST_ECS",
        default_value = "",
        value_name = "CIDRS"
    )]
    trust_ecs: String,
    /// Secondaries to NOTIFY of every change of a live zone: ADDR or ADDR:PORT (53), comma
    /// separated; changes are coalesced (100 ms) and each NOTIFY is retried until acknowledged
    #[arg(
        long,
        env = "ETCD_DNS_NOTIFY",
        default_value = "",
        value_name = "ADDR[:PORT],…"
    )]
    notify: String,
    /// Changes of each live zone kept for IXFR (each is the records it removed and added); a
    /// secondary further behind gets the whole zone. 0 answers every IXFR with the whole zone
    #[arg(long, env = "ETCD_DNS_IXFR_HISTORY", default_value_t = DEFAULT_IXFR_HISTORY)]
    ixfr_history: usize,
    /// A TSIG key: a key file in BIND's format (as tsig-keygen writes it) or [ALG:]NAME:SECRET
    /// (repeatable; ETCD_DNS_TSIG_KEY: comma-separated); signed requests are verified, their
    /// replies signed
    #[arg(
        long = "tsig-key",
        env = "ETCD_DNS_TSIG_KEY",
        value_delimiter = ',',
        value_name = "FILE|[ALG:]NAME:SECRET"
    )]
    tsig_key: Vec<String>,
    /// File that keeps the served SOA serials across restarts, so that they never go backwards
    /// for a secondary, also after etcd was wiped (its revision starts again)
    #[arg(long, env = "ETCD_DNS_SERIAL_FILE", value_name = "FILE")]
    serial_file: Option<PathBuf>,
    /// Sign a live zone online with this DNSSEC key, BIND's K<zone>+013+<tag>.private with its
    /// .key beside it (repeatable: per zone the first signs, later ones are only published)
    #[arg(
        long = "dnssec-key",
        env = "ETCD_DNS_DNSSEC_KEY",
        value_delimiter = ',',
        value_name = "FILE"
    )]
    dnssec_key: Vec<PathBuf>,
    /// The TSIG key (by name) that signs NOTIFY messages
    #[arg(long, env = "ETCD_DNS_NOTIFY_KEY", value_name = "NAME")]
    notify_key: Option<String>,
    /// Clients allowed to AXFR/IXFR the live zone: IP, IP/LEN or key:NAME (a TSIG key that must sign the transfer), comma separated
    #[arg(long, env = "ETCD_DNS_ALLOW_TRANSFER", default_value = "")]
    allow_transfer: String,
    /// Most TCP connections open at once; when full, the one idle the longest is closed for a
    /// new one [default: half the open-file limit, at most 10000]
    #[arg(long, env = "ETCD_DNS_TCP_MAX_CLIENTS", value_parser = clap::value_parser!(u32).range(1..))]
    tcp_max_clients: Option<u32>,
    /// How long a TCP connection may wait for its next query before it is closed
    #[arg(long, env = "ETCD_DNS_TCP_IDLE_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    tcp_idle_timeout: Duration,
    /// How long the rest of a TCP query may take once its length has arrived, and a reply's
    /// sending
    #[arg(long, env = "ETCD_DNS_TCP_IO_TIMEOUT", default_value = "1s", value_parser = humantime::parse_duration)]
    tcp_io_timeout: Duration,
    /// Response rate limiting: UDP replies per second per client network and answer; 0 turns
    /// it off [default: 200 when a --listen address is not loopback, else off]
    #[arg(long, env = "ETCD_DNS_RRL_RATE")]
    rrl_rate: Option<u32>,
    /// Every Nth rate-limited reply goes out truncated (TC) so that a real client retries over
    /// TCP; 0 sends none
    #[arg(long, env = "ETCD_DNS_RRL_SLIP", default_value_t = rrl::DEFAULT_SLIP)]
    rrl_slip: u32,
    /// Length of the IPv4 network whose clients share a rate limit
    #[arg(long, env = "ETCD_DNS_RRL_IPV4_PREFIX", default_value_t = rrl::DEFAULT_IPV4_PREFIX, value_parser = clap::value_parser!(u8).range(0..=32))]
    rrl_ipv4_prefix: u8,
    /// Length of the IPv6 network whose clients share a rate limit
    #[arg(long, env = "ETCD_DNS_RRL_IPV6_PREFIX", default_value_t = rrl::DEFAULT_IPV6_PREFIX, value_parser = clap::value_parser!(u8).range(0..=128))]
    rrl_ipv6_prefix: u8,
    /// Clients never rate-limited: IP or IP/LEN, comma separated
    #[arg(long, env = "ETCD_DNS_RRL_EXEMPT", default_value = "")]
    rrl_exempt: String,
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
    if std::env::args_os().nth(1).is_some_and(|a| a == "dnssec") {
        return etcd_dns::dnssec::cli::run(std::env::args_os().skip(2));
    }
    let args = Args::parse();
    etcd_dns::logging::init(&args.log_level);
    etcd_dns::rlimit::raise_and_log();
    let etcd: EtcdConfig = args.etcd.clone().into();
    etcd.validate()?;
    let mut zone = args.zone.clone();
    zone.set_fqdn(true);
    let required = args.zones != Path::new(DEFAULT_ZONES);
    let files = zones::load_dir(&args.zones, required).context("cannot load zone files")?;
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
    let registries = match (&args.prefix, args.registry.as_slice()) {
        (Some(_), [_, ..]) => anyhow::bail!(
            "--prefix and --registry both given: write the native registry as --registry native=PREFIX"
        ),
        (prefix, []) => vec![RegistrySpec::native(
            prefix.as_deref().unwrap_or(DEFAULT_PREFIX),
        )],
        (None, given) => given.to_vec(),
    };
    let main_zone = ZoneConfig {
        ttl: args.ttl,
        negative_ttl: args.negative_ttl,
        ..ZoneConfig::new(zone)
    };
    // Bad registries (nested zones) fail before anything is served.
    let (live, zone_files) =
        server::live_zones(main_zone, &registries, files).context("bad --registry")?;
    let prefixes: Vec<String> = live
        .sources
        .iter()
        .map(|s| {
            let zone = &live.zones[s.zone].zone;
            info!(format = %s.format, prefix = %s.prefix, %zone, "serving registry");
            format!("{:?}", s.prefix)
        })
        .collect();
    let tsig_keys = tsig_keys(&args)?;
    let mut live = live;
    if let Some(path) = &args.serial_file {
        live.saved_serials = etcd_dns::table::saved::read(path).context("bad --serial-file")?;
    }
    let dnssec = Dnssec::load(&args.dnssec_key, &live).context("bad --dnssec-key")?;
    let config = ServerConfig {
        dnssec: dnssec.map(Arc::new),
        live,
        etcd,
        catalog: CatalogConfig {
            zone_files,
            upstreams,
            allow_transfer: Acl::parse(&args.allow_transfer).context("bad --allow-transfer")?,
            cache_bytes: args.cache_size.saturating_mul(1 << 20),
        },
        max_stale: args.max_stale,
        max_answers: args.max_answers,
        locality: locality(&args)?,
        notify: notify::parse_targets(&args.notify).context("bad --notify")?,
        ixfr_history: args.ixfr_history,
        serial_file: args.serial_file.clone(),
        tsig_keys: tsig_keys.clone(),
        notify_key: notify_key(&args, &tsig_keys)?,
        tls: args.tls.certificates()?,
        rate_limit: rate_limit(&args)?,
        tcp: TcpLimits {
            max_clients: args
                .tcp_max_clients
                .map_or_else(tcp::default_max_clients, |n| n as usize),
            idle_timeout: args.tcp_idle_timeout,
            io_timeout: args.tcp_io_timeout,
        },
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut listeners = Listeners::bind(&args.listen, threads)
        .with_context(|| format!("cannot listen on {:?}", args.listen))?;
    let (tls, https, quic) = (
        &args.tls.tls_listen,
        &args.tls.https_listen,
        &args.tls.quic_listen,
    );
    listeners = listeners.with_encrypted(tls, https, quic).with_context(|| {
        format!("cannot listen on --tls-listen {tls:?} --https-listen {https:?} --quic-listen {quic:?}")
    })?;
    if !args.no_http {
        listeners = listeners
            .with_http(args.http)
            .with_context(|| format!("cannot serve --http on {}", args.http))?;
    }
    for addr in listeners.local_addrs() {
        info!(%addr, "listening");
    }
    for (what, addr) in listeners.encrypted_addrs() {
        info!(%addr, "listening for DNS over {what}");
    }
    let shutdown = CancellationToken::new();
    let stop = etcd_dns::signals::stop_signal()
        .context("cannot install the SIGINT and SIGTERM handlers")?;
    let running = server::start(config, listeners, shutdown.clone())?;
    let stopped = running.wait();
    tokio::pin!(stopped);
    // Only what cannot fix itself stops the server on its own: a permanent etcd failure before
    // the first read, or a watcher that died (a bug): exit non-zero, so a supervisor restarts it.
    let fatal = |result: Result<(), RunError>| {
        result.map_err(|error| match error {
            RunError::Watch(error) => anyhow::Error::new(error).context(format!(
                "cannot read the registry {} from etcd",
                prefixes.join(", ")
            )),
            other => anyhow::Error::new(other),
        })
    };
    tokio::select! {
        result = &mut stopped => return fatal(result),
        () = stop => {}
    }
    info!("shutting down");
    shutdown.cancel();
    fatal(stopped.await)
}

/// Every `--tsig-key`.
fn tsig_keys(args: &Args) -> Result<Vec<tsig::Key>> {
    let mut keys = Vec::new();
    for arg in &args.tsig_key {
        keys.extend(tsig::parse_key_arg(arg).context("bad --tsig-key")?);
    }
    Ok(keys)
}

/// `--notify-key`, which must name one of `keys`.
fn notify_key(args: &Args, keys: &[tsig::Key]) -> Result<Option<tsig::Key>> {
    let Some(name) = &args.notify_key else {
        return Ok(None);
    };
    let wanted = format!("{}.", name.trim_end_matches('.').to_ascii_lowercase());
    keys.iter()
        .find(|k| k.name().to_ascii() == wanted)
        .cloned()
        .map(Some)
        .with_context(|| format!("--notify-key {name}: no --tsig-key of that name"))
}

/// `--locality`, `--locality-min` and `--trust-ecs`, or `None` when locality is off.
fn locality(args: &Args) -> Result<Option<Locality>> {
    if args.locality.trim().is_empty() {
        if !args.trust_ecs.trim().is_empty() {
            anyhow::bail!(
                "--trust-ecs needs --locality: Client Subnet is only read to find a client's zone"
            );
        }
        return Ok(None);
    }
    let locality = Locality::parse(&args.locality, &args.trust_ecs, args.locality_min)
        .context("bad --locality or --trust-ecs")?;
    Ok(Some(locality))
}

/// The `--rrl-*` settings; on by default when a listener is reachable from other hosts.
fn rate_limit(args: &Args) -> Result<Option<RrlConfig>> {
    let exposed = args.listen.iter().any(|addr| !addr.ip().is_loopback());
    let rate = match args.rrl_rate {
        Some(0) => return Ok(None),
        Some(rate) => rate,
        None if exposed => rrl::DEFAULT_RATE,
        None => return Ok(None),
    };
    Ok(Some(RrlConfig {
        rate,
        slip: args.rrl_slip,
        ipv4_prefix: args.rrl_ipv4_prefix,
        ipv6_prefix: args.rrl_ipv6_prefix,
        exempt: Acl::parse(&args.rrl_exempt).context("bad --rrl-exempt")?,
    }))
}
