//! A real 3-member (or n-member) etcd cluster on loopback, each member a process that a test
//! can freeze (SIGSTOP) or kill; all killed on drop.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use etcd_dns::etcd::EtcdConfig;
use tempfile::TempDir;

use super::etcd::{etcd_bin, free_port, INSTALL_HINT};

/// How long the members may take to elect a leader and answer.
const CLUSTER_START_TIMEOUT: Duration = Duration::from_secs(30);
/// Poll step while waiting for the cluster.
const CLUSTER_POLL_STEP: Duration = Duration::from_millis(100);

/// One member's process and client URL.
pub struct Member {
    /// The member's etcd process.
    child: Child,
    /// Client URL, `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

/// A cluster of etcd members, killed on drop.
pub struct Cluster {
    /// The members, in the order of their endpoints.
    pub members: Vec<Member>,
    /// The members' data directories and logs, removed on drop.
    _dir: TempDir,
}

impl Cluster {
    /// Starts `n` members and waits until every one answers a read.
    pub async fn start(n: usize) -> Self {
        let bin = etcd_bin();
        let dir = tempfile::tempdir().expect("temp dir");
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let initial: Vec<String> = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("m{i}=http://127.0.0.1:{peer}"))
            .collect();
        let members = ports
            .iter()
            .enumerate()
            .map(|(i, (client, peer))| {
                let endpoint = format!("http://127.0.0.1:{client}");
                let peer_url = format!("http://127.0.0.1:{peer}");
                let log = std::fs::File::create(dir.path().join(format!("m{i}.log")))
                    .expect("member log");
                let child = Command::new(&bin)
                    .arg(format!("--name=m{i}"))
                    .arg(format!(
                        "--data-dir={}",
                        dir.path().join(format!("m{i}")).display()
                    ))
                    .arg(format!("--listen-client-urls={endpoint}"))
                    .arg(format!("--advertise-client-urls={endpoint}"))
                    .arg(format!("--listen-peer-urls={peer_url}"))
                    .arg(format!("--initial-advertise-peer-urls={peer_url}"))
                    .arg(format!("--initial-cluster={}", initial.join(",")))
                    .arg("--initial-cluster-state=new")
                    .stdout(Stdio::null())
                    .stderr(log)
                    .spawn()
                    .unwrap_or_else(|e| {
                        panic!("cannot start {}: {e}\n{INSTALL_HINT}", bin.display())
                    });
                Member { child, endpoint }
            })
            .collect();
        let cluster = Cluster { members, _dir: dir };
        let deadline = Instant::now() + CLUSTER_START_TIMEOUT;
        for member in &cluster.members {
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
        cluster
    }

    /// Every member's client URL, comma separated (as `--etcd` takes them).
    pub fn endpoints(&self) -> String {
        let all: Vec<&str> = self.members.iter().map(|m| m.endpoint.as_str()).collect();
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
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for member in &mut self.members {
            let _ = member.child.kill();
            let _ = member.child.wait();
        }
    }
}
