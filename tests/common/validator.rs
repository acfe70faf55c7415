//! Independent DNSSEC validators: unbound from Debian on a free loopback port with the zone's
//! trust anchor and a stub zone pointing at etcd-dns (killed on drop), and BIND's `delv`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use tempfile::TempDir;

/// The program `name` from PATH or /usr/sbin; panics with the command that installs it.
pub fn tool(name: &str, package: &str) -> PathBuf {
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
    {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "{name} not found: install it with `apt-get install -y {package}` (scripts/deps.sh does)"
    );
}

/// An unbound resolver validating `zone` with one trust anchor, asking `primary` for it.
pub struct Unbound {
    pub addr: SocketAddr,
    child: Child,
    dir: TempDir,
}

impl Unbound {
    /// Starts unbound on a free port: `anchor` is a DS or DNSKEY record in presentation form,
    /// `zone` (no trailing dot) a stub zone served by `primary`.
    pub fn start(zone: &str, anchor: &str, primary: SocketAddr) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = super::free_port();
        let config = format!(
            r#"server:
  interface: 127.0.0.1
  port: {port}
  do-ip6: no
  do-not-query-localhost: no
  username: ""
  chroot: ""
  directory: "{dir}"
  pidfile: ""
  use-syslog: no
  logfile: ""
  verbosity: 1
  val-log-level: 2
  access-control: 127.0.0.0/8 allow
  module-config: "validator iterator"
  trust-anchor: "{anchor}"
  qname-minimisation: no
stub-zone:
  name: "{zone}"
  stub-addr: {ip}@{primary_port}
"#,
            dir = dir.path().display(),
            ip = primary.ip(),
            primary_port = primary.port(),
        );
        let path = dir.path().join("unbound.conf");
        std::fs::write(&path, config).expect("write unbound.conf");
        let check = Command::new(tool("unbound-checkconf", "unbound"))
            .arg(&path)
            .output()
            .expect("run unbound-checkconf");
        assert!(
            check.status.success(),
            "unbound.conf: {}",
            String::from_utf8_lossy(&check.stdout)
        );
        let log = std::fs::File::create(dir.path().join("unbound.log")).expect("log file");
        let child = Command::new(tool("unbound", "unbound"))
            .args(["-d", "-c"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start unbound");
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            child,
            dir,
        }
    }

    /// What unbound logged (validation failures at val-log-level 2).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("unbound.log")).unwrap_or_default()
    }
}

impl Drop for Unbound {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `delv` validating `name`/`qtype` at `server` from the trust anchor of `zone` given as a
/// DNSKEY record's RDATA in `anchor_file`'s directory: its output (`; fully validated` or
/// `; negative response, fully validated` when it holds).
pub fn delv(server: SocketAddr, anchors: &Path, zone: &str, name: &str, qtype: &str) -> String {
    let output = Command::new(tool("delv", "bind9-dnsutils"))
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string(), "-a"])
        .arg(anchors)
        .arg(format!("+root={zone}"))
        .args([name, qtype])
        .output()
        .expect("run delv");
    String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr)
}

/// A delv trust-anchor file for `zone` holding the DNSKEY RDATA `dnskey` (`257 3 13 base64`).
pub fn delv_anchors(dir: &Path, zone: &str, dnskey: &str) -> PathBuf {
    let fields: Vec<&str> = dnskey.split_whitespace().collect();
    let path = dir.join("anchors.conf");
    let text = format!(
        "trust-anchors {{ {zone}. static-key {} {} {} \"{}\"; }};\n",
        fields[0],
        fields[1],
        fields[2],
        fields[3..].concat()
    );
    std::fs::write(&path, text).expect("write anchors");
    path
}
