//! Static zone files end to end: etcd-dns serving a zone file beside the live zone, asked
//! over UDP and TCP as a resolver would ask it. The answers are Knot 3.2's for the same file
//! (`scripts/compare-dns.py` compares the two servers field by field).

mod common;

use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};

const ZONE: &str = "$ORIGIN corp.test.
$TTL 300
@      IN SOA   ns1 hostmaster 7 3600 600 86400 60
@      IN NS    ns1
ns1    IN A     192.0.2.53
www    IN A     192.0.2.80
api    IN CNAME www
*.apps IN A     192.0.2.90
a.b    IN TXT   \"deep\"
lab    IN NS    ns.lab
ns.lab IN A     192.0.2.200
";

/// etcd, and etcd-dns serving `corp.test.` from a zone file beside the live zone.
async fn start() -> (Etcd, DnsServer, tempfile::TempDir) {
    let etcd = Etcd::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("corp.test.zone");
    std::fs::write(&path, ZONE).expect("write zone file");
    let file = etcd_dns::dns::zones::load_file(&path).expect("zone file loads");
    let dns = DnsServer::start_with(&etcd.endpoint, |config| {
        config.catalog.zone_files = vec![file];
    })
    .await;
    dns.wait_ready().await;
    (etcd, dns, dir)
}

/// Owner, TTL, type and data of each record of a section.
fn records(section: &[hickory_proto::rr::Record]) -> Vec<String> {
    section
        .iter()
        .map(|r| format!("{} {} {} {}", r.name, r.ttl, r.record_type(), r.data))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zone_file_answers_as_knot_does() {
    let (etcd, dns, _dir) = start().await;
    let _web = register(&etcd.endpoint, &["--name", "web", "--ip", "10.0.0.7"]);
    for transport in Transport::BOTH {
        // The question's case in the answer; AA.
        let m = query(dns.addr, "WWW.Corp.Test.", RecordType::A, transport).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.metadata.authoritative);
        assert_eq!(records(&m.answers), ["WWW.Corp.Test. 300 A 192.0.2.80"]);

        // No such name: NXDOMAIN and the SOA at min(TTL, MINIMUM) = 60 (RFC 2308 §3).
        let m = query(dns.addr, "nope.corp.test.", RecordType::A, transport).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        let soa = authority_soa(&m).expect("SOA in the authority section");
        assert_eq!(soa.ttl, 60);
        assert!(matches!(&soa.data, RData::SOA(s) if s.serial == 7));

        // b.corp.test. exists only as the parent of a.b: NODATA, not NXDOMAIN.
        let m = query(dns.addr, "b.corp.test.", RecordType::A, transport).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.answers.is_empty() && authority_soa(&m).is_some());

        // A CNAME is followed inside the zone; a wildcard answers in the question's name.
        let m = query(dns.addr, "api.corp.test.", RecordType::A, transport).await;
        assert_eq!(
            records(&m.answers),
            [
                "api.corp.test. 300 CNAME www.corp.test.",
                "www.corp.test. 300 A 192.0.2.80"
            ]
        );
        let m = query(dns.addr, "x.y.apps.corp.test.", RecordType::A, transport).await;
        assert_eq!(
            records(&m.answers),
            ["x.y.apps.corp.test. 300 A 192.0.2.90"]
        );

        // Below a delegation: a referral, not authoritative, with glue.
        let m = query(dns.addr, "host.lab.corp.test.", RecordType::A, transport).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(!m.metadata.authoritative, "a referral has no AA");
        assert!(m.answers.is_empty());
        assert_eq!(
            records(&m.authorities),
            ["lab.corp.test. 300 NS ns.lab.corp.test."]
        );
        assert_eq!(
            additional_addresses(&m),
            ["ns.lab.corp.test. 192.0.2.200"],
            "glue for the delegation's name server"
        );
    }
    // The live zone beside it is untouched.
    let m = wait_answers(
        dns.addr,
        "web.services.local.",
        RecordType::A,
        1,
        std::time::Duration::from_secs(10),
    )
    .await;
    assert_eq!(addresses(&m), ["10.0.0.7"]);
}
