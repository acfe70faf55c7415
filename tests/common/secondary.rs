//! Real secondaries of etcd-dns — Knot, NSD and BIND from Debian — each started on a free
//! loopback port with its own configuration in a temp dir, killed on drop.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use tempfile::TempDir;

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Knot,
    Nsd,
    Bind,
}

impl Kind {
    /// All three.
    pub const ALL: [Kind; 3] = [Kind::Knot, Kind::Nsd, Kind::Bind];

    fn binary(self) -> &'static str {
        match self {
            Kind::Knot => "knotd",
            Kind::Nsd => "nsd",
            Kind::Bind => "named",
        }
    }

    fn package(self) -> &'static str {
        match self {
            Kind::Knot => "knot",
            Kind::Nsd => "nsd",
            Kind::Bind => "bind9",
        }
    }
}

/// A secondary of `zone` following one or more primaries, answering on `addr`.
pub struct Secondary {
    pub kind: Kind,
    pub addr: SocketAddr,
    zone: String,
    primaries: Vec<SocketAddr>,
    /// The TSIG key (name, base64 secret, hmac-sha256) it signs its requests with.
    key: Option<(String, String)>,
    child: Option<Child>,
    dir: TempDir,
}

/// The server binary `name`, from PATH or /usr/sbin; panics with the install command.
fn find(kind: Kind) -> PathBuf {
    let name = kind.binary();
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
    {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "{name} not found: install it with `apt-get install -y {}`",
        kind.package()
    );
}

impl Secondary {
    /// Starts a `kind` secondary of `zone` (no trailing dot) on 127.0.0.1:`port` (see
    /// `free_port`: a primary must know where to send NOTIFY before its secondaries start),
    /// transferring from `primaries` and accepting their NOTIFYs.
    pub fn start(kind: Kind, zone: &str, port: u16, primaries: &[SocketAddr]) -> Self {
        Self::start_with_key(kind, zone, port, primaries, None)
    }

    /// [`Secondary::start`] signing its queries and transfers with TSIG key `key` (name,
    /// base64 secret; hmac-sha256), and accepting only NOTIFYs signed with it.
    pub fn start_with_key(
        kind: Kind,
        zone: &str,
        port: u16,
        primaries: &[SocketAddr],
        key: Option<(&str, &str)>,
    ) -> Self {
        let dir = tempfile::Builder::new()
            .prefix(&format!("secondary-{kind:?}-"))
            .tempdir()
            .expect("temp dir");
        let mut secondary = Self {
            kind,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            zone: zone.to_string(),
            primaries: primaries.to_vec(),
            key: key.map(|(n, s)| (n.to_string(), s.to_string())),
            child: None,
            dir,
        };
        secondary.spawn();
        secondary
    }

    /// Its working directory (configuration, zone file, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        let name = match self.kind {
            Kind::Nsd => "nsd.log",
            _ => "stderr.log",
        };
        std::fs::read_to_string(self.dir().join(name)).unwrap_or_default()
    }

    /// Starts the server process (again, after [`Secondary::stop`], keeping its zone data).
    pub fn spawn(&mut self) {
        let dir = self.dir().to_path_buf();
        let d = dir.display();
        let (port, zone) = (self.addr.port(), &self.zone);
        let (config, args): (String, Vec<String>) = match self.kind {
            Kind::Knot => {
                let mut remotes = String::new();
                let mut ids = Vec::new();
                let (keys, use_key) = match &self.key {
                    Some((name, secret)) => (
                        format!(
                            "key:\n  - id: {name}\n    algorithm: hmac-sha256\n    secret: {secret}\n"
                        ),
                        format!("    key: {name}\n"),
                    ),
                    None => (String::new(), String::new()),
                };
                for (i, primary) in self.primaries.iter().enumerate() {
                    let _ = write!(
                        remotes,
                        "  - id: primary{i}\n    address: {}@{}\n{use_key}",
                        primary.ip(),
                        primary.port()
                    );
                    ids.push(format!("primary{i}"));
                }
                let config = format!(
                    "server:\n    listen: 127.0.0.1@{port}\n    rundir: {d}\n\
                     log:\n  - target: stderr\n    any: info\n\
                     database:\n    storage: {d}\n\
                     {keys}\
                     remote:\n{remotes}\
                     acl:\n  - id: notify\n    address: 127.0.0.0/8\n{use_key}    action: notify\n\
                     zone:\n  - domain: {zone}\n    master: [{}]\n    acl: notify\n    \
                     file: {d}/{zone}.zone\n",
                    ids.join(", ")
                );
                (config, vec!["-c".into(), format!("{d}/knot.conf")])
            }
            Kind::Nsd => {
                let mut requests = String::new();
                let mut notifies = String::new();
                let (keys, key_name) = match &self.key {
                    Some((name, secret)) => (
                        format!("key:\n  name: \"{name}\"\n  algorithm: hmac-sha256\n  secret: \"{secret}\"\n"),
                        name.clone(),
                    ),
                    None => (String::new(), "NOKEY".to_string()),
                };
                for primary in &self.primaries {
                    let _ = writeln!(
                        requests,
                        "  request-xfr: {}@{} {key_name}",
                        primary.ip(),
                        primary.port()
                    );
                    let _ = writeln!(notifies, "  allow-notify: {} {key_name}", primary.ip());
                }
                let config = format!(
                    "server:\n  ip-address: 127.0.0.1@{port}\n  do-ip6: no\n  server-count: 1\n  \
                     username: \"\"\n  chroot: \"\"\n  zonesdir: \"{d}\"\n  database: \"\"\n  \
                     zonelistfile: \"{d}/zone.list\"\n  xfrdfile: \"{d}/xfrd.state\"\n  \
                     xfrdir: \"{d}\"\n  pidfile: \"{d}/nsd.pid\"\n  logfile: \"{d}/nsd.log\"\n  \
                     verbosity: 2\n\
                     remote-control:\n  control-enable: no\n\
                     {keys}\
                     zone:\n  name: {zone}\n  zonefile: \"{zone}.zone\"\n{requests}{notifies}"
                );
                (
                    config,
                    vec!["-d".into(), "-c".into(), format!("{d}/nsd.conf")],
                )
            }
            Kind::Bind => {
                let (keys, use_key) = match &self.key {
                    Some((name, secret)) => (
                        format!(
                            "key \"{name}\" {{ algorithm hmac-sha256; secret \"{secret}\"; }};\n"
                        ),
                        format!(" key \"{name}\""),
                    ),
                    None => (String::new(), String::new()),
                };
                let primaries: String = self
                    .primaries
                    .iter()
                    .map(|p| format!("{} port {}{use_key}; ", p.ip(), p.port()))
                    .collect();
                // BIND 9.18 refuses RRsets of more than 100 records by default (CVE-2024-1737).
                let config = format!(
                    "options {{\n  directory \"{d}\";\n  listen-on port {port} {{ 127.0.0.1; }};\n  \
                     listen-on-v6 {{ none; }};\n  pid-file \"{d}/named.pid\";\n  recursion no;\n  \
                     dnssec-validation no;\n  max-records-per-type 0;\n  \
                     max-types-per-name 0;\n  notify no;\n}};\ncontrols {{ }};\n{keys}\
                     zone \"{zone}\" {{\n  type secondary;\n  primaries {{ {primaries}}};\n  \
                     file \"{d}/{zone}.db\";\n}};\n"
                );
                // named drops to its own user: the directory must be its to write.
                let _ = Command::new("chown")
                    .args(["-R", "bind:bind", &d.to_string()])
                    .status();
                (
                    config,
                    vec![
                        "-g".into(),
                        "-u".into(),
                        "bind".into(),
                        "-c".into(),
                        format!("{d}/named.conf"),
                    ],
                )
            }
        };
        let config_file = match self.kind {
            Kind::Knot => "knot.conf",
            Kind::Nsd => "nsd.conf",
            Kind::Bind => "named.conf",
        };
        std::fs::write(dir.join(config_file), config).expect("write the configuration");
        let stderr = std::fs::File::create(dir.join("stderr.log")).expect("log file");
        let child = Command::new(find(self.kind))
            .args(&args)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", self.kind));
        self.child = Some(child);
    }

    /// Stops the server process (its zone data stays for [`Secondary::spawn`]).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SIGTERM, so that NSD takes its server process with it; SIGKILL if it lingers.
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Secondary {
    fn drop(&mut self) {
        self.stop();
    }
}
