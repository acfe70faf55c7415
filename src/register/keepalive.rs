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

/// Longest wait between two attempts through every member while none acknowledges.
const HEDGE_BACKOFF_MAX: Duration = Duration::from_secs(5);

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
        // Opening the stream renews the lease once and waits for etcd's answer.
        let (keeper, alive) = match etcd.timed(client.lease_keep_alive(lease)).await {
            Ok(stream) => stream,
            Err(error) if lease_not_found(&error) => return Err(RegisterError::LeaseLost(lease)),
            Err(error) => return Err(error.into()),
        };
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

    /// Connects to member `endpoint` and opens a link there (which renews `lease`).
    async fn renewed(
        etcd: &EtcdConfig,
        endpoint: usize,
        lease: i64,
        key: &str,
        revision: i64,
    ) -> Result<Self, RegisterError> {
        let one = etcd.only(endpoint);
        let client = one.connect().await?;
        Self::open(&one, endpoint, client, lease, key, revision).await
    }
}

/// True when etcd answered a keep-alive with a TTL of 0: the lease does not exist (expired,
/// revoked, or etcd was wiped). etcd-client reports that as an error.
fn lease_not_found(error: &EtcdError) -> bool {
    matches!(error, EtcdError::Client { error: etcd_client::Error::LeaseKeepAliveError(why), .. }
        if why.contains("lease not found"))
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
    // etcd saying the lease is gone is an answer, not a failure: it ends the race too.
    let attempts = attempts.into_iter().map(|attempt| {
        Box::pin(async move {
            match attempt.await {
                Err(RegisterError::LeaseLost(lease)) => Ok(Err(RegisterError::LeaseLost(lease))),
                other => other.map(Ok),
            }
        })
    });
    match select_ok(attempts).await {
        Ok((found, _)) => found,
        Err(error) => Err(error),
    }
}

/// Keeps `lease` (which holds the key since `revision`) alive until shutdown, a failing check,
/// or its loss; `link` moves to whichever member acknowledges (see the module doc). A member
/// that fails a request (`no leader`, a closed stream) is treated as one that does not answer:
/// only etcd saying the lease is gone, or a TTL without any acknowledgement, ends the lease.
#[allow(clippy::too_many_arguments)]
pub(super) async fn keep(
    etcd: &EtcdConfig,
    spec: &RegisterSpec,
    mut link: Link,
    lease: i64,
    mut revision: i64,
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
    // The member failed a request: its streams are not read again; the lease moves at once.
    let mut broken: Option<EtcdError> = None;
    // Whether `unacked_since` was already advanced for the break.
    let mut hedging_now = false;
    // Hedges in a row that no member acknowledged (logged at 1, 2, 4, 8, …).
    let mut failed_hedges = 0u32;
    loop {
        if broken.is_some() && !hedging_now {
            // Move at once, then every `ack_timeout` while no member acknowledges.
            unacked_since = Some(
                Instant::now()
                    .checked_sub(ack_timeout)
                    .unwrap_or_else(Instant::now),
            );
            hedging_now = true;
        }
        let overdue =
            unacked_since.map(|since| tokio::time::Instant::from_std(since + ack_timeout));
        let one = etcd.only(link.endpoint);
        tokio::select! {
            _ = shutdown.cancelled() => {
                revoke(&mut link.client, &one, lease).await;
                info!(key = %clip(&key), "lease revoked; unregistered");
                return (link.endpoint, Ok(Ended::Shutdown));
            }
            () = gate.failing() => {
                // A lease whose revocation etcd did not confirm stays ours: if it still holds
                // the key when the check passes again, the claim takes the key back from it.
                if revoke(&mut link.client, &one, lease).await {
                    ours.retain(|l| *l != lease);
                }
                info!(key = %clip(&key), "lease revoked; unregistered until the health check passes");
                return (link.endpoint, Ok(Ended::CheckFailing));
            }
            _ = tick.tick() => {
                unacked_since.get_or_insert_with(Instant::now);
                if broken.is_none() {
                    if let Err(error) = one.timed(link.keeper.keep_alive()).await {
                        broken = Some(error);
                    }
                }
            }
            () = sleep_until(overdue) => {
                let silent = last_ack.elapsed();
                let moved = tokio::select! {
                    _ = shutdown.cancelled() => continue,
                    moved = hedge(etcd, link.endpoint, lease, &key, revision, ack_timeout) => moved,
                };
                match moved {
                    Ok(next) => {
                        let why = broken.take().map_or("it acknowledged none".to_string(), |e| e.to_string());
                        info!(key = %clip(&key), from = %one.endpoints_text(),
                            to = %etcd.only(next.endpoint).endpoints_text(), silent_ms = silent.as_millis() as u64,
                            "keep-alive moved to another etcd member: {why}");
                        link = next;
                        hedging_now = false;
                        failed_hedges = 0u32;
                        last_ack = Instant::now();
                        unacked_since = None;
                    }
                    Err(RegisterError::LeaseLost(lease)) => {
                        return (link.endpoint, Err(RegisterError::LeaseLost(lease)));
                    }
                    Err(error) => {
                        failed_hedges += 1;
                        if failed_hedges.is_power_of_two() {
                            warn!(key = %clip(&key), %error, silent_ms = silent.as_millis() as u64,
                                attempts = failed_hedges,
                                "no etcd member acknowledged a keep-alive; trying again");
                        }
                        // Every `ack_timeout` for two TTLs (an election can take that long,
                        // and a new leader extends every lease), then more slowly.
                        let wait = if silent > 2 * lease_ttl {
                            (silent / 4).min(HEDGE_BACKOFF_MAX)
                        } else {
                            Duration::ZERO
                        };
                        unacked_since = Some(Instant::now() + wait);
                    }
                }
            }
            response = link.alive.message(), if broken.is_none() => match response {
                Ok(Some(r)) if r.ttl() > 0 => {
                    last_ack = Instant::now();
                    unacked_since = None;
                }
                Ok(Some(_)) => return (link.endpoint, Err(RegisterError::LeaseLost(lease))),
                Ok(None) => {
                    let endpoints = one.endpoints_text();
                    broken = Some(EtcdError::Closed { endpoints, what: "lease keep-alive stream" });
                }
                Err(e) => broken = Some(one.client_error(e)),
            },
            response = link.watch.message(), if broken.is_none() => {
                match watched(&mut link, &one, &key, lease, response).await {
                    Ok(Some(now)) => revision = revision.max(now),
                    Ok(None) => {}
                    Err(Watched::Changed) => {
                        return (link.endpoint, Err(RegisterError::KeyChanged(key.clone())));
                    }
                    Err(Watched::Failed(error)) => broken = Some(error),
                }
            }
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

/// Why the watch of the key ended the link.
enum Watched {
    /// The key was deleted or put by another lease.
    Changed,
    /// The member failed.
    Failed(EtcdError),
}

/// Handles one message of the watch of the key: deleted or put by another lease is a change;
/// a watch that ends (cancelled by a member without a leader, closed, compacted) is checked by
/// reading the key, and watched again from there when it is still ours. Returns the revision
/// the key is known unchanged at, if it moved.
async fn watched(
    link: &mut Link,
    etcd: &EtcdConfig,
    key: &str,
    lease: i64,
    response: Result<Option<etcd_client::WatchResponse>, etcd_client::Error>,
) -> Result<Option<i64>, Watched> {
    let response = response.map_err(|e| Watched::Failed(etcd.client_error(e)))?;
    if let Some(response) = response.as_ref().filter(|r| !r.canceled()) {
        let changed = response
            .events()
            .iter()
            .any(|event| match event.event_type() {
                EventType::Delete => true,
                EventType::Put => event.kv().is_some_and(|kv| kv.lease() != lease),
            });
        return if changed {
            Err(Watched::Changed)
        } else {
            Ok(None)
        };
    }
    let read = etcd
        .timed(link.client.get(key, None))
        .await
        .map_err(Watched::Failed)?;
    if read.kvs().first().is_none_or(|kv| kv.lease() != lease) {
        return Err(Watched::Changed);
    }
    let revision = read.header().map_or(0, |h| h.revision());
    let options = WatchOptions::new().with_start_revision(revision + 1);
    link.watch = etcd
        .timed(link.client.watch(key.as_bytes(), Some(options)))
        .await
        .map_err(Watched::Failed)?;
    Ok(Some(revision))
}
