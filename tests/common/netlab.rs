//! A network of our own for partition tests: network namespaces made by the test and deleted
//! on drop, so no address, interface or firewall rule of the machine is touched.
//!
//! ```text
//!   hub (the test, etcd-dns, register)  10.77.0.254 on bridge br0
//!    ├── veth ── member 0   10.77.0.1
//!    ├── veth ── member 1   10.77.0.2
//!    └── veth ── member 2   10.77.0.3
//! ```
//!
//! [`Lab::cut`] partitions a member: iptables rules in the member's own namespace drop every
//! packet between it and the other members, while the hub (its clients) still reaches it; the
//! member stays alive and answers from its own state, as a member behind a broken switch does.
//! Every namespace is private to one lab, so fixed ports (2379, 2380) cannot clash.

use std::net::Ipv4Addr;
use std::process::Command;

/// The panic message when `ip` or `iptables` is missing.
const INSTALL_HINT: &str = "partition tests need iproute2 and iptables: \
     `apt-get install -y iproute2 iptables` (scripts/deps.sh does it)";

/// Prefix of every namespace a lab creates; the rest is the test's process ID and a counter.
const NS_PREFIX: &str = "edns-lab-";

/// A hub namespace and one namespace per member, deleted on drop.
pub struct Lab {
    /// The hub namespace's name.
    hub: String,
    /// The members' namespace names.
    members: Vec<String>,
}

/// Runs `program args…`, panicking with its stderr (and the install hint) on failure.
fn run(program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}\n{INSTALL_HINT}"));
    assert!(
        output.status.success(),
        "{program} {} failed: {}\n{INSTALL_HINT}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Deletes the namespaces that earlier, killed runs of these tests left behind.
fn remove_stale() {
    let Ok(output) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(pid) = name
            .strip_prefix(NS_PREFIX)
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        if !std::path::Path::new("/proc").join(pid).exists() {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

impl Lab {
    /// Makes the hub and `n` member namespaces, wired to one bridge.
    pub fn new(n: usize) -> Self {
        static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        remove_stale();
        let id = format!(
            "{NS_PREFIX}{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let lab = Lab {
            hub: format!("{id}-hub"),
            members: (0..n).map(|i| format!("{id}-m{i}")).collect(),
        };
        let hub = lab.hub.as_str();
        run("ip", &["netns", "add", hub]);
        run("ip", &["-n", hub, "link", "set", "lo", "up"]);
        run("ip", &["-n", hub, "link", "add", "br0", "type", "bridge"]);
        run(
            "ip",
            &["-n", hub, "addr", "add", "10.77.0.254/24", "dev", "br0"],
        );
        run("ip", &["-n", hub, "link", "set", "br0", "up"]);
        for (i, member) in lab.members.iter().enumerate() {
            let veth = format!("v{i}");
            let addr = format!("{}/24", Self::member_addr(i));
            run("ip", &["netns", "add", member]);
            run("ip", &["-n", member, "link", "set", "lo", "up"]);
            run(
                "ip",
                &[
                    "-n", hub, "link", "add", &veth, "type", "veth", "peer", "name", "eth0",
                    "netns", member,
                ],
            );
            run(
                "ip",
                &["-n", hub, "link", "set", &veth, "master", "br0", "up"],
            );
            run("ip", &["-n", member, "addr", "add", &addr, "dev", "eth0"]);
            run("ip", &["-n", member, "link", "set", "eth0", "up"]);
        }
        lab
    }

    /// Member `i`'s address.
    pub fn member_addr(i: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, 0, i as u8 + 1)
    }

    /// Moves the calling thread into the hub: the sockets it opens and the processes it
    /// starts from now on are in the lab. Call it first on a thread of its own (a tokio
    /// runtime built there afterwards has its workers in the hub too).
    pub fn enter_hub(&self) {
        let path = format!("/run/netns/{}", self.hub);
        let ns = std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)
            .unwrap_or_else(|e| panic!("setns into {path}: {e}"));
    }

    /// A command that runs `program` in member `i`'s namespace.
    pub fn in_member(&self, i: usize, program: &std::path::Path) -> Command {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.members[i]])
            .arg(program);
        command
    }

    /// Cuts member `i` off from the other members (its clients still reach it).
    pub fn cut(&self, i: usize) {
        let ns = self.members[i].as_str();
        for (chain, side) in [("INPUT", "-s"), ("OUTPUT", "-d")] {
            for (addr, verdict) in [("10.77.0.254", "ACCEPT"), ("10.77.0.0/24", "DROP")] {
                run(
                    "ip",
                    &[
                        "netns", "exec", ns, "iptables", "-A", chain, side, addr, "-j", verdict,
                    ],
                );
            }
        }
    }

    /// Undoes [`Lab::cut`].
    pub fn heal(&self, i: usize) {
        run("ip", &["netns", "exec", &self.members[i], "iptables", "-F"]);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self.members.iter().chain([&self.hub]) {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}
