//! Proof that the watched member is part of etcd's quorum, and that the table is current.
//!
//! A watch alone proves nothing: a member cut off from its peers keeps its connections, keeps
//! answering progress requests from its own stale state and only cancels the watch (`no
//! leader`) seconds after losing the leader. So every [`PROBE_INTERVAL`] the watcher sends a
//! linearizable read of one key through the same member. etcd answers it only after the leader
//! confirmed, with a quorum of heartbeats, that it still leads: its revision is then at least
//! every revision committed before the read was sent. Once the watch has delivered that
//! revision, the table was current at the read's sending time: that instant is what
//! [`Table::confirm_at`] records, so the table's age (the metric, `/ready`, `--max-stale`, the
//! log) counts only quorum-confirmed freshness.
//!
//! A member that answers no probe for [`PROBE_TIMEOUT`] while its watch brings no newer
//! revision is taken for cut off (partitioned, leaderless, frozen) and left.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use etcd_client::{Client, GetOptions, KvClient};

use tokio::runtime::Handle;

use super::WatchError;
use crate::etcd::{EtcdConfig, EtcdError};
use crate::table::Table;

/// How often the watched member is asked to prove it is part of the quorum.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(500);
/// A probe unanswered this long, with no newer revision from the watch meanwhile, means the
/// member is cut off. With [`PROBE_INTERVAL`] a cut-off member is left 1–1.5 s after the cut,
/// about when it notices it lost its leader; a healthy member answers in about a millisecond.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// A linearizable read in flight: its revision, or etcd's error.
type Probe = Pin<Box<dyn Future<Output = Result<i64, etcd_client::Error>> + Send>>;

/// A probe in flight.
struct Inflight {
    /// When it was sent.
    sent: Instant,
    /// When to check next whether the member is cut off.
    check_at: Instant,
    /// The watch's revision at the last check (or the sending).
    seen_then: i64,
    /// The read.
    probe: Probe,
}

/// The quorum probes of one watch session.
pub(super) struct Quorum {
    /// The member's KV service (a handle on the session's connection).
    kv: KvClient,
    /// The key read (count only): any key will do, this one is in a watched range.
    key: Vec<u8>,
    /// The probe in flight.
    inflight: Option<Inflight>,
    /// The proofs and what the watch delivered.
    freshness: Freshness,
}

/// How long a member may take to connect and prove a quorum when a session starts: long
/// enough to ride out an election on a healthy member.
pub const PROVE_WITHIN: Duration = Duration::from_secs(2);
/// Head start of each endpoint over the next in [`connect_proven`]'s race.
const HEAD_START: Duration = Duration::from_millis(100);
/// Pause between two proofs of a member that answered `no leader` during the race.
const LEADERLESS_PAUSE: Duration = Duration::from_millis(100);

/// Connects to the first member that proves it speaks for a quorum (a linearizable read of
/// `key`), racing them: endpoint `first` (mod their count) starts at once, each next one
/// [`HEAD_START`] later, and `failed` (the member of the session that just ended) last, if
/// there are others. A member answering `no leader` is asked again until [`PROVE_WITHIN`]:
/// an election ends. The connections do their I/O on `io`. Returns the member's index, its
/// configuration and client; or, when none proves it, the last failure.
pub(super) async fn connect_proven(
    io: &Handle,
    etcd: &EtcdConfig,
    first: usize,
    failed: Option<usize>,
    key: &[u8],
) -> Result<(usize, EtcdConfig, Client), WatchError> {
    let count = etcd.endpoints.len().max(1);
    let mut order: Vec<usize> = (0..count).map(|k| (first + k) % count).collect();
    if let Some(failed) = failed.filter(|_| count > 1) {
        order.retain(|&i| i != failed);
        order.push(failed % count);
    }
    let racers = order.into_iter().enumerate().map(|(place, index)| {
        let one = etcd.only(index);
        let io = io.clone();
        let key = key.to_vec();
        Box::pin(async move {
            tokio::time::sleep(HEAD_START * place as u32).await;
            let started = Instant::now();
            let connect = {
                let one = one.clone();
                io.spawn(async move { one.connect().await })
            };
            let proved = async {
                let client = connect.await.map_err(EtcdError::from)??;
                loop {
                    match prove(&one, &client, &key).await {
                        Err(WatchError::Etcd(e)) if e.is_leaderless() => {
                            tokio::time::sleep(LEADERLESS_PAUSE).await;
                        }
                        Err(error) => return Err(error),
                        Ok(()) => return Ok((index, one.clone(), client)),
                    }
                }
            };
            match tokio::time::timeout(PROVE_WITHIN, proved).await {
                Ok(result) => result,
                Err(_) => Err(WatchError::CutOff(started.elapsed())),
            }
        })
    });
    futures_util::future::select_ok(racers)
        .await
        .map(|(chosen, _)| chosen)
}

/// Proves that the member behind `client` speaks for a quorum: a linearizable read of `key`
/// answered (with require-leader, a member without a leader refuses it at once).
async fn prove(etcd: &EtcdConfig, client: &Client, key: &[u8]) -> Result<(), WatchError> {
    let mut kv = client.kv_client();
    match kv.get(key, Some(GetOptions::new().with_count_only())).await {
        Ok(_) => Ok(()),
        Err(error) => Err(WatchError::Etcd(etcd.client_error(error))),
    }
}

impl Quorum {
    /// Probes through `kv`, reading `key`; the table holds every event up to `revision`.
    pub(super) fn new(kv: KvClient, key: &[u8], revision: i64) -> Self {
        Self {
            kv,
            key: key.to_vec(),
            inflight: None,
            freshness: Freshness {
                seen: revision,
                pending: None,
            },
        }
    }

    /// At each tick: sends a probe unless one is in flight.
    pub(super) fn tick(&mut self) {
        if self.inflight.is_some() {
            return;
        }
        let mut kv = self.kv.clone();
        let key = self.key.clone();
        let probe = async move {
            let options = GetOptions::new().with_count_only();
            let response = kv.get(key, Some(options)).await?;
            Ok(response.header().map_or(0, |h| h.revision()))
        };
        let sent = Instant::now();
        self.inflight = Some(Inflight {
            sent,
            check_at: sent + PROBE_TIMEOUT,
            seen_then: self.freshness.seen,
            probe: Box::pin(probe),
        });
    }

    /// When the probe in flight is next checked for an answer (see [`Quorum::overdue`]).
    pub(super) fn check_at(&self) -> Option<tokio::time::Instant> {
        self.inflight
            .as_ref()
            .map(|probe| tokio::time::Instant::from_std(probe.check_at))
    }

    /// At [`Quorum::check_at`]: how long the probe in flight has waited, if the member is cut
    /// off. Events with newer revisions since the probe was sent prove the member still
    /// follows a leader (it is only slow): then the next check is a [`PROBE_TIMEOUT`] later.
    pub(super) fn overdue(&mut self) -> Option<Duration> {
        let seen = self.freshness.seen;
        let probe = self.inflight.as_mut()?;
        if seen > probe.seen_then {
            probe.seen_then = seen;
            probe.check_at = Instant::now() + PROBE_TIMEOUT;
            return None;
        }
        Some(probe.sent.elapsed())
    }

    /// Waits for the probe in flight (forever if there is none): its sending time and result.
    pub(super) async fn answered(&mut self) -> (Instant, Result<i64, etcd_client::Error>) {
        let Some(inflight) = &mut self.inflight else {
            return std::future::pending().await;
        };
        let sent = inflight.sent;
        let result = (&mut inflight.probe).await;
        self.inflight = None;
        (sent, result)
    }

    /// A probe sent at `sent` returned `revision`: the table is confirmed as of `sent` once
    /// the watch has delivered that revision.
    pub(super) fn proved(&mut self, table: &Table, sent: Instant, revision: i64) {
        if let Some(at) = self.freshness.proved(sent, revision) {
            table.confirm_at(at);
        }
    }

    /// The watch delivered (and the table holds) every event up to `revision`.
    pub(super) fn delivered(&mut self, table: &Table, revision: i64) {
        if let Some(at) = self.freshness.delivered(revision) {
            table.confirm_at(at);
        }
    }
}

/// Which quorum proofs confirm the table, and as of when: a proof (a read sent at some instant
/// that returned some revision) confirms it once the watch has delivered that revision.
#[derive(Debug, Default)]
struct Freshness {
    /// Every event up to this revision is in the table.
    seen: i64,
    /// The newest proof the watch had not caught up with yet: its revision and sending time.
    pending: Option<(i64, Instant)>,
}

impl Freshness {
    /// A read sent at `sent` returned `revision`: the instant the table is confirmed as of,
    /// now or (kept pending) once the watch delivers `revision`.
    fn proved(&mut self, sent: Instant, revision: i64) -> Option<Instant> {
        if self.seen >= revision {
            self.pending = None;
            return Some(sent);
        }
        if self.pending.is_none_or(|(_, at)| at < sent) {
            self.pending = Some((revision, sent));
        }
        None
    }

    /// The watch delivered every event up to `revision`: the instant a pending proof now
    /// confirms, if any.
    fn delivered(&mut self, revision: i64) -> Option<Instant> {
        self.seen = self.seen.max(revision);
        let (needed, sent) = self.pending?;
        (self.seen >= needed).then(|| {
            self.pending = None;
            sent
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_confirms_the_table_only_once_the_watch_has_its_revision() {
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let mut freshness = Freshness {
            seen: 10,
            pending: None,
        };
        // The watch is current: confirmed as of the read's sending.
        assert_eq!(freshness.proved(at(0), 10), Some(at(0)));
        // etcd committed 12 before the read sent at 500 ms: not until the watch delivers it.
        assert_eq!(freshness.proved(at(500), 12), None);
        assert_eq!(freshness.delivered(11), None);
        assert_eq!(freshness.delivered(12), Some(at(500)));
        assert_eq!(freshness.delivered(13), None, "a proof confirms once");
        // A newer proof replaces an older pending one; an older one never replaces it.
        assert_eq!(freshness.proved(at(1_000), 20), None);
        assert_eq!(freshness.proved(at(900), 19), None);
        assert_eq!(freshness.delivered(20), Some(at(1_000)));
    }

    #[test]
    fn a_cut_off_member_confirms_nothing() {
        // Its progress notifications repeat its stale revision; the proofs never return.
        let mut freshness = Freshness {
            seen: 40,
            pending: None,
        };
        for _ in 0..10 {
            assert_eq!(freshness.delivered(40), None);
        }
    }
}
