//! The registry and its snapshots, driven as the watcher drives them.

use std::sync::Arc;

use hickory_proto::rr::{Name, RecordType};

use super::{Applied, Registry, Snapshot};
use crate::service::Invalid;
use crate::testing::captured_logs;
use crate::wire::{rr_tail, wire_name, WireName};
use crate::zone::ZoneConfig;

pub(super) fn config() -> Arc<ZoneConfig> {
    Arc::new(ZoneConfig {
        zone: Name::from_ascii("services.local.").expect("zone"),
        ttl: 5,
        negative_ttl: 5,
        statics: None,
    })
}

fn wire(text: &str) -> WireName {
    wire_name(&Name::from_ascii(text).expect("name"))
}

/// The records at `name` of type `rtype`, as text.
pub(super) fn records(snapshot: &Snapshot, name: &str, rtype: RecordType) -> Vec<String> {
    let owner = Name::from_ascii(name).expect("name");
    let mut out: Vec<String> = snapshot
        .names
        .get(&wire(name))
        .into_iter()
        .flat_map(|node| node.rrsets())
        .flat_map(|set| set.records(&owner))
        .filter(|r| r.record_type() == rtype)
        .map(|r| format!("{} {}", r.ttl, r.data))
        .collect();
    out.sort();
    out
}

#[test]
fn registry_builds_rrsets_and_forgets_removed_keys() {
    let mut registry = Registry::new(config());
    registry.put(
        b"services/web/n1",
        br#"{"IP":"10.0.0.1","port":80,"ttl":30}"#,
    );
    registry.put(
        b"services/web/n2",
        br#"{"IP":"10.0.0.2","port":81,"txt":["v=1"]}"#,
    );
    registry.put(b"services/web/n3", br#"{"IP":"10.0.0.2"}"#);
    let snap = registry.snapshot();
    assert_eq!(snap.instances, 3);
    // One address once, one TTL per RRset (the smallest).
    assert_eq!(
        records(&snap, "web.services.local.", RecordType::A),
        vec!["5 10.0.0.1", "5 10.0.0.2"]
    );
    assert_eq!(
        records(&snap, "_web._tcp.services.local.", RecordType::SRV),
        vec![
            "5 10 10 80 n1.web.services.local.",
            "5 10 10 81 n2.web.services.local."
        ]
    );
    assert_eq!(
        records(&snap, "n1.web.services.local.", RecordType::A),
        vec!["30 10.0.0.1"]
    );
    assert_eq!(
        records(&snap, "web.services.local.", RecordType::TXT),
        vec!["5 v=1"]
    );
    assert_eq!(
        records(&snap, "2.0.0.10.in-addr.arpa.", RecordType::PTR),
        vec!["5 n2.web.services.local.", "5 n3.web.services.local."]
    );

    // An invalid new value removes the old records and is listed as rejected.
    let applied = registry.put(b"services/web/n1", b"{broken");
    assert!(matches!(applied, Applied::Rejected(Invalid::Value(_))));
    registry.delete(b"services/web/n2");
    let snap = registry.snapshot();
    assert!(snap.names.get(&wire("n1.web.services.local.")).is_none());
    assert!(snap.names.get(&wire("1.0.0.10.in-addr.arpa.")).is_none());
    assert!(
        snap.names.get(&wire("_web._tcp.services.local.")).is_none(),
        "no port left"
    );
    assert_eq!(
        records(&snap, "web.services.local.", RecordType::A),
        vec!["5 10.0.0.2"]
    );
    assert_eq!(
        snap.rejected.keys().map(|k| &**k).collect::<Vec<_>>(),
        vec!["services/web/n1"]
    );
    registry.delete(b"services/web/n3");
    let snap = registry.snapshot();
    assert_eq!(snap.instances, 0);
    assert!(
        snap.names.is_empty(),
        "nothing left behind: {:?}",
        snap.names.iter().collect::<Vec<_>>()
    );
}

#[test]
fn the_soa_serial_is_the_revision() {
    let config = config();
    let mut registry = Registry::new(config.clone());
    registry.put(b"services/a", br#"{"IP":"10.0.0.1"}"#);
    for (revision, serial) in [(7, 7), (1 << 33, 0), ((1 << 33) + 5, 5)] {
        registry.set_revision(revision);
        let snap = registry.snapshot();
        let want = config.soa(serial);
        assert_eq!(snap.zones[0].soa(), want, "{revision}");
        assert_eq!(
            &*snap.zones[0].soa_tail,
            rr_tail(&want).as_slice(),
            "{revision}"
        );
    }
}

#[test]
fn the_soa_serial_never_goes_backwards_when_etcds_revision_does() {
    // A table at revision 51, then etcd wiped: the re-read sees revision 2.
    let mut before = Registry::new(config());
    before.set_revision(51);
    let old = before.snapshot();
    let mut after = Registry::new(config());
    after.set_revision(2);
    after.continue_serial(old.zones[0].serial, 0);
    let new = after.snapshot();
    assert_eq!((new.revision, new.zones[0].serial), (2, 52));
    // Changes go on from there, and a later re-read carries the offset along.
    after.set_revision(5);
    let later = after.snapshot();
    assert_eq!(later.zones[0].serial, 55);
    let mut reread = Registry::new(config());
    reread.set_revision(5);
    reread.continue_serial(later.zones[0].serial, later.zones[0].serial.wrapping_sub(5));
    assert_eq!(
        reread.snapshot().zones[0].serial,
        55,
        "same revision, same serial"
    );
    // Across the 2^32 wrap "after" is RFC 1982's: 3 already comes after 2^32 - 2.
    let mut wrapped = Registry::new(config());
    wrapped.set_revision(3);
    wrapped.continue_serial(u32::MAX - 1, 0);
    assert_eq!(wrapped.snapshot().zones[0].serial, 3);
    let mut behind = Registry::new(config());
    behind.set_revision(3);
    behind.continue_serial(1 << 30, 0);
    assert_eq!(behind.snapshot().zones[0].serial, (1 << 30) + 1);
    let mut ahead = Registry::new(config());
    ahead.set_revision(60);
    ahead.continue_serial(old.zones[0].serial, 0);
    assert_eq!(
        ahead.snapshot().zones[0].serial,
        60,
        "a revision ahead keeps its own serial"
    );
}

#[test]
fn host_targets_are_cnames_only_where_nothing_else_is() {
    let mut registry = Registry::new(config());
    registry.put(b"services/db", br#"{"host":"db.example.com","port":5432}"#);
    registry.put(b"services/cache/n1", br#"{"host":"cache.example.com"}"#);
    let snap = registry.snapshot();
    // SRV at the one-instance name: no CNAME beside it; the host is the SRV target.
    assert!(records(&snap, "db.services.local.", RecordType::CNAME).is_empty());
    assert_eq!(
        records(&snap, "db.services.local.", RecordType::SRV),
        vec!["5 10 10 5432 db.example.com."]
    );
    assert_eq!(
        records(&snap, "n1.cache.services.local.", RecordType::CNAME),
        vec!["5 cache.example.com."]
    );
}

#[test]
fn a_rejected_key_is_logged_once_per_reason_even_across_re_reads() {
    let long = format!("services/{}", "a".repeat(100_000));
    let logs = captured_logs(|| {
        let mut registry = Registry::new(config());
        registry.put(b"services/bad", b"{broken"); // logged
        registry.put(b"services/bad", b"{broken"); // the same reason: not again
        registry.put(b"services/bad", b"[1]"); // another reason: logged
        let first = registry.snapshot();
        // A resync reads everything into a new registry: what the last table rejected for
        // the same reason is not news.
        let mut reread = Registry::new(config()).with_known_rejected(first.rejected.clone());
        reread.put(b"services/bad", b"[1]");
        reread.put(b"services/new", b"{x"); // logged
        let second = reread.snapshot();
        assert_eq!(second.rejected.len(), 2, "both still listed");
        // After the read, a key deleted and put again is news again.
        reread.delete(b"services/bad");
        reread.put(b"services/bad", b"[1]"); // logged
        reread.put(long.as_bytes(), b"{x"); // logged, clipped
    });
    let lines: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("skipping invalid registration"))
        .collect();
    assert_eq!(lines.len(), 5, "{logs}");
    assert!(lines[0].contains("key=services/bad") && lines[0].contains("not JSON"));
    assert!(lines[1].contains("key=services/bad") && lines[1].contains("JSON object"));
    assert!(lines[2].contains("key=services/new"));
    assert!(lines[3].contains("key=services/bad"));
    assert!(lines[4].contains("…(100009 bytes)"), "{}", lines[4]);
    assert!(
        lines[4].len() < 1_000,
        "a clipped line: {} bytes",
        lines[4].len()
    );
}

#[test]
fn the_age_counts_from_the_newest_quorum_proof_and_an_older_one_changes_nothing() {
    use std::time::{Duration, Instant};
    let table = super::Table::new(&config());
    assert_eq!(table.age(), None, "no proof before the first read");
    let proved = Instant::now();
    table.confirm_at(proved);
    let age = table.age().expect("an age once confirmed");
    assert!(age <= proved.elapsed(), "{age:?}");
    // A proof that arrives late but was sent earlier does not make the table look fresher
    // than it is, nor older.
    table.confirm_at(proved - Duration::from_millis(1));
    let later = table.age().expect("age");
    assert!(
        later >= age && later <= proved.elapsed(),
        "{later:?} after {age:?}"
    );
}
