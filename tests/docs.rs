//! The docs stay true to the code: every flag and environment variable of both binaries is in
//! docs/OPERATIONS.md and every flag it documents exists; every metric the server exports is in
//! its metrics table and every metric there is exported; every `src/…` path and every relative
//! link in the docs leads to a file that exists.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{bin, http_get, Etcd};

/// The repository.
fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A file of the repository as text.
fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The documents a user reads: the README, docs/, and the READMEs of contrib/, bench/ and fuzz/.
fn documents() -> Vec<PathBuf> {
    let root = repo();
    let mut docs: Vec<PathBuf> = [
        "README.md",
        "contrib/README.md",
        "bench/README.md",
        "fuzz/README.md",
    ]
    .iter()
    .map(|p| root.join(p))
    .collect();
    let dir = std::fs::read_dir(root.join("docs")).expect("docs/");
    docs.extend(
        dir.filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "md")),
    );
    docs.sort();
    docs
}

/// The part of `text` under the heading `heading` (a `## ` line), up to the next `## `.
fn section<'a>(text: &'a str, heading: &str) -> &'a str {
    let start = text
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("docs/OPERATIONS.md has no {heading:?} section"));
    let rest = &text[start + heading.len() + 2..];
    rest.find("\n## ").map_or(rest, |end| &rest[..end])
}

/// The words of `text` that start with `start` and go on with `[A-Za-z0-9_-]` and `more`, and
/// do not go on from a word or path before them; with their offsets.
fn words<'a>(text: &'a str, start: &str, more: &[char]) -> Vec<(usize, &'a str)> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-' || more.contains(&c);
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find(start).map(|at| from + at) {
        let before = text[..at].chars().next_back();
        let tail = &text[at + start.len()..];
        let len = tail.find(|c: char| !word(c)).unwrap_or(tail.len());
        if len > 0 && !before.is_some_and(|c| word(c) || c == '/' || c == '.') {
            found.push((at, &text[at..at + start.len() + len]));
        }
        from = at + start.len();
    }
    found
}

/// The words of `text` that start with `start` and go on with `[A-Za-z0-9_-]`.
fn words_starting<'a>(text: &'a str, start: &str) -> Vec<&'a str> {
    words(text, start, &[])
        .into_iter()
        .map(|(_, w)| w)
        .collect()
}

/// The long flags and environment variables a binary's `--help` (with `args` before it) lists.
fn help(binary: &str, args: &[&str]) -> (BTreeSet<String>, BTreeSet<String>) {
    let output = Command::new(bin(binary))
        .args(args)
        .arg("--help")
        .output()
        .unwrap_or_else(|e| panic!("{binary} --help: {e}"));
    assert!(output.status.success(), "{binary} {args:?} --help failed");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let flags = text
        .lines()
        .map(str::trim_start)
        .filter(|line| line.starts_with('-'))
        .filter_map(|line| words_starting(line, "--").first().map(|f| f.to_string()))
        .collect();
    let envs = text
        .split("[env: ")
        .skip(1)
        .filter_map(|rest| rest.split(['=', ']']).next())
        .map(String::from)
        .collect();
    (flags, envs)
}

/// The flags named in the table rows (`| \`--flag` …) of `text`.
fn table_flags(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|line| line.starts_with("| `--"))
        .flat_map(|line| words_starting(line, "`--"))
        .map(|word| word.trim_start_matches('`').to_string())
        .collect()
}

/// Every flag and variable of `binary` (and its `subcommands`) is in its section of
/// docs/OPERATIONS.md, and every flag that section's tables name is one of them.
fn check_flags(binary: &str, subcommands: &[&str], heading: &str) {
    let operations = read(&repo().join("docs/OPERATIONS.md"));
    let documented = section(&operations, heading);
    let (mut flags, mut envs) = help(binary, &[]);
    for sub in subcommands {
        let (more_flags, more_envs) = help(binary, &[sub]);
        flags.extend(more_flags);
        envs.extend(more_envs);
    }
    assert!(
        flags.len() > 5,
        "{binary} --help: too few flags found: {flags:?}"
    );
    let missing: Vec<_> = flags
        .iter()
        .filter(|flag| !table_flags(documented).contains(*flag))
        .collect();
    assert!(
        missing.is_empty(),
        "{binary} flags not in docs/OPERATIONS.md {heading:?}: {missing:?}"
    );
    let missing: Vec<_> = envs
        .iter()
        .filter(|env| !documented.contains(&format!("`{env}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "{binary} variables not in docs/OPERATIONS.md {heading:?}: {missing:?}"
    );
    let unknown: Vec<_> = table_flags(documented)
        .into_iter()
        .filter(|f| !flags.contains(f))
        .collect();
    assert!(
        unknown.is_empty(),
        "docs/OPERATIONS.md {heading:?} documents flags {binary} does not have: {unknown:?}"
    );
}

#[test]
fn every_etcd_dns_flag_is_documented_and_every_documented_one_exists() {
    check_flags("etcd-dns", &[], "## etcd-dns flags");
}

#[test]
fn every_register_flag_is_documented_and_every_documented_one_exists() {
    check_flags("register", &["list"], "## register flags");
}

/// The metric families a scrape lists (`# TYPE name type`), with their types.
fn exported(metrics: &str) -> Vec<(String, String)> {
    metrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_once(' '))
        .map(|(name, kind)| (name.to_string(), kind.to_string()))
        .collect()
}

/// Every metric family a running server exports — forwarding and its cache included — is in
/// docs/OPERATIONS.md's metrics table, as Prometheus names it (`_total` on counters), and every
/// metric that table names is exported.
#[tokio::test]
async fn every_exported_metric_is_documented_and_every_documented_one_exists() {
    let etcd = Etcd::start().await;
    let keys = tempfile::tempdir().expect("dir");
    let dns = common::DnsServer::start_with(&etcd.endpoint, |config| {
        // A forwarder (never asked) and its cache, whose metrics exist only with it.
        config.catalog.upstreams = Some(vec!["127.0.0.1:9".parse().expect("addr")]);
        config.catalog.cache_bytes = 1 << 20;
        // A signed zone: the signer's metrics exist only with a key.
        let zone = config.live.zones[0].zone.clone();
        let (key, _) = etcd_dns::dnssec::key::ZoneKey::generate(&zone, keys.path()).expect("key");
        let wire = etcd_dns::wire::wire_name(&zone);
        let dnssec = etcd_dns::dnssec::Dnssec::new(vec![key], &[&wire[..]]).expect("signer");
        config.dnssec = Some(std::sync::Arc::new(dnssec));
    })
    .await;
    dns.wait_ready().await;
    let (status, metrics) = http_get(dns.http, "/metrics").await;
    assert_eq!(status, 200);
    let families = exported(&metrics);
    assert!(families.len() > 10, "too few metrics in\n{metrics}");
    let operations = read(&repo().join("docs/OPERATIONS.md"));
    let table: BTreeSet<String> = operations
        .lines()
        .filter(|line| line.starts_with("| `etcd_dns_"))
        .flat_map(|line| words_starting(line, "`etcd_dns_"))
        .map(|word| word.trim_start_matches('`').to_string())
        .collect();
    let names: BTreeSet<String> = families
        .iter()
        .map(
            |(name, kind)| match (kind.as_str(), name.ends_with("_total")) {
                ("counter", false) => format!("{name}_total"),
                _ => name.clone(),
            },
        )
        .collect();
    let missing: Vec<_> = names.difference(&table).collect();
    assert!(
        missing.is_empty(),
        "exported but not in docs/OPERATIONS.md's metrics table: {missing:?}"
    );
    let unknown: Vec<_> = table.difference(&names).collect();
    assert!(
        unknown.is_empty(),
        "in docs/OPERATIONS.md's metrics table but not exported: {unknown:?}"
    );
}

/// Every `src/…` path the docs name exists, and every relative link leads somewhere.
#[test]
fn every_path_and_link_in_the_docs_exists() {
    let root = repo();
    let mut broken = Vec::new();
    for doc in documents() {
        let text = read(&doc);
        let name = doc
            .strip_prefix(&root)
            .unwrap_or(&doc)
            .display()
            .to_string();
        for (_, path) in words(&text, "src/", &['/', '.']) {
            let path = path.trim_end_matches(['.', '-', '/']);
            if !root.join(path).exists() {
                broken.push(format!("{name}: {path}"));
            }
        }
        for link in text.split("](").skip(1) {
            let Some(target) = link.split(')').next() else {
                continue;
            };
            let target = target.split('#').next().unwrap_or_default();
            if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let dir = doc.parent().unwrap_or(&root);
            if !dir.join(target).exists() {
                broken.push(format!("{name}: link ({target})"));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "the docs name what does not exist:\n{}",
        broken.join("\n")
    );
}
