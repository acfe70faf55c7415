//! The companion: keep one instance registered under a lease until told to stop.
//!
//! Grant a lease, claim the key with it, keep it alive about every TTL/3, revoke it on
//! shutdown. A lost lease (etcd restarted, partition longer than the TTL, key deleted) is
//! granted again and the key put again, with backoff, forever. Only a key held by somebody
//! else's live lease, invalid input, or etcd refusing us (credentials, permission, TLS) before
//! the first registration ends it with an error.
//!
//! With a health check ([`check`]) the instance is registered only while the check passes:
//! when it starts failing the lease is revoked (the key, and the DNS name, go at once); when it
//! passes again a new lease is granted and the key claimed as at start.

pub mod check;
mod claim;
mod keepalive;
mod list;

use std::net::IpAddr;
use std::time::Duration;

use hickory_proto::rr::Name;
use thiserror::Error;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::backoff::Retry;
use crate::etcd::{EtcdConfig, EtcdError};
use crate::key::{parse_key, KeyError};
use crate::logging::clip;
use check::Gate;
use claim::{claim, revoke};
use keepalive::{keep, Link};
pub use list::{list, Listing};

/// Default lease TTL in seconds: a crashed service disappears within this (plus etcd's own
/// expiry check, about half a second).
pub const DEFAULT_LEASE_TTL: i64 = 5;
/// Shortest lease TTL: etcd raises shorter leases to about 2 s anyway (1.5 election timeouts),
/// and below it a keep-alive moved to another member (see [`keepalive`]) could come too late.
pub const MIN_LEASE_TTL: i64 = 2;
/// Keep-alives go out this many times per lease TTL, so that one lost keep-alive never lets
/// the lease lapse.
const KEEPALIVES_PER_TTL: u64 = 3;
/// Shortest keep-alive interval, whatever the TTL.
const MIN_KEEPALIVE_INTERVAL: Duration = Duration::from_millis(100);

/// What to register.
#[derive(Debug, Clone)]
pub struct RegisterSpec {
    /// Key prefix, for example `services/`.
    pub prefix: String,
    /// Service name (`<service>`).
    pub name: String,
    /// Instance label, for the several-instances form.
    pub instance: Option<String>,
    /// Address to publish.
    pub ip: IpAddr,
    /// Port, which enables SRV.
    pub port: Option<u16>,
    /// Lease TTL in seconds.
    pub ttl: i64,
    /// TXT strings (`k=v`).
    pub txt: Vec<String>,
    /// Tags (DNS labels).
    pub tags: Vec<String>,
    /// SRV weight, shaping A/AAAA answers too.
    pub weight: Option<u16>,
    /// Failure domain, for locality.
    pub zone: Option<String>,
}

/// Why registering failed.
#[derive(Debug, Error)]
pub enum RegisterError {
    /// The TTL is below [`MIN_LEASE_TTL`].
    #[error(
        "--ttl must be at least {MIN_LEASE_TTL} seconds, got {0}: etcd raises shorter leases, and a \
         keep-alive moved to another member when one stops answering must fit within the TTL"
    )]
    Ttl(i64),
    /// The name or instance would make a key the server skips.
    #[error("cannot register {key}: {source}")]
    Key {
        /// The etcd key.
        key: String,
        /// What is wrong with it.
        source: KeyError,
    },
    /// A tag no tag lookup could find.
    #[error(
        "--tag {0:?} is not a DNS label (letters, digits and '-', at most 62; not tcp or udp): \
         no _<name>._<tag> lookup would find it"
    )]
    Tag(String),
    /// Another live lease holds the key.
    #[error(
        "{key} is already registered by another live lease ({lease:x}, {ttl} s left): \
         another `register` runs for this name; stop it or choose another --instance"
    )]
    Conflict {
        /// The key.
        key: String,
        /// The holder's lease ID.
        lease: i64,
        /// Seconds left on the holder's lease.
        ttl: i64,
    },
    /// etcd could not be reached or refused a request.
    #[error(transparent)]
    Etcd(#[from] EtcdError),
    /// The lease expired or was revoked under us.
    #[error("lease {0:x} lost")]
    LeaseLost(i64),
    /// The key was deleted or overwritten by someone else.
    #[error("key {0} was deleted or overwritten")]
    KeyChanged(String),
    /// Another claimer changed the key between our read and our write.
    #[error("key {0} changed while claiming it")]
    Raced(String),
}

impl RegisterError {
    /// Errors that retrying cannot fix: bad input, a key another live lease holds, and etcd
    /// refusing us (wrong credentials, missing permission, a certificate that does not
    /// verify; see [`EtcdError::is_permanent`]).
    pub fn is_fatal(&self) -> bool {
        match self {
            Self::Ttl(_) | Self::Key { .. } | Self::Tag(_) | Self::Conflict { .. } => true,
            Self::Etcd(error) => error.is_permanent(),
            Self::LeaseLost(_) | Self::KeyChanged(_) | Self::Raced(_) => false,
        }
    }
}

impl RegisterSpec {
    /// The etcd key: `P<name>` or `P<name>/<instance>`.
    pub fn key(&self) -> String {
        match &self.instance {
            Some(instance) => format!("{}{}/{}", self.prefix, self.name, instance),
            None => format!("{}{}", self.prefix, self.name),
        }
    }

    /// The etcd value, in the original `{"IP":…}` format plus the optional fields.
    pub fn value(&self) -> String {
        let mut value = serde_json::Map::new();
        value.insert("IP".into(), self.ip.to_string().into());
        if let Some(port) = self.port {
            value.insert("port".into(), port.into());
        }
        if let Some(weight) = self.weight {
            value.insert("weight".into(), weight.into());
        }
        if !self.txt.is_empty() {
            value.insert("txt".into(), self.txt.clone().into());
        }
        if !self.tags.is_empty() {
            value.insert("tags".into(), self.tags.clone().into());
        }
        if let Some(zone) = &self.zone {
            value.insert("zone".into(), zone.clone().into());
        }
        serde_json::Value::Object(value).to_string()
    }

    /// Checks the key against the same rules the server applies, so a typo fails here and not
    /// silently on the server.
    pub fn validate(&self) -> Result<(), RegisterError> {
        if self.ttl < MIN_LEASE_TTL {
            return Err(RegisterError::Ttl(self.ttl));
        }
        for tag in &self.tags {
            let mut registration =
                crate::service::Registration::new(crate::service::Target::Addr(self.ip));
            registration.tags = vec![tag.as_str().into()];
            if registration.dns_tags().is_empty() {
                return Err(RegisterError::Tag(tag.clone()));
            }
        }
        let key = self.key();
        match parse_key(&self.prefix, key.as_bytes(), &Name::root()) {
            Ok(_) => Ok(()),
            Err(source) => Err(RegisterError::Key { key, source }),
        }
    }

    fn keepalive_interval(&self) -> Duration {
        (Duration::from_secs(self.ttl.max(1) as u64) / KEEPALIVES_PER_TTL as u32)
            .max(MIN_KEEPALIVE_INTERVAL)
    }
}

/// The host's first non-loopback address (IPv4 preferred), the default for `--ip`.
pub fn default_ip() -> Option<IpAddr> {
    let addrs: Vec<IpAddr> = if_addrs::get_if_addrs()
        .ok()?
        .into_iter()
        .map(|iface| iface.ip())
        .filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
        .collect();
    let link_local_v6 =
        |ip: &IpAddr| matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80);
    addrs
        .iter()
        .find(|ip| ip.is_ipv4())
        .or_else(|| addrs.iter().find(|ip| !link_local_v6(ip)))
        .copied()
}

/// How a session ended without an error.
#[derive(Debug)]
enum Ended {
    /// Shutdown: the lease is revoked (or never granted); stop.
    Shutdown,
    /// The health check failed: the lease is revoked; register again once it passes.
    CheckFailing,
}

/// Keeps `spec` registered until `shutdown`, then revokes the lease; while `gate` is closed
/// (the health check fails) it holds no lease and no key. Returns an error only for what
/// retrying cannot fix.
pub async fn run(
    etcd: &EtcdConfig,
    spec: &RegisterSpec,
    mut gate: Gate,
    shutdown: CancellationToken,
) -> Result<(), RegisterError> {
    spec.validate()?;
    let mut retry = Retry::default();
    // Leases this process granted earlier: a key still bound to one of them is ours to take back.
    let mut ours: Vec<i64> = Vec::new();
    // One endpoint per session, the next one after any failure: a frozen member that still
    // holds its connections open is left, not picked again by the client's balancer.
    let mut endpoint = 0;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            () = gate.passing() => {}
        }
        let ended = session(
            etcd,
            &mut endpoint,
            spec,
            &mut gate,
            &shutdown,
            &mut ours,
            &mut retry,
        )
        .await;
        let error = match ended {
            Ok(Ended::Shutdown) => return Ok(()),
            Ok(Ended::CheckFailing) => continue,
            Err(error) => error,
        };
        endpoint += 1;
        // etcd refusing us after a first registration (a changed password, a revoked role) is
        // logged as an error and retried; before it, it ends the program.
        let etcd_refused = matches!(error, RegisterError::Etcd(_));
        if error.is_fatal() && !(etcd_refused && retry.has_succeeded()) {
            return Err(error);
        }
        let (delay, report) = retry.failed();
        if let Some(what) = report.line("registration interrupted") {
            let (key, retry_in_ms) = (spec.key(), delay.as_millis() as u64);
            if error.is_fatal() {
                error!(key = %clip(&key), %error, retry_in_ms, "{what}; registering again");
            } else {
                warn!(key = %clip(&key), %error, retry_in_ms, "{what}; registering again");
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// One lease's life: grant and claim through member `endpoint`, keep alive through whichever
/// member answers (`endpoint` follows it), until shutdown or a failing check revokes it.
async fn session(
    etcd: &EtcdConfig,
    endpoint: &mut usize,
    spec: &RegisterSpec,
    gate: &mut Gate,
    shutdown: &CancellationToken,
    ours: &mut Vec<i64>,
    retry: &mut Retry,
) -> Result<Ended, RegisterError> {
    let key = spec.key();
    let one = etcd.only(*endpoint);
    let mut client = tokio::select! {
        _ = shutdown.cancelled() => return Ok(Ended::Shutdown),
        client = one.connect() => client?,
    };
    let lease = one.timed(client.lease_grant(spec.ttl, None)).await?.id();
    ours.push(lease);
    let claimed = tokio::select! {
        _ = shutdown.cancelled() => Err(None),
        claimed = claim(&mut client, &one, spec, lease, ours) => claimed.map_err(Some),
    };
    let revision = match claimed {
        Ok(revision) => revision,
        Err(error) => {
            revoke(&mut client, &one, lease).await;
            ours.retain(|l| *l != lease);
            return error.map_or(Ok(Ended::Shutdown), Err);
        }
    };
    // Older leases of ours no longer hold the key: let them go.
    for old in ours
        .iter()
        .copied()
        .filter(|l| *l != lease)
        .collect::<Vec<_>>()
    {
        revoke(&mut client, &one, old).await;
    }
    ours.retain(|l| *l == lease);
    info!(key = %clip(&key), value = %clip(&spec.value()), lease = format!("{lease:x}"), ttl = spec.ttl,
        "registered");
    if let Some(outage) = retry.succeeded() {
        info!(
            attempts = outage.attempts,
            over_s = outage.over.as_secs(),
            "etcd reachable again"
        );
    }
    let link = Link::open(&one, *endpoint, client, lease, &key, revision).await?;
    let (last, ended) = keep(etcd, spec, link, lease, revision, gate, shutdown, ours).await;
    *endpoint = last;
    ended
}
