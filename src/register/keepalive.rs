//! Keeping one lease alive through whichever member answers.
//!
//! A lease belongs to the cluster, not to the member it was granted through: any member that
//! reaches the leader can renew it. So a keep-alive that one member does not acknowledge
//! within [`ack_timeout`] is sent again, at once and in parallel, through every other member
//! over new connections, and the lease moves to the first one that acknowledges it. The key is
//! never rewritten and the name never lapses while any member can reach a quorum: a member cut
//! off from its peers, a frozen one, or a healthy one whose forwarded keep-alives wait on a
//! cut-off leader is left about `TTL/3 + 0.5 s` after the last acknowledgement, while the
//! lease has at least a third of its TTL left.

use std::time::{Duration, Instant};

use etcd_client::{
    Client, EventType, LeaseKeepAliveStream, LeaseKeeper, WatchOptions, WatchStream,
};
use futures_util::future::{select_ok, BoxFuture};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::check::Gate;
use super::claim::revoke;
use super::{Ended, RegisterError, RegisterSpec};
use crate::etcd::{EtcdConfig, EtcdError};
use crate::logging::clip;

/// Longest wait for a keep-alive's acknowledgement before it is sent through the other members.
const ACK_TIMEOUT_MAX: Duration = Duration::from_millis(500);

/// How long a keep-alive may go unacknowledged before it is sent through the other members:
/// half the keep-alive interval, at most [`ACK_TIMEOUT_MAX`].
pub(super) fn ack_timeout(interval: Duration) -> Duration {
    (interval / 2).min(ACK_TIMEOUT_MAX)
}

/// The lease's tie to one member: its connection, keep-alive stream and a watch of the key.
pub(super) struct Link {
    /// Which of the `--etcd` endpoints.
    pub endpoint: usize,
    /// The connection (for the revocation at shutdown).
    pub client: Client,
    keeper: LeaseKeeper,
    alive: LeaseKeepAliveStream,
    watch: WatchStream,
}

impl Link {
    /// Ties `lease` to the member behind `client`: a keep-alive stream and a watch of `key`
    /// from `revision + 1` (the claim's revision).
    pub(super) async fn open(
        etcd: &EtcdConfig,
        endpoint: usize,
        mut client: Client,
        lease: i64,
        key: &str,
        revision: i64,
    ) -> Result<Self, RegisterError> {
        let (keeper, alive) = etcd.timed(client.lease_keep_alive(lease)).await?;
        let options = WatchOptions::new().with_start_revision(revision + 1);
        let watch = etcd
            .timed(client.watch(key.as_bytes(), Some(options)))
            .await?;
        Ok(Self {
            endpoint,
            client,
            keeper,
            alive,
            watch,
        })
    }

    /// Connects to member `endpoint`, renews `lease` through it and opens a link there.
    async fn renewed(
        etcd: &EtcdConfig,
        endpoint: usize,
        lease: i64,
        key: &str,
        revision: i64,
    ) -> Result<Self, RegisterError> {
        let one = etcd.only(endpoint);
        let client = one.connect().await?;
        let mut link = Self::open(&one, endpoint, client, lease, key, revision).await?;
        one.timed(link.keeper.keep_alive()).await?;
        match link.alive.message().await {
            Ok(Some(response)) if response.ttl() > 0 => Ok(link),
            Ok(_) => Err(RegisterError::LeaseLost(lease)),
            Err(error) => Err(RegisterError::Etcd(one.client_error(error))),
        }
    }
}

/// Renews `lease` through every endpoint but `current` at once (over a new connection to the
/// same one when it is the only endpoint): the first link whose keep-alive is acknowledged
/// within `within`.
async fn hedge(
    etcd: &EtcdConfig,
    current: usize,
    lease: i64,
    key: &str,
    revision: i64,
    within: Duration,
) -> Result<Link, RegisterError> {
    let count = etcd.endpoints.len().max(1);
    let others: Vec<usize> = (1..count.max(2))
        .map(|step| (current + step) % count)
        .collect();
    let attempts: Vec<BoxFuture<'_, Result<Link, RegisterError>>> = others
        .into_iter()
        .map(|endpoint| {
            let attempt = Link::renewed(etcd, endpoint, lease, key, revision);
            Box::pin(async move {
                match tokio::time::timeout(within, attempt).await {
                    Ok(result) => result,
                    Err(_) => Err(RegisterError::Etcd(EtcdError::Timeout {
                        endpoints: etcd.only(endpoint).endpoints_text(),
                    })),
                }
            }) as BoxFuture<'_, _>
        })
        .collect();
    select_ok(attempts).await.map(|(link, _)| link)
}

/// Keeps `lease` (which holds the key since `revision`) alive until shutdown, a failing check,
/// or its loss; `link` moves to whichever member acknowledges (see the module doc).
#[allow(clippy::too_many_arguments)]
pub(super) async fn keep(
    etcd: &EtcdConfig,
    spec: &RegisterSpec,
    mut link: Link,
    lease: i64,
    revision: i64,
    gate: &mut Gate,
    shutdown: &CancellationToken,
    ours: &mut Vec<i64>,
) -> (usize, Result<Ended, RegisterError>) {
    let key = spec.key();
    let interval = spec.keepalive_interval();
    let ack_timeout = ack_timeout(interval);
    let lease_ttl = Duration::from_secs(spec.ttl as u64);
    let mut tick = tokio::time::interval(interval);
    let mut last_ack = Instant::now();
    // When the oldest keep-alive still unacknowledged was sent (or the last hedge failed).
    let mut unacked_since: Option<Instant> = None;
    loop {
        let overdue =
            unacked_since.map(|since| tokio::time::Instant::from_std(since + ack_timeout));
        let result: Result<(), RegisterError> = tokio::select! {
            _ = shutdown.cancelled() => {
                let one = etcd.only(link.endpoint);
                revoke(&mut link.client, &one, lease).await;
                info!(key = %clip(&key), "lease revoked; unregistered");
                return (link.endpoint, Ok(Ended::Shutdown));
            }
            () = gate.failing() => {
                // A lease whose revocation etcd did not confirm stays ours: if it still holds
                // the key when the check passes again, the claim takes the key back from it.
                let one = etcd.only(link.endpoint);
                if revoke(&mut link.client, &one, lease).await {
                    ours.retain(|l| *l != lease);
                }
                info!(key = %clip(&key), "lease revoked; unregistered until the health check passes");
                return (link.endpoint, Ok(Ended::CheckFailing));
            }
            _ = tick.tick() => {
                if last_ack.elapsed() > lease_ttl {
                    Err(RegisterError::LeaseLost(lease))
                } else {
                    unacked_since.get_or_insert_with(Instant::now);
                    etcd.only(link.endpoint).timed(link.keeper.keep_alive()).await.map_err(Into::into)
                }
            }
            () = sleep_until(overdue) => {
                let silent = last_ack.elapsed();
                let within = ack_timeout.min(lease_ttl.saturating_sub(silent));
                let moved = tokio::select! {
                    _ = shutdown.cancelled() => continue,
                    moved = hedge(etcd, link.endpoint, lease, &key, revision, within) => moved,
                };
                match moved {
                    Ok(next) => {
                        info!(key = %clip(&key), from = %etcd.only(link.endpoint).endpoints_text(),
                            to = %etcd.only(next.endpoint).endpoints_text(), silent_ms = silent.as_millis() as u64,
                            "keep-alive moved to another etcd member: the last one acknowledged none");
                        link = next;
                        last_ack = Instant::now();
                        unacked_since = None;
                        Ok(())
                    }
                    Err(RegisterError::LeaseLost(lease)) => Err(RegisterError::LeaseLost(lease)),
                    Err(error) => {
                        warn!(key = %clip(&key), %error, silent_ms = silent.as_millis() as u64,
                            "no etcd member acknowledged a keep-alive; trying again");
                        unacked_since = Some(Instant::now());
                        Ok(())
                    }
                }
            }
            response = link.alive.message() => {
                match response {
                    Ok(Some(r)) if r.ttl() > 0 => {
                        last_ack = Instant::now();
                        unacked_since = None;
                        Ok(())
                    }
                    Ok(_) => Err(RegisterError::LeaseLost(lease)),
                    Err(e) => Err(RegisterError::Etcd(etcd.only(link.endpoint).client_error(e))),
                }
            }
            response = link.watch.message() => key_unchanged(&key, lease, response)
                .map_err(|e| e.in_context(etcd, link.endpoint)),
        };
        if let Err(error) = result {
            return (link.endpoint, Err(error));
        }
    }
}

/// Waits until `at`, or forever without one.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A watch error, before it is named after its member.
enum WatchFailure {
    Client(etcd_client::Error),
    Register(RegisterError),
}

impl WatchFailure {
    fn in_context(self, etcd: &EtcdConfig, endpoint: usize) -> RegisterError {
        match self {
            Self::Client(error) => RegisterError::Etcd(etcd.only(endpoint).client_error(error)),
            Self::Register(error) => error,
        }
    }
}

/// Fails when the watch of the key shows it deleted or put by another lease (or ended).
fn key_unchanged(
    key: &str,
    lease: i64,
    response: Result<Option<etcd_client::WatchResponse>, etcd_client::Error>,
) -> Result<(), WatchFailure> {
    let changed = || WatchFailure::Register(RegisterError::KeyChanged(key.to_string()));
    let response = response
        .map_err(WatchFailure::Client)?
        .ok_or_else(changed)?;
    let changed_now = response.canceled()
        || response
            .events()
            .iter()
            .any(|event| match event.event_type() {
                EventType::Delete => true,
                EventType::Put => event.kv().is_some_and(|kv| kv.lease() != lease),
            });
    if changed_now {
        return Err(changed());
    }
    Ok(())
}
