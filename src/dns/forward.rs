//! Forwarding every name outside our zones to upstream resolvers through hickory-resolver.
//! Answers are cached in front of it, in wire form ([`super::cache`]), so its own cache is off.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverOpts};
use hickory_server::store::forwarder::{ForwardConfig, ForwardZoneHandler};
use thiserror::Error;

/// Per-attempt timeout towards an upstream: with [`UPSTREAM_ATTEMPTS`] this bounds how long a
/// client waits for SERVFAIL when every upstream is down.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(1);
/// Attempts per upstream.
pub const UPSTREAM_ATTEMPTS: usize = 1;
/// hickory-resolver's cache: none. The answer cache keeps answers (`--cache-size`), and a
/// second cache behind it would only hold a copy of each, or, with `--cache-size 0`, cache
/// what the operator asked not to.
pub const RESOLVER_CACHE: u64 = 0;
/// Standard DNS port.
const DNS_PORT: u16 = 53;

/// A bad `--upstream` list.
#[derive(Debug, Error)]
pub enum ForwardError {
    /// An item is not `IP` or `IP:PORT`.
    #[error("upstream {0:?} is not IP or IP:PORT")]
    BadUpstream(String),
    /// The resolver refused the configuration.
    #[error("forwarder: {0}")]
    Resolver(String),
}

/// Parses `IP`, `IP:PORT`, `[IPv6]:PORT` items of a comma-separated list.
pub fn parse_upstreams(list: &str) -> Result<Vec<SocketAddr>, ForwardError> {
    crate::flags::split_list(list)
        .into_iter()
        .map(|item| {
            item.parse::<SocketAddr>()
                .or_else(|_| {
                    item.parse::<IpAddr>()
                        .map(|ip| SocketAddr::new(ip, DNS_PORT))
                })
                .map_err(|_| ForwardError::BadUpstream(item))
        })
        .collect()
}

/// The `nameserver` lines of a resolv.conf text, except those that are this server (`listen`).
pub fn resolv_conf_upstreams(text: &str, listen: &[SocketAddr]) -> Vec<SocketAddr> {
    let local: Vec<IpAddr> = if_addrs::get_if_addrs()
        .map(|ifaces| ifaces.into_iter().map(|i| i.ip()).collect())
        .unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("nameserver"))
                .then(|| words.next())
                .flatten()
        })
        // A scoped IPv6 address ("fe80::1%eth0") cannot be used without its interface.
        .filter_map(|ip| ip.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, DNS_PORT))
        .filter(|upstream| !is_self(*upstream, listen, &local))
        .collect()
}

/// Reads resolv.conf at `path` (see [`resolv_conf_upstreams`]); a missing file means none.
pub fn system_upstreams(path: &Path, listen: &[SocketAddr]) -> Vec<SocketAddr> {
    std::fs::read_to_string(path)
        .map(|text| resolv_conf_upstreams(&text, listen))
        .unwrap_or_default()
}

fn is_self(upstream: SocketAddr, listen: &[SocketAddr], local: &[IpAddr]) -> bool {
    listen.iter().any(|l| {
        l.port() == upstream.port()
            && (l.ip() == upstream.ip()
                || (l.ip().is_unspecified()
                    && (upstream.ip().is_loopback() || local.contains(&upstream.ip()))))
    })
}

/// A forwarding zone handler for `upstreams`, tried in order.
pub fn forwarder(upstreams: &[SocketAddr]) -> Result<ForwardZoneHandler, ForwardError> {
    let name_servers = upstreams
        .iter()
        .map(|upstream| {
            let connections = [ConnectionConfig::udp(), ConnectionConfig::tcp()]
                .into_iter()
                .map(|mut c| {
                    c.port = upstream.port();
                    c
                })
                .collect();
            NameServerConfig::new(upstream.ip(), true, connections)
        })
        .collect();
    let mut options = ResolverOpts::default();
    options.timeout = UPSTREAM_TIMEOUT;
    options.attempts = UPSTREAM_ATTEMPTS;
    options.cache_size = RESOLVER_CACHE;
    options.edns0 = true;
    let config = ForwardConfig {
        name_servers,
        options: Some(options),
    };
    ForwardZoneHandler::builder_tokio(config)
        .build()
        .map_err(ForwardError::Resolver)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_lists() {
        let parsed = parse_upstreams("1.1.1.1, 127.0.0.1:5300,[::1]:53,2001:db8::1").expect("ok");
        let text: Vec<String> = parsed.iter().map(|a| a.to_string()).collect();
        assert_eq!(
            text,
            vec![
                "1.1.1.1:53",
                "127.0.0.1:5300",
                "[::1]:53",
                "[2001:db8::1]:53"
            ]
        );
        assert!(parse_upstreams("dns.example").is_err());
    }

    #[test]
    fn resolv_conf_skips_ourselves() {
        let text = "# comment\nsearch example\nnameserver 127.0.0.1\nnameserver 10.0.0.2\n\
                    nameserver fe80::1%eth0\nnameserver 127.0.0.53\n";
        let listen: Vec<SocketAddr> = vec!["127.0.0.1:53".parse().expect("addr")];
        let got: Vec<String> = resolv_conf_upstreams(text, &listen)
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(got, vec!["10.0.0.2:53", "127.0.0.53:53"]);
        // Listening on every address on port 53: every loopback nameserver is us.
        let listen: Vec<SocketAddr> = vec!["0.0.0.0:53".parse().expect("addr")];
        let got = resolv_conf_upstreams(text, &listen);
        assert_eq!(
            got,
            vec!["10.0.0.2:53".parse::<SocketAddr>().expect("addr")]
        );
        // On another port, nothing in resolv.conf is us.
        let listen: Vec<SocketAddr> = vec!["127.0.0.1:5353".parse().expect("addr")];
        assert_eq!(resolv_conf_upstreams(text, &listen).len(), 3);
    }
}
