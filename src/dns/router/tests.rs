//! The routing decision, case by case.

use std::sync::Arc;

use hickory_server::proto::op::{Message, Query, ResponseCode};
use hickory_server::proto::rr::{DNSClass, RecordType};
use hickory_server::zone_handler::Catalog;

use super::{Route, Router};
use crate::dns::acl::Acl;
use crate::table::{Registry, Table};
use crate::testing::name;
use crate::wire::parse_query;
use crate::zone::ZoneConfig;

/// A router over a table holding `web/n1` at 10.0.0.1, a static zone `example.internal.`,
/// transfers allowed to 127.0.0.1, forwarding on or off.
fn router(forwarding: bool) -> Router {
    let config = ZoneConfig {
        zone: name("services.local."),
        ttl: 5,
        negative_ttl: 5,
        statics: None,
    };
    let mut registry = Registry::new(Arc::new(config.clone()));
    registry.put(b"services/web/n1", br#"{"IP":"10.0.0.1","port":80}"#);
    let table = Arc::new(Table::new(&config));
    table.store(registry.snapshot());
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("example.internal.zone");
    let zone = "$TTL 60\n@ IN SOA ns hm 1 2 3 4 5\n@ IN NS ns\nns IN A 192.0.2.1\n";
    std::fs::write(&path, zone).expect("zone file");
    let file = crate::dns::zones::load_file(&path).expect("zone");
    let statics = crate::dns::statics::StaticZones::compile(&[file]);
    let acl = Acl::parse("127.0.0.1").expect("acl");
    let metrics = Arc::new(crate::metrics::Metrics::default());
    Router::new(table, metrics, Catalog::new(), statics, forwarding, acl)
}

#[test]
fn class_numbers_are_hickorys() {
    assert_eq!(super::CLASS_IN, u16::from(DNSClass::IN));
    assert_eq!(super::CLASS_ANY, u16::from(DNSClass::ANY));
}

#[test]
fn every_request_gets_one_route() {
    let live_at = |zone_at| Route::Live(zone_at);
    let refused = Route::Error(ResponseCode::Refused);
    let (local, remote) = ("127.0.0.1", "192.0.2.9");
    // name, type, class, client, forwarding → route
    let cases: &[(&str, RecordType, DNSClass, &str, bool, Route)] = &[
        (
            "web.services.local.",
            RecordType::A,
            DNSClass::IN,
            remote,
            true,
            live_at(4),
        ),
        (
            "Web.SERVICES.local.",
            RecordType::SRV,
            DNSClass::IN,
            remote,
            true,
            live_at(4),
        ),
        (
            "missing.services.local.",
            RecordType::A,
            DNSClass::IN,
            remote,
            true,
            live_at(8),
        ),
        (
            "services.local.",
            RecordType::SOA,
            DNSClass::ANY,
            remote,
            true,
            live_at(0),
        ),
        (
            "web.services.local.",
            RecordType::A,
            DNSClass::CH,
            remote,
            true,
            refused,
        ),
        (
            "services.local.",
            RecordType::IXFR,
            DNSClass::IN,
            local,
            true,
            Route::Transfer,
        ),
        (
            "services.local.",
            RecordType::IXFR,
            DNSClass::IN,
            remote,
            true,
            refused,
        ),
        (
            "services.local.",
            RecordType::AXFR,
            DNSClass::IN,
            local,
            true,
            Route::Transfer,
        ),
        (
            "services.local.",
            RecordType::AXFR,
            DNSClass::IN,
            remote,
            true,
            refused,
        ),
        (
            "1.0.0.10.in-addr.arpa.",
            RecordType::PTR,
            DNSClass::IN,
            remote,
            true,
            Route::Reverse,
        ),
        (
            "1.0.0.10.in-addr.arpa.",
            RecordType::A,
            DNSClass::IN,
            remote,
            true,
            Route::Forward,
        ),
        (
            "2.0.0.10.in-addr.arpa.",
            RecordType::PTR,
            DNSClass::IN,
            remote,
            true,
            Route::Forward,
        ),
        (
            "www.example.internal.",
            RecordType::A,
            DNSClass::IN,
            remote,
            false,
            Route::Static {
                zone: 0,
                zone_at: 4,
            },
        ),
        // A static zone: no transfers, no other class (as the live zone); ANY is IN.
        (
            "example.internal.",
            RecordType::AXFR,
            DNSClass::IN,
            local,
            true,
            refused,
        ),
        (
            "www.example.internal.",
            RecordType::A,
            DNSClass::CH,
            remote,
            true,
            refused,
        ),
        (
            "Www.Example.Internal.",
            RecordType::A,
            DNSClass::ANY,
            remote,
            true,
            Route::Static {
                zone: 0,
                zone_at: 4,
            },
        ),
        (
            "www.example.com.",
            RecordType::A,
            DNSClass::IN,
            remote,
            true,
            Route::Forward,
        ),
        (
            "www.example.com.",
            RecordType::A,
            DNSClass::IN,
            remote,
            false,
            refused,
        ),
        (
            "xservices.local.",
            RecordType::A,
            DNSClass::IN,
            remote,
            false,
            refused,
        ),
    ];
    for (qname, qtype, qclass, src, forwarding, want) in cases {
        let router = router(*forwarding);
        let mut message = Message::query();
        let mut query = Query::query(name(qname), *qtype);
        query.set_query_class(*qclass);
        message.add_query(query);
        let bytes = message.to_vec().expect("encode");
        let query = parse_query(&bytes).expect("plain query");
        let src = std::net::SocketAddr::new(src.parse().expect("address"), 5300);
        let got = router.place(&router.table.load(), &query, src);
        assert_eq!(got, *want, "{qname} {qtype} {qclass} from {src}");
    }
}
