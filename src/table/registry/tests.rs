//! The `Registry` fed by several registries (`--registry`) into several zones, as the watcher
//! drives it.

use std::sync::Arc;

use hickory_proto::rr::{Name, RecordType};

use super::{Applied, Registry};
use crate::sources::{Live, RegistrySpec};
use crate::table::tests::{config, records};

/// native=services/ and go-zero=rpc/ into services.local., skydns=/skydns/ and
/// dubbo=/services/ into skydns.local.
fn registry() -> Registry {
    let specs: Vec<RegistrySpec> = [
        "native=services/",
        "go-zero=rpc/",
        "skydns=/skydns/@skydns.local.",
        "dubbo=/services/@skydns.local.",
        "rpcx=/rpcx/",
    ]
    .iter()
    .map(|s| s.parse().expect(s))
    .collect();
    let live = Live::new((*config()).clone(), &specs, |_| None).expect("live");
    Registry::for_live(Arc::new(live))
}

#[test]
fn registries_into_one_zone_answer_their_union() {
    let mut registry = registry();
    registry.put_from(0, b"services/web/n1", br#"{"IP":"10.0.0.1"}"#);
    registry.put_from(1, b"rpc/web/7587867307385737483", b"10.0.0.2:8080");
    let snap = registry.snapshot();
    assert_eq!(
        records(&snap, "web.services.local.", RecordType::A),
        ["5 10.0.0.1", "5 10.0.0.2"]
    );
    assert_eq!(
        records(&snap, "_web._tcp.services.local.", RecordType::SRV),
        ["5 10 10 8080 7587867307385737483.web.services.local."]
    );
    // go-zero re-registers under a new lease: the old key goes, the new one comes.
    registry.delete_from(1, b"rpc/web/7587867307385737483");
    registry.put_from(1, b"rpc/web/7587867307385737499", b"10.0.0.3:8080");
    let snap = registry.snapshot();
    assert_eq!(
        records(&snap, "web.services.local.", RecordType::A),
        ["5 10.0.0.1", "5 10.0.0.3"]
    );
    assert_eq!(snap.instances, 2);
}

#[test]
fn a_second_zone_has_its_own_names_and_serial() {
    let mut registry = registry();
    registry.set_revision(7);
    registry.put_from(
        2,
        b"/skydns/local/skydns/east/web/x1",
        br#"{"host":"10.0.0.5"}"#,
    );
    registry.put_from(
        2,
        b"/skydns/local/skydns/east/web/x2",
        br#"{"host":"10.0.0.6"}"#,
    );
    registry.advance(2, 9);
    let value = br#"{"Host":"10.0.0.7","Port":20000,"Enable":true,"Healthy":true}"#;
    registry.put_from(3, b"/services/app/10.0.0.7:20000", value);
    registry.advance(3, 10);
    let snap = registry.snapshot();
    // A SkyDNS name answers for its subtree.
    assert_eq!(
        records(&snap, "east.skydns.local.", RecordType::A),
        ["5 10.0.0.5", "5 10.0.0.6"]
    );
    assert_eq!(
        records(&snap, "app.skydns.local.", RecordType::A),
        ["5 10.0.0.7"]
    );
    assert!(records(&snap, "app.services.local.", RecordType::A).is_empty());
    let serials: Vec<(String, u32)> = snap
        .zones
        .iter()
        .map(|z| (z.soa().name.to_ascii(), z.serial))
        .collect();
    assert_eq!(
        serials,
        [
            ("services.local.".to_string(), 7),
            ("skydns.local.".to_string(), 10)
        ]
    );
    let (at, zone) = snap
        .zone_of(&crate::wire::wire_name(
            &Name::from_ascii("x1.web.east.skydns.local.").expect("name"),
        ))
        .expect("in a zone");
    assert_eq!((at, zone.serial), (12, 10));
}

#[test]
fn entries_that_are_no_instance_serve_nothing_and_are_not_rejected() {
    let mut registry = registry();
    // rpcx's marker key.
    assert_eq!(
        registry.put_from(4, b"/rpcx/Arith", b"Arith"),
        Applied::Ignored
    );
    // A dubbo instance taken out: its records go, and it is not reported as invalid.
    let key = b"/services/app/10.0.0.7:20000";
    let up = br#"{"Host":"10.0.0.7","Port":20000,"Enable":true,"Healthy":true}"#;
    let down = br#"{"Host":"10.0.0.7","Port":20000,"Enable":true,"Healthy":false}"#;
    assert_eq!(registry.put_from(3, key, up), Applied::Registered);
    assert_eq!(registry.put_from(3, key, down), Applied::Ignored);
    registry.put_from(1, b"rpc/bad/1", b"not an address:x");
    let snap = registry.snapshot();
    assert!(records(&snap, "app.skydns.local.", RecordType::A).is_empty());
    assert_eq!(snap.instances, 0);
    let rejected: Vec<&str> = snap.rejected.keys().map(|k| &**k).collect();
    assert_eq!(rejected, ["rpc/bad/1"]);
}
