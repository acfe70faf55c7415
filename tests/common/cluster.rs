//! A real 3-member (or n-member) etcd cluster, each member a process that a test can freeze
//! (SIGSTOP), kill and restart, or (in a [`Lab`]) cut off from its peers; the whole cluster can
//! be wiped. All members are killed on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_dns::etcd::EtcdConfig;
use tempfile::TempDir;

use super::etcd::{etcd_bin, free_port, INSTALL_HINT};
use super::netlab::Lab;

/// How long the members may take to elect a leader and answer.
const CLUSTER_START_TIMEOUT: Duration = Duration::from_secs(30);
/// Poll step while waiting for the cluster.
const CLUSTER_POLL_STEP: Duration = Duration::from_millis(100);

/// One member's process and client URL.
pub struct Member {
    /// The member's etcd process.
    child: Child,
    /// Client URL, `http://127.0.0.1:PORT` (`http://10.77.0.N:2379` in a lab).
    pub endpoint: String,
}

/// A cluster of etcd members, killed on drop.
pub struct Cluster {
    /// The members, in the order of their endpoints.
    pub members: Vec<Member>,
    /// Every member's peer URL, by index.
    peers: Vec<String>,
    /// The lab whose namespaces the members run in, if any (dropped after them).
    lab: Option<Arc<Lab>>,
    /// How many times the cluster was created (wipes), for a new cluster token each time.
    generation: usize,
    /// The members' data directories and logs, removed on drop.
    dir: TempDir,
}

impl Cluster {
    /// Starts `n` members on loopback and waits until every one answers a read.
    pub async fn start(n: usize) -> Self {
        let urls = (0..n)
            .map(|_| {
                let client = format!("http://127.0.0.1:{}", free_port());
                (client, format!("http://127.0.0.1:{}", free_port()))
            })
            .collect();
        Self::start_with(urls, None).await
    }

    /// Starts `n` members, member `i` in `lab`'s namespace `i` (client port 2379, peer 2380 on
    /// [`Lab::member_addr`]), and waits until every one answers. The caller is in the hub.
    pub async fn start_in(lab: Arc<Lab>, n: usize) -> Self {
        let urls = (0..n)
            .map(|i| {
                let addr = Lab::member_addr(i);
                (format!("http://{addr}:2379"), format!("http://{addr}:2380"))
            })
            .collect();
        Self::start_with(urls, Some(lab)).await
    }

    async fn start_with(urls: Vec<(String, String)>, lab: Option<Arc<Lab>>) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cluster = Cluster {
            members: Vec::new(),
            peers: urls.iter().map(|(_, peer)| peer.clone()).collect(),
            lab,
            generation: 0,
            dir,
        };
        for (i, (endpoint, _)) in urls.into_iter().enumerate() {
            let child = cluster.spawn(i, &endpoint, true);
            cluster.members.push(Member { child, endpoint });
        }
        cluster.wait_all().await;
        cluster
    }

    /// Member `i`'s data directory.
    fn data_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("m{i}-{}", self.generation))
    }

    /// Starts member `i`'s process: a new cluster, or (`new` false) from its data directory.
    fn spawn(&self, i: usize, endpoint: &str, new: bool) -> Child {
        let bin = etcd_bin();
        let peer = &self.peers[i];
        let initial: Vec<String> = (self.peers.iter().enumerate())
            .map(|(j, url)| format!("m{j}={url}"))
            .collect();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("m{i}.log")))
            .expect("member log");
        let mut command = match &self.lab {
            Some(lab) => lab.in_member(i, &bin),
            None => Command::new(&bin),
        };
        command
            .arg(format!("--name=m{i}"))
            .arg(format!("--data-dir={}", self.data_dir(i).display()))
            .arg(format!("--listen-client-urls={endpoint}"))
            .arg(format!("--advertise-client-urls={endpoint}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster-token=test-{}", self.generation))
            .arg(format!(
                "--initial-cluster-state={}",
                if new { "new" } else { "existing" }
            ));
        if new {
            command.arg(format!("--initial-cluster={}", initial.join(",")));
        }
        command
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}\n{INSTALL_HINT}", bin.display()))
    }

    /// Waits until every member answers a read.
    async fn wait_all(&self) {
        let deadline = Instant::now() + CLUSTER_START_TIMEOUT;
        for member in &self.members {
            loop {
                let config = EtcdConfig::from_list(&member.endpoint);
                if let Ok(mut client) = config.connect().await {
                    if client.get("health-probe", None).await.is_ok() {
                        break;
                    }
                }
                assert!(
                    Instant::now() < deadline,
                    "etcd cluster not ready in {CLUSTER_START_TIMEOUT:?}"
                );
                tokio::time::sleep(CLUSTER_POLL_STEP).await;
            }
        }
    }

    /// Every member's client URL, comma separated (as `--etcd` takes them).
    pub fn endpoints(&self) -> String {
        let all: Vec<&str> = self.members.iter().map(|m| m.endpoint.as_str()).collect();
        all.join(",")
    }

    /// Every member's client URL, starting with member `first` (which a watcher or `register`
    /// then uses first).
    pub fn endpoints_from(&self, first: usize) -> String {
        let n = self.members.len();
        let all: Vec<&str> = (0..n)
            .map(|k| self.members[(first + k) % n].endpoint.as_str())
            .collect();
        all.join(",")
    }

    /// Puts `key` = `value` through member `index`, retrying while the cluster elects a new
    /// leader (a frozen leader makes the first attempts time out).
    pub async fn put(&self, index: usize, key: &str, value: &str) {
        let config = EtcdConfig::from_list(&self.members[index].endpoint);
        let deadline = Instant::now() + CLUSTER_START_TIMEOUT;
        loop {
            let result = match config.connect().await {
                Ok(mut client) => client
                    .put(key, value, None)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match result {
                Ok(_) => return,
                Err(error) if Instant::now() > deadline => panic!("etcd put {key}: {error}"),
                Err(_) => tokio::time::sleep(CLUSTER_POLL_STEP).await,
            }
        }
    }

    /// Sends member `index` `signal` (a `kill` signal name: STOP freezes it, CONT thaws it).
    pub fn signal(&self, index: usize, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.members[index].child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} member {index} failed");
    }

    /// Kills member `index` (SIGKILL) and waits for it to be gone.
    pub fn kill(&mut self, index: usize) {
        let child = &mut self.members[index].child;
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Starts the killed member `index` again from its data directory and waits until it
    /// answers.
    pub async fn restart(&mut self, index: usize) {
        let endpoint = self.members[index].endpoint.clone();
        self.members[index].child = self.spawn(index, &endpoint, false);
        self.wait_all().await;
    }

    /// Kills every member, then starts a new, empty cluster on the same URLs (new data
    /// directories, new cluster token): etcd's revision starts again from 1.
    pub async fn wipe(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
        self.generation += 1;
        for i in 0..self.members.len() {
            let endpoint = self.members[i].endpoint.clone();
            self.members[i].child = self.spawn(i, &endpoint, true);
        }
        self.wait_all().await;
    }

    /// The member that leads now, as its members agree (retrying during an election).
    pub async fn leader(&self) -> usize {
        let deadline = Instant::now() + CLUSTER_START_TIMEOUT;
        loop {
            if let Some(leader) = self.try_leader().await {
                return leader;
            }
            assert!(Instant::now() < deadline, "no etcd leader");
            tokio::time::sleep(CLUSTER_POLL_STEP).await;
        }
    }

    /// Waits until every member reports the same leader: after a partition heals, the member
    /// that was cut off may call an election of its own (etcd 3.4 has no pre-vote), and a fault
    /// right then finds the cluster mid-election.
    pub async fn settled(&self) {
        let deadline = Instant::now() + CLUSTER_START_TIMEOUT;
        loop {
            let mut leaders = Vec::new();
            for member in &self.members {
                let status = match EtcdConfig::from_list(&member.endpoint).connect().await {
                    Ok(mut client) => client.status().await.ok(),
                    Err(_) => None,
                };
                leaders.push(status.map(|s| s.leader()).filter(|&l| l != 0));
            }
            if leaders[0].is_some() && leaders.iter().all(|l| *l == leaders[0]) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "etcd members disagree on the leader: {leaders:?}"
            );
            tokio::time::sleep(CLUSTER_POLL_STEP).await;
        }
    }

    /// The highest raft term a member reports: it grows with every election.
    pub async fn term(&self) -> u64 {
        let mut term = 0;
        for member in &self.members {
            if let Ok(mut client) = EtcdConfig::from_list(&member.endpoint).connect().await {
                if let Ok(status) = client.status().await {
                    term = term.max(status.raft_term());
                }
            }
        }
        term
    }

    /// Member IDs by index, and the leader's index if a member reports one it knows.
    async fn try_leader(&self) -> Option<usize> {
        let ids = self.member_ids().await?;
        for member in &self.members {
            let Ok(mut client) = EtcdConfig::from_list(&member.endpoint).connect().await else {
                continue;
            };
            let Ok(status) = client.status().await else {
                continue;
            };
            if let Some(index) = ids.iter().position(|id| *id == status.leader()) {
                return Some(index);
            }
        }
        None
    }

    /// Each member's ID, by index (from its own status).
    async fn member_ids(&self) -> Option<Vec<u64>> {
        let mut ids = Vec::new();
        for member in &self.members {
            let mut client = EtcdConfig::from_list(&member.endpoint)
                .connect()
                .await
                .ok()?;
            let status = client.status().await.ok()?;
            ids.push(status.header()?.member_id());
        }
        Some(ids)
    }

    /// Moves the leadership to member `to` (etcd's move-leader, through the leader).
    pub async fn move_leader(&self, to: usize) {
        let ids = self.member_ids().await.expect("member IDs");
        let leader = self.leader().await;
        let mut client = EtcdConfig::from_list(&self.members[leader].endpoint)
            .connect()
            .await
            .expect("connect to the leader");
        client
            .move_leader(ids[to])
            .await
            .unwrap_or_else(|e| panic!("move leader to member {to}: {e}"));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for member in &mut self.members {
            let _ = member.child.kill();
            let _ = member.child.wait();
        }
    }
}
