//! `register list`: the registry as the server would read it.

use hickory_proto::rr::Name;

use super::RegisterError;
use crate::etcd::{read_prefix, EtcdConfig};
use crate::service::{parse_entry, Invalid};

/// What `register list` prints: every valid instance with its address or host name, and the
/// keys the server skips with the reason, both in key order, read at one revision.
#[derive(Debug, Default)]
pub struct Listing {
    /// `(etcd key, address or host)`.
    pub instances: Vec<(String, String)>,
    /// `(etcd key, why it is skipped)`.
    pub rejected: Vec<(String, Invalid)>,
}

/// Reads the registry under `prefix` (keys and values parsed as the server parses them).
pub async fn list(etcd: &EtcdConfig, prefix: &str) -> Result<Listing, RegisterError> {
    let client = etcd.connect().await?;
    let mut listing = Listing::default();
    read_prefix(&client, etcd, prefix.as_bytes(), |kvs| {
        for kv in kvs {
            let key = String::from_utf8_lossy(kv.key()).into_owned();
            match parse_entry(prefix, &Name::root(), kv.key(), kv.value()) {
                Ok((_, registration)) => listing
                    .instances
                    .push((key, registration.target.to_string())),
                Err(reason) => listing.rejected.push((key, reason)),
            }
        }
    })
    .await?;
    // Pages arrive by range, not in key order.
    listing.instances.sort();
    listing.rejected.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(listing)
}
