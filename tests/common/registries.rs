//! Helpers of the registry tests: etcd-dns serving `--registry` sources, writing keys as
//! the frameworks do (with or without a lease), waiting for names to change.

use std::time::Duration;

use etcd_client::{Client, PutOptions};
use etcd_dns::server;
use etcd_dns::sources::RegistrySpec;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};

use super::*;

/// How long a change may take to show in DNS in these tests (it takes milliseconds).
pub const LIMIT: Duration = Duration::from_secs(5);

/// etcd-dns serving `registries` (`FORMAT=PREFIX[@ZONE]`), ready once every zone answers.
pub async fn serve(etcd: &Etcd, registries: &[&str]) -> DnsServer {
    serve_at(&etcd.endpoint, registries).await
}

/// [`serve`] against the etcd at `endpoint`.
pub async fn serve_at(endpoint: &str, registries: &[&str]) -> DnsServer {
    let specs: Vec<RegistrySpec> = registries.iter().map(|s| s.parse().expect(s)).collect();
    let mut zones: Vec<String> = specs
        .iter()
        .map(|s| {
            s.zone
                .as_ref()
                .map_or("services.local.".into(), |z| z.to_ascii())
        })
        .collect();
    zones.dedup();
    // As the binary assembles them: a zone file for a registry's zone serves its statics.
    let dns = DnsServer::start_with(endpoint, |c| {
        let files = std::mem::take(&mut c.catalog.zone_files);
        let (live, files) = server::live_zones(test_zone(), &specs, files).expect("registries");
        (c.live, c.catalog.zone_files) = (live, files);
    })
    .await;
    for zone in zones {
        wait_rcode(
            dns.addr,
            &zone,
            RecordType::SOA,
            ResponseCode::NoError,
            LIMIT,
        )
        .await;
    }
    dns
}

/// A lease of `ttl` seconds.
pub async fn grant(client: &mut Client, ttl: i64) -> i64 {
    client
        .lease_grant(ttl, None)
        .await
        .expect("lease grant")
        .id()
}

/// Puts `key` = `value`, bound to `lease` when given.
pub async fn put(client: &mut Client, key: &str, value: &str, lease: Option<i64>) {
    let options = lease.map(|id| PutOptions::new().with_lease(id));
    client.put(key, value, options).await.expect("etcd put");
}

/// Revokes `lease`: every key bound to it is deleted.
pub async fn revoke(client: &mut Client, lease: i64) {
    client.lease_revoke(lease).await.expect("lease revoke");
}

/// Waits until `name` answers exactly the addresses `want` (A and AAAA, sorted).
pub async fn wait_addresses(dns: &DnsServer, name: &str, want: &[&str]) {
    let what = format!("{name} → {want:?}");
    eventually(&what, LIMIT, || async {
        let mut got = lookup_a(dns.addr, name, Transport::Udp).await;
        got.extend(lookup_aaaa(dns.addr, name, Transport::Udp).await);
        got.sort();
        (got == want).then_some(())
    })
    .await;
}

/// Waits until `name` is gone: NXDOMAIN.
pub async fn wait_gone(dns: &DnsServer, name: &str) {
    wait_rcode(dns.addr, name, RecordType::A, ResponseCode::NXDomain, LIMIT).await;
}

/// The SRV records of `name` once there are `count`, as "priority weight port target".
pub async fn srv(dns: &DnsServer, name: &str, count: usize) -> Vec<String> {
    srv_records(&wait_answers(dns.addr, name, RecordType::SRV, count, LIMIT).await)
}

/// The SOA serial of `zone`.
pub async fn serial(dns: &DnsServer, zone: &str) -> u32 {
    let answer = query(dns.addr, zone, RecordType::SOA, Transport::Udp).await;
    match answer.answers.first().map(|r| &r.data) {
        Some(RData::SOA(soa)) => soa.serial,
        other => panic!("no SOA at {zone}: {other:?}"),
    }
}
