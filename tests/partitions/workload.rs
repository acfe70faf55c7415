//! The workload of the fault suite: a writer that changes names in etcd and records every
//! version (see [`history`](super::history)), and a recorder that asks every replica about
//! every name every [`QUERY_EVERY`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etcd_client::{Client, Compare, CompareOp, PutOptions, Txn, TxnOp};
use etcd_dns::etcd::EtcdConfig;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use tokio_util::sync::CancellationToken;

use super::common::{addresses, try_query};
use super::history::{Observation, Outcome, Value, Version};

/// How often each replica is asked about each name.
pub const QUERY_EVERY: Duration = Duration::from_millis(10);
/// How long a query may wait for its reply.
const QUERY_TIMEOUT: Duration = Duration::from_millis(500);
/// How often the writer changes a name (one name after the other).
const WRITE_EVERY: Duration = Duration::from_millis(40);
/// Longest wait for one etcd request of the writer before it checks what happened.
const WRITE_TIMEOUT: Duration = Duration::from_secs(1);
/// Lease TTL of the writer's names (they are revoked or deleted long before).
const WRITER_LEASE_TTL: i64 = 60;

/// Every name's versions, shared by the writer and the nemeses.
pub type Versions = Arc<Mutex<BTreeMap<String, Vec<Version>>>>;

/// A name the writer changes.
#[derive(Clone, Copy, Debug)]
enum State {
    Absent,
    /// Held by `lease`, last changed at `revision`, written `puts` times since created.
    Present {
        lease: i64,
        revision: i64,
        puts: u32,
    },
}

/// The writer: names `w0`…, changed in turn through one member (which the nemeses choose, so
/// that no request of the writer waits on a member that is cut off: a request stuck there
/// could commit after it was given up, and the history would be wrong).
pub struct Writer {
    /// The member written through.
    endpoint: String,
    client: Option<Client>,
    /// Each name's state.
    names: Vec<State>,
    /// Changes so far: makes every value unique.
    count: u32,
    /// Deletes so far, to alternate delete and lease revocation.
    removals: u32,
    versions: Versions,
}

/// The DNS name of writer name `i`.
pub fn writer_name(i: usize) -> String {
    format!("w{i}.services.local.")
}

impl Writer {
    /// A writer of `count` names through `endpoint`, recording into `versions`.
    pub fn new(count: usize, endpoint: &str, versions: Versions) -> Self {
        Self {
            endpoint: endpoint.to_string(),
            client: None,
            names: vec![State::Absent; count],
            count: 0,
            removals: 0,
            versions,
        }
    }

    /// Writes through `endpoint` from now on.
    pub fn use_endpoint(&mut self, endpoint: &str) {
        if self.endpoint != endpoint {
            self.endpoint = endpoint.to_string();
            self.client = None;
        }
    }

    /// Every name is gone (etcd was wiped).
    pub fn forget(&mut self) {
        self.names.fill(State::Absent);
    }

    async fn client(&mut self) -> Option<Client> {
        if self.client.is_none() {
            let config = EtcdConfig::from_list(&self.endpoint);
            self.client = tokio::time::timeout(WRITE_TIMEOUT, config.connect())
                .await
                .ok()
                .and_then(Result::ok);
        }
        self.client.clone()
    }

    /// Makes the next change to name `i`, retrying until etcd acknowledged it (or `stop`).
    pub async fn step(&mut self, i: usize, stop: &CancellationToken) {
        let key = format!("services/w{i}");
        self.count += 1;
        let ip = format!("10.{}.{}.{}", i + 1, self.count / 250, self.count % 250 + 1);
        let sent = Instant::now();
        let (next, value) = loop {
            if stop.is_cancelled() {
                return;
            }
            match tokio::time::timeout(WRITE_TIMEOUT, self.attempt(&key, &ip, self.names[i])).await
            {
                Ok(Ok(done)) => break done,
                // Failed or unknown: see what etcd holds, then try again from there.
                _ => {
                    self.client = None;
                    if let Some(done) = self.settled(&key, &ip, self.names[i]).await {
                        break done;
                    }
                }
            }
        };
        self.names[i] = next;
        if let Some(value) = value {
            let version = Version {
                value,
                sent,
                acked: Instant::now(),
            };
            let name = writer_name(i);
            self.versions
                .lock()
                .expect("versions")
                .entry(name)
                .or_default()
                .push(version);
        }
    }

    /// One attempt at the change that follows `state`: the state after it and the name's new
    /// value (`None` when nothing changed: the attempt found the key in another state).
    async fn attempt(
        &mut self,
        key: &str,
        ip: &str,
        state: State,
    ) -> Result<(State, Option<Value>), String> {
        let mut client = self.client().await.ok_or("no connection")?;
        let value = format!(r#"{{"IP":"{ip}"}}"#);
        let absent = Compare::version(key, CompareOp::Equal, 0);
        match state {
            State::Absent => {
                let lease = client
                    .lease_grant(WRITER_LEASE_TTL, None)
                    .await
                    .map_err(|e| e.to_string())?
                    .id();
                let put = TxnOp::put(key, value, Some(PutOptions::new().with_lease(lease)));
                let txn = Txn::new().when([absent]).and_then([put]);
                let response = client.txn(txn).await.map_err(|e| e.to_string())?;
                let revision = response.header().map_or(0, |h| h.revision());
                if !response.succeeded() {
                    return Err("key present".into());
                }
                let next = State::Present {
                    lease,
                    revision,
                    puts: 1,
                };
                Ok((next, Some(vec![ip.to_string()])))
            }
            State::Present {
                lease,
                revision,
                puts,
            } if puts < 2 => {
                let put = TxnOp::put(key, value, Some(PutOptions::new().with_lease(lease)));
                let same = Compare::mod_revision(key, CompareOp::Equal, revision);
                let response = client
                    .txn(Txn::new().when([same]).and_then([put]))
                    .await
                    .map_err(|e| e.to_string())?;
                if !response.succeeded() {
                    return Err("key changed".into());
                }
                let revision = response.header().map_or(0, |h| h.revision());
                let next = State::Present {
                    lease,
                    revision,
                    puts: puts + 1,
                };
                Ok((next, Some(vec![ip.to_string()])))
            }
            State::Present {
                lease, revision, ..
            } => {
                self.removals += 1;
                if self.removals.is_multiple_of(2) {
                    client
                        .lease_revoke(lease)
                        .await
                        .map_err(|e| e.to_string())?;
                } else {
                    let same = Compare::mod_revision(key, CompareOp::Equal, revision);
                    let delete = TxnOp::delete(key, None);
                    let response = client
                        .txn(Txn::new().when([same]).and_then([delete]))
                        .await
                        .map_err(|e| e.to_string())?;
                    if !response.succeeded() {
                        return Err("key changed".into());
                    }
                }
                Ok((State::Absent, Some(Vec::new())))
            }
        }
    }

    /// After a failed or unanswered attempt: reads the key (linearizable) and, if it already
    /// shows the change, returns the state after it; `None` to try again.
    async fn settled(
        &mut self,
        key: &str,
        ip: &str,
        state: State,
    ) -> Option<(State, Option<Value>)> {
        let mut client = self.client().await?;
        let read = tokio::time::timeout(WRITE_TIMEOUT, client.get(key, None)).await;
        let response = read.ok()?.ok()?;
        let kv = response.kvs().first();
        match (state, kv) {
            // A put that took effect: the key holds this change's address.
            (_, Some(kv))
                if kv
                    .value_str()
                    .is_ok_and(|v| v.contains(&format!("\"{ip}\""))) =>
            {
                let next = State::Present {
                    lease: kv.lease(),
                    revision: kv.mod_revision(),
                    puts: match state {
                        State::Present { puts, .. } => puts + 1,
                        State::Absent => 1,
                    },
                };
                Some((next, Some(vec![ip.to_string()])))
            }
            // A removal that took effect.
            (State::Present { puts, .. }, None) if puts >= 2 => {
                Some((State::Absent, Some(Vec::new())))
            }
            _ => None,
        }
    }
}

/// Runs `writer` over its names until `stop`; the nemeses lock it to move it or wipe etcd.
pub async fn write(writer: Arc<tokio::sync::Mutex<Writer>>, count: usize, stop: CancellationToken) {
    let mut tick = tokio::time::interval(WRITE_EVERY);
    let mut next = 0;
    while !stop.is_cancelled() {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        writer.lock().await.step(next % count, &stop).await;
        next += 1;
    }
}

/// Asks replica `replica` at `addr` about every name in `names` every [`QUERY_EVERY`] (all at
/// once), recording what came back, until `stop`.
pub async fn record(
    replica: usize,
    addr: SocketAddr,
    names: Vec<String>,
    into: Arc<Mutex<Vec<Observation>>>,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(QUERY_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !stop.is_cancelled() {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let asked = names.iter().map(|name| async move {
            let sent = Instant::now();
            let reply = try_query(addr, name, RecordType::A, QUERY_TIMEOUT).await;
            let outcome = match reply {
                None => Outcome::Timeout,
                Some(m) if m.metadata.response_code == ResponseCode::ServFail => Outcome::Servfail,
                Some(m) => Outcome::Answer(addresses(&m)),
            };
            Observation {
                replica,
                name: name.clone(),
                sent,
                received: Instant::now(),
                outcome,
            }
        });
        let seen = futures_util::future::join_all(asked).await;
        into.lock().expect("observations").extend(seen);
    }
}
