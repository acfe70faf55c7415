//! Proven under partitions: a 3-member etcd cluster in network namespaces of its own (see
//! `common::netlab`), three etcd-dns replicas and a `register --ttl 3`, a writer changing
//! names (put, overwrite, delete, lease revocation) and a recorder asking every replica about
//! every name every 10 ms, while nemeses cut members off, freeze, kill, move the leadership,
//! compact and wipe. A history checker then judges every answer: it must equal etcd's state
//! at some instant at most B before its query; the registered name must never miss.

#[path = "../common/mod.rs"]
mod common;
mod history;
mod workload;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::netlab::Lab;
use common::{lookup_a, Daemon, Transport};
use etcd_dns::etcd::EtcdConfig;
use history::{check, Observation, Verdict, Version};
use tokio_util::sync::CancellationToken;
use workload::{record, write, writer_name, Versions, Writer};

/// The staleness bound every answer is held to (SPEC §4: updates reach DNS at most 2.5 s
/// late, whichever member fails).
const BOUND: Duration = Duration::from_millis(2_500);
/// How long each fault lasts: longer than register's TTL, so a lapse would show.
const FAULT: Duration = Duration::from_secs(5);
/// After each fault is undone, how long its answers are still judged as its own.
const AFTER: Duration = Duration::from_secs(3);
/// How long the cluster, replicas and register may take to come up.
const SETTLE: Duration = Duration::from_secs(20);
/// The writer's names.
const WRITER_NAMES: usize = 4;
/// The name `register` keeps registered throughout.
const STEADY: &str = "steady.services.local.";
/// Members, and etcd-dns replicas (replica r watches member r first).
const MEMBERS: usize = 3;

/// Runs `body` on a thread of its own inside a new lab's hub, with a runtime built there.
fn in_lab<F, Fut>(body: F)
where
    F: FnOnce(Arc<Lab>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let lab = Arc::new(Lab::new(MEMBERS));
    let thread = std::thread::spawn(move || {
        lab.enter_hub();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(body(lab));
    });
    if let Err(panic) = thread.join() {
        std::panic::resume_unwind(panic);
    }
}

/// The member (index) whose client URL `text` names last after `marker`, if any.
fn last_member(text: &str, marker: &str) -> Option<usize> {
    let at = text.rfind(marker)?;
    let url = text[at + marker.len()..].split([' ', '}', ',']).next()?;
    (0..MEMBERS).find(|&i| url == format!("http://{}:2379", Lab::member_addr(i)))
}

/// The member replica `log` watches now: the last "registry loaded" session's.
fn watched_member(log: &str) -> Option<usize> {
    let loaded = log.rfind("registry loaded")?;
    last_member(&log[..loaded], "watch{etcd=")
}

/// The member `register` keeps its lease alive through: the last one it moved to, else the
/// first of its endpoints.
fn register_member(log: &str, first: usize) -> usize {
    last_member(log, "to=").unwrap_or(first)
}

/// How many times `register` registered (a new lease each time).
fn registrations(log: &str) -> usize {
    log.matches(" registered").count()
}

/// One nemesis's stretch of the run.
struct Window {
    /// The nemesis, and its victim.
    name: String,
    start: Instant,
    end: Instant,
    /// The cluster had no leader for a while (the leader was the victim, etcd was wiped, or an
    /// election followed the heal).
    leaderless: bool,
    /// Times `register` registered again (a new lease) meanwhile.
    registrations: usize,
}

/// A row of the result table.
struct Row {
    nemesis: String,
    verdict: Verdict,
    lease_losses: usize,
    leaderless: bool,
}

/// Everything a nemesis works on.
struct World {
    lab: Arc<Lab>,
    cluster: Cluster,
    replicas: Vec<Daemon>,
    register: Daemon,
    writer: Arc<tokio::sync::Mutex<Writer>>,
    versions: Versions,
}

impl World {
    /// A member that is neither `a` nor `b`.
    fn other(a: usize, b: usize) -> usize {
        (0..MEMBERS).find(|&i| i != a && i != b).unwrap_or(0)
    }

    /// The member replica `replica` watches, unless it is `leader`: then one another replica
    /// watches, else any member but the leader.
    fn watched_follower(&self, replica: usize, leader: usize) -> usize {
        let watched = |r: usize| watched_member(&self.replicas[r].log());
        (0..MEMBERS)
            .map(|k| (replica + k) % MEMBERS)
            .filter_map(watched)
            .find(|&member| member != leader)
            .unwrap_or((leader + 1) % MEMBERS)
    }

    /// Moves the writer to member `to` (waiting for its change in flight).
    async fn write_through(&self, to: usize) {
        let endpoint = self.cluster.members[to].endpoint.clone();
        self.writer.lock().await.use_endpoint(&endpoint);
    }

    /// Cuts member `victim` off for [`FAULT`], writing through another member.
    async fn partition(&self, victim: usize) {
        let leader = self.cluster.leader().await;
        self.write_through(Self::other(victim, leader)).await;
        self.lab.cut(victim);
        tokio::time::sleep(FAULT).await;
        self.lab.heal(victim);
        self.cluster.settled().await;
    }

    /// etcd loses everything: every name is gone from when the members are killed until the
    /// new cluster answers; register's name comes back when register registers again.
    async fn wipe(&mut self) {
        let mut writer = self.writer.lock().await;
        let sent = Instant::now();
        self.cluster.wipe().await;
        let acked = Instant::now();
        writer.forget();
        {
            let mut versions = self.versions.lock().expect("versions");
            for name in (0..WRITER_NAMES)
                .map(writer_name)
                .chain([STEADY.to_string()])
            {
                let version = Version {
                    value: Vec::new(),
                    sent,
                    acked,
                };
                versions.entry(name).or_default().push(version);
            }
        }
        drop(writer);
        // register notices its lease is gone and registers again: from its put on.
        let config = EtcdConfig::from_list(&self.cluster.endpoints());
        let mut client = config.connect().await.expect("connect after the wipe");
        let sent = Instant::now();
        let deadline = sent + SETTLE;
        loop {
            let found = client.get("services/steady", None).await.ok();
            if found.is_some_and(|r| !r.kvs().is_empty()) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "register did not register again after the wipe:\n{}",
                self.register.log()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let version = Version {
            value: vec!["10.9.9.9".into()],
            sent,
            acked: Instant::now(),
        };
        self.versions
            .lock()
            .expect("versions")
            .entry(STEADY.into())
            .or_default()
            .push(version);
    }
}

#[test]
fn every_answer_stays_within_the_bound_whatever_the_nemesis() {
    in_lab(|lab| async move {
        let cluster = Cluster::start_in(lab.clone(), MEMBERS).await;
        let versions: Versions = Arc::new(Mutex::new(BTreeMap::new()));
        let register = Daemon::register(
            &cluster.endpoints_from(1),
            &["--name", "steady", "--ip", "10.9.9.9", "--ttl", "3"].map(String::from),
        );
        register.wait_log(" registered", SETTLE).await;
        let registered = Instant::now();
        versions.lock().expect("versions").insert(
            STEADY.into(),
            vec![Version {
                value: vec!["10.9.9.9".into()],
                sent: registered,
                acked: registered,
            }],
        );
        let mut replicas = Vec::new();
        for r in 0..MEMBERS {
            // Longer than detection plus an election (1.3–1.6 s here, with etcd's default
            // timings): no SERVFAIL while a quorum is reachable (see docs/OPERATIONS.md).
            let args = ["--max-stale", "5s"].map(String::from);
            replicas.push(Daemon::etcd_dns(&cluster.endpoints_from(r), &args));
        }
        let mut addrs = Vec::new();
        for replica in &replicas {
            let addr = replica.dns_addr().await;
            common::eventually(
                "the replica answers the registered name",
                SETTLE,
                || async move {
                    (lookup_a(addr, STEADY, Transport::Udp).await == ["10.9.9.9"]).then_some(())
                },
            )
            .await;
            addrs.push(addr);
        }
        let writer = Arc::new(tokio::sync::Mutex::new(Writer::new(
            WRITER_NAMES,
            &cluster.members[0].endpoint,
            versions.clone(),
        )));
        let stop = CancellationToken::new();
        let observations: Arc<Mutex<Vec<Observation>>> = Arc::default();
        let mut tasks = vec![tokio::spawn(write(
            writer.clone(),
            WRITER_NAMES,
            stop.clone(),
        ))];
        let names: Vec<String> = (0..WRITER_NAMES)
            .map(writer_name)
            .chain([STEADY.to_string()])
            .collect();
        for (r, addr) in addrs.iter().enumerate() {
            let task = record(r, *addr, names.clone(), observations.clone(), stop.clone());
            tasks.push(tokio::spawn(task));
        }
        let mut world = World {
            lab,
            cluster,
            replicas,
            register,
            writer,
            versions,
        };
        let mut windows: Vec<Window> = Vec::new();
        for nemesis in [
            "none (baseline)",
            "partition of a watched member",
            "partition of register's member",
            "partition of the leader",
            "pause (SIGSTOP) of a watched member",
            "kill and restart of a watched member",
            "leader transfer",
            "compaction",
            "wipe",
        ] {
            let before = registrations(&world.register.log());
            let leader = world.cluster.leader().await;
            let term = world.cluster.term().await;
            let start = Instant::now();
            let victim = match nemesis {
                "partition of a watched member" => {
                    let victim = world.watched_follower(0, leader);
                    world.partition(victim).await;
                    Some(victim)
                }
                "partition of register's member" => {
                    let victim = register_member(&world.register.log(), 1);
                    world.partition(victim).await;
                    Some(victim)
                }
                "partition of the leader" => {
                    world.partition(leader).await;
                    Some(leader)
                }
                "pause (SIGSTOP) of a watched member" => {
                    let victim = world.watched_follower(1, leader);
                    world.write_through(World::other(victim, leader)).await;
                    world.cluster.signal(victim, "STOP");
                    tokio::time::sleep(FAULT).await;
                    world.cluster.signal(victim, "CONT");
                    Some(victim)
                }
                "kill and restart of a watched member" => {
                    let victim = world.watched_follower(2, leader);
                    world.write_through(World::other(victim, leader)).await;
                    world.cluster.kill(victim);
                    tokio::time::sleep(FAULT).await;
                    world.cluster.restart(victim).await;
                    Some(victim)
                }
                "leader transfer" => {
                    for _ in 0..2 {
                        let leader = world.cluster.leader().await;
                        let to = (leader + 1) % MEMBERS;
                        world.write_through(to).await;
                        world.cluster.move_leader(to).await;
                        tokio::time::sleep(FAULT / 2).await;
                    }
                    None
                }
                "compaction" => {
                    let config = EtcdConfig::from_list(&world.cluster.endpoints());
                    let mut client = config.connect().await.expect("connect");
                    for _ in 0..2 {
                        let revision = client
                            .get("x", None)
                            .await
                            .expect("get")
                            .header()
                            .map_or(0, |h| h.revision());
                        client.compact(revision, None).await.expect("compact");
                        tokio::time::sleep(FAULT / 2).await;
                    }
                    None
                }
                "wipe" => {
                    world.wipe().await;
                    tokio::time::sleep(FAULT).await;
                    None
                }
                _ => {
                    tokio::time::sleep(FAULT).await;
                    None
                }
            };
            tokio::time::sleep(AFTER).await;
            let name = match victim {
                Some(victim) if victim == leader && !nemesis.contains("leader") => {
                    format!("{nemesis} (member {victim}, the leader)")
                }
                Some(victim) => format!("{nemesis} (member {victim})"),
                None => nemesis.to_string(),
            };
            windows.push(Window {
                name,
                start,
                end: Instant::now(),
                // Without a leader for a while, no member can confirm any table. Besides the
                // leader cut off and the wipe, an election can follow a heal: etcd 3.4 has no
                // pre-vote by default, and the healed member's higher term deposes the leader.
                leaderless: victim == Some(leader)
                    || nemesis == "wipe"
                    || (nemesis != "leader transfer" && world.cluster.term().await > term),
                registrations: registrations(&world.register.log()) - before,
            });
        }
        stop.cancel();
        for task in tasks {
            task.await.expect("workload task");
        }
        let observations = observations.lock().expect("observations").clone();
        let versions = world.versions.lock().expect("versions").clone();
        let rows: Vec<Row> = windows
            .into_iter()
            .map(|window| {
                let inside: Vec<Observation> = observations
                    .iter()
                    .filter(|o| o.sent >= window.start && o.sent < window.end)
                    .cloned()
                    .collect();
                let verdict = check(&versions, &inside, BOUND, &[STEADY.to_string()]);
                Row {
                    nemesis: window.name,
                    verdict,
                    lease_losses: window.registrations,
                    leaderless: window.leaderless,
                }
            })
            .collect();
        print_table(&rows);
        if rows
            .iter()
            .any(|r| !r.verdict.wrong.is_empty() || (!r.leaderless && r.verdict.servfail > 0))
        {
            // What the replicas did, to tell why.
            for (r, replica) in world.replicas.iter().enumerate() {
                eprintln!("--- replica {r}:\n{}", replica.log());
            }
        }
        for row in &rows {
            let v = &row.verdict;
            assert!(
                v.answers > 1_000,
                "{}: only {} answers recorded",
                row.nemesis,
                v.answers
            );
            assert!(
                v.wrong.is_empty(),
                "{}: {} answers wrong (bound {BOUND:?}), the first: {:#?}",
                row.nemesis,
                v.wrong.len(),
                &v.wrong[..v.wrong.len().min(5)]
            );
            // Without a leader no member can confirm a table: past --max-stale, SERVFAIL is
            // what the flag asks for. With one, never.
            if !row.leaderless {
                assert_eq!(
                    v.servfail, 0,
                    "{}: SERVFAIL with a leader throughout",
                    row.nemesis
                );
            }
            if !row.nemesis.starts_with("wipe") {
                assert_eq!(v.misses, 0, "{}: the registered name missed", row.nemesis);
                assert_eq!(
                    row.lease_losses, 0,
                    "{}: register lost its lease",
                    row.nemesis
                );
            }
        }
        drop(world);
    });
}

/// The checker's table, one row per nemesis.
fn print_table(rows: &[Row]) {
    eprintln!("| nemesis | answers | max staleness ms | wrong | misses | SERVFAIL | timeouts | lease losses |");
    eprintln!("|---|--:|--:|--:|--:|--:|--:|--:|");
    for row in rows {
        let v = &row.verdict;
        eprintln!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            row.nemesis,
            v.answers,
            v.max_staleness.as_millis(),
            v.wrong.len(),
            v.misses,
            v.servfail,
            v.timeouts,
            row.lease_losses
        );
    }
}

#[test]
fn register_never_loses_its_name_over_20_partitions_of_its_member() {
    in_lab(|lab| async move {
        let cluster = Cluster::start_in(lab.clone(), MEMBERS).await;
        let register = Daemon::register(
            &cluster.endpoints_from(0),
            &["--name", "steady", "--ip", "10.9.9.9", "--ttl", "3"].map(String::from),
        );
        register.wait_log(" registered", SETTLE).await;
        // The key's creation and last change, and its lease (read through any member that
        // answers: the one just healed may still be electing).
        let key = || async {
            let (kv, _) = common::eventually("a member reads the key", SETTLE, || async {
                let config = EtcdConfig::from_list(&cluster.endpoints());
                let mut client = config.connect().await.ok()?;
                let response = client.get("services/steady", None).await.ok()?;
                Some(response.kvs().first().cloned())
            })
            .await;
            kv.map(|kv| (kv.create_revision(), kv.mod_revision(), kv.lease()))
        };
        let registered = key().await.expect("the key is registered");
        let mut left = Vec::new();
        for round in 0..20 {
            let victim = register_member(&register.log(), 0);
            let moves = register.log().matches("keep-alive moved").count();
            lab.cut(victim);
            // Longer than the TTL: the lease would lapse unless kept alive elsewhere.
            let cut = Instant::now();
            while register.log().matches("keep-alive moved").count() <= moves {
                // A member is left within TTL/3 + 0.5 s when the others answer; a cut-off
                // leader first needs a new one elected (which extends every lease).
                assert!(
                    cut.elapsed() < Duration::from_secs(15),
                    "round {round}: register did not leave member {victim} within 15 s:\n{}",
                    register.log()
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let moved = cut.elapsed();
            // Cut for longer than the TTL: the lease would lapse unless kept alive elsewhere.
            tokio::time::sleep(Duration::from_secs(4).saturating_sub(moved)).await;
            lab.heal(victim);
            cluster.settled().await;
            left.push(moved);
            let now = key().await;
            assert_eq!(
                now,
                Some(registered),
                "round {round}: the key was deleted or written again"
            );
        }
        assert_eq!(registrations(&register.log()), 1, "{}", register.log());
        left.sort();
        eprintln!(
            "20 partitions of register's member: the key kept its revision {} and lease {:x}; \
             register left the member after {:?} (median), {:?} (max)",
            registered.1,
            registered.2,
            left[left.len() / 2],
            left[left.len() - 1]
        );
    });
}
