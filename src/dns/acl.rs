//! Who may transfer the live zone (`--allow-transfer`): addresses and CIDR prefixes.

use std::net::IpAddr;

use thiserror::Error;

use crate::flags::split_list;

/// A bad `--allow-transfer` item.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum AclError {
    /// Not an address, with or without a prefix length.
    #[error("{0:?} is not IP or IP/LEN")]
    Address(String),
    /// A prefix length longer than the address.
    #[error("{item:?}: prefix length must be 0-{max}")]
    PrefixLength {
        /// The item as given.
        item: String,
        /// The longest prefix of its address family.
        max: u8,
    },
}

/// Clients allowed to transfer the zone (`--allow-transfer`): addresses or CIDR prefixes, and
/// TSIG keys (`key:NAME`). With keys, a transfer must be signed by one of them (and come from a
/// listed network, when networks are listed too).
#[derive(Debug, Clone, Default)]
pub struct Acl(Vec<(IpAddr, u8)>, Vec<String>);

impl Acl {
    /// Parses a comma-separated list of `IP`, `IP/LEN` or `key:NAME`.
    pub fn parse(list: &str) -> Result<Self, AclError> {
        let mut nets = Vec::new();
        let mut keys = Vec::new();
        for item in split_list(list) {
            match item.strip_prefix("key:") {
                Some(name) => {
                    let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
                    keys.push(format!("{name}."));
                }
                None => nets.push(Self::parse_one(&item)?),
            }
        }
        Ok(Self(nets, keys))
    }

    /// True when it allows nobody.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty() && self.1.is_empty()
    }

    /// The keys one of which must sign a transfer (lowercase, with the final dot); empty when
    /// the address alone decides.
    pub fn keys(&self) -> &[String] {
        &self.1
    }

    /// Parses one `IP` or `IP/LEN` (an address alone is its own network).
    pub fn parse_one(item: &str) -> Result<(IpAddr, u8), AclError> {
        let (ip, len) = match item.split_once('/') {
            Some((ip, len)) => (ip, Some(len)),
            None => (item, None),
        };
        let ip: IpAddr = ip
            .trim()
            .parse()
            .map_err(|_| AclError::Address(item.to_string()))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let len = match len {
            Some(len) => len
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|l| *l <= max)
                .ok_or_else(|| AclError::PrefixLength {
                    item: item.to_string(),
                    max,
                })?,
            None => max,
        };
        Ok((ip, len))
    }

    /// True when `ip` is in one of the networks, or no network is listed but a key is (the
    /// key then decides).
    pub fn contains(&self, ip: IpAddr) -> bool {
        if self.0.is_empty() && !self.1.is_empty() {
            return true;
        }
        let bits = |ip: IpAddr| match ip {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)) << 96, true),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => (u128::from(u32::from(v4)) << 96, true),
                None => (u128::from(v6), false),
            },
        };
        let (ip, v4) = bits(ip);
        self.0.iter().any(|(net, len)| {
            let (net, net_v4) = bits(*net);
            let len = u32::from(*len);
            // IPv4 sits in the top 32 bits, so one mask rule serves both families.
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            v4 == net_v4 && (ip & mask) == (net & mask)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acl_matches_addresses_and_prefixes() {
        let acl = Acl::parse("127.0.0.1, 10.1.0.0/16, 2001:db8::/32").expect("acl");
        for (ip, want) in [
            ("127.0.0.1", true),
            ("127.0.0.2", false),
            ("10.1.200.3", true),
            ("10.2.0.1", false),
            ("::ffff:10.1.0.9", true),
            ("2001:db8:1::5", true),
            ("2001:db9::5", false),
        ] {
            assert_eq!(acl.contains(ip.parse().expect("ip")), want, "{ip}");
        }
        assert!(Acl::parse("10.0.0.0/33").is_err());
        assert!(Acl::parse("host").is_err());
        assert!(!Acl::default().contains("127.0.0.1".parse().expect("ip")));
    }
}
