//! Table-driven tests of `rrsets`: contributions and the RRsets they build.

use super::*;
use crate::service::parse_value;
use hickory_proto::rr::rdata::{MX, TXT};
use hickory_proto::rr::Name;

/// The records of one name built from `(owner, value, roles)` contributions, as text.
fn build(contributions: &[(&str, &str, Roles)]) -> Vec<String> {
    let mut builder = RecordsBuilder::default();
    for (owner, value, roles) in contributions {
        let owner_wire = wire_name(&Name::from_ascii(owner).expect("owner"));
        let registration = parse_value(value.as_bytes()).expect("value");
        builder.add(&|| owner_wire.to_vec(), &registration, *roles, 5);
    }
    let name = Name::from_ascii("x.services.local.").expect("name");
    builder
        .finish()
        .iter()
        .flat_map(|set| {
            let mut lines: Vec<String> = set
                .as_ref()
                .records(&name)
                .iter()
                .map(|r| format!("{} {} {}", r.ttl, r.record_type(), r.data))
                .collect();
            lines.sort();
            lines
        })
        .collect()
}

/// The shortcut for one contributor gives what the builder gives, or leaves it to it.
#[test]
fn single_contributors_build_as_the_builder_does() {
    let owner_wire = wire_name(&Name::from_ascii("n1.web.services.local.").expect("owner"));
    let owner = || owner_wire.to_vec();
    let values = [
        r#"{"IP":"10.0.0.1"}"#,
        r#"{"IP":"10.0.0.1","ttl":30}"#,
        r#"{"ip":"2001:db8::1"}"#,
        r#"{"IP":"10.0.0.1","port":80}"#,
        r#"{"IP":"10.0.0.1","txt":["a"]}"#,
        r#"{"host":"db.example.com"}"#,
    ];
    let roles = [
        Roles::OWNER,
        Roles::SERVICE,
        Roles::OWNER.with(Roles::SERVICE),
        Roles::PTR,
        Roles::SRV,
        Roles::default(),
        Roles::OWNER.with(Roles::PTR),
    ];
    let mut shortcuts = 0;
    for value in values {
        let reg = parse_value(value.as_bytes()).expect("value");
        for role in roles {
            let Some(fast) = single_rrsets(&owner, &reg, role, 5) else {
                continue;
            };
            shortcuts += 1;
            let mut builder = RecordsBuilder::default();
            builder.add(&owner, &reg, role, 5);
            let fast: Vec<RRset> = fast.into_iter().collect();
            assert_eq!(fast, builder.finish(), "{value} {role:?}");
        }
    }
    assert_eq!(shortcuts, 15);
}

/// No field of a registration is lost on the fast path: each field, set alone on a plain
/// address, gives the builder's records through `single_rrsets` or keeps it off that path.
/// The registrations are written out field by field (no `..`): a new field does not compile
/// here until it is given a value to test.
#[test]
fn no_field_is_lost_on_the_fast_path() {
    let owner_wire = wire_name(&Name::from_ascii("n1.web.services.local.").expect("owner"));
    let owner = || owner_wire.to_vec();
    let ip: IpAddr = "10.0.0.1".parse().expect("ip");
    let plain = || Registration {
        target: Target::Addr(ip),
        port: None,
        priority: 10,
        weight: 10,
        ttl: None,
        txt: Vec::new(),
        endpoints: Vec::new(),
        tags: Vec::new(),
        zone: None,
    };
    let endpoint = crate::service::Endpoint {
        scheme: "grpc".into(),
        port: 9000,
    };
    let each_field_set: Vec<(&str, Registration)> = vec![
        (
            "target",
            Registration {
                target: Target::Host(Box::new(Name::from_ascii("db.example.com.").expect("host"))),
                ..plain()
            },
        ),
        (
            "port",
            Registration {
                port: Some(80),
                ..plain()
            },
        ),
        (
            "priority",
            Registration {
                priority: 1,
                ..plain()
            },
        ),
        (
            "weight",
            Registration {
                weight: 1,
                ..plain()
            },
        ),
        (
            "ttl",
            Registration {
                ttl: Some(30),
                ..plain()
            },
        ),
        (
            "txt",
            Registration {
                txt: vec!["a=b".into()],
                ..plain()
            },
        ),
        (
            "endpoints",
            Registration {
                endpoints: vec![endpoint],
                ..plain()
            },
        ),
        (
            "tags",
            Registration {
                tags: vec!["canary".into()],
                ..plain()
            },
        ),
        (
            "zone",
            Registration {
                zone: Some("eu-1a".into()),
                ..plain()
            },
        ),
    ];
    // Nine fields, one case each: a new field breaks this destructuring, and the count.
    let Registration {
        target: _,
        port: _,
        priority: _,
        weight: _,
        ttl: _,
        txt: _,
        endpoints: _,
        tags: _,
        zone: _,
    } = plain();
    assert_eq!(
        each_field_set.len(),
        9,
        "one case per field of Registration"
    );
    let roles = [
        Roles::OWNER,
        Roles::SERVICE,
        Roles::OWNER.with(Roles::SERVICE),
        Roles::PTR,
        Roles::SRV,
        Roles::OWNER.with(Roles::SRV),
    ];
    for (field, reg) in &each_field_set {
        for role in roles {
            let mut builder = RecordsBuilder::default();
            builder.add(&owner, reg, role, 5);
            let built = builder.finish();
            if let Some(fast) = single_rrsets(&owner, reg, role, 5) {
                let fast: Vec<RRset> = fast.into_iter().collect();
                assert_eq!(fast, built, "field {field}, roles {role:?}");
            }
        }
    }
}

#[test]
fn contributions_become_rrsets() {
    let (owner, service, srv, ptr) = (Roles::OWNER, Roles::SERVICE, Roles::SRV, Roles::PTR);
    let n1 = "n1.web.services.local.";
    let n2 = "n2.web.services.local.";
    type Case<'a> = (&'a [(&'a str, &'a str, Roles)], &'a [&'a str]);
    let cases: &[Case] = &[
        // The original format: one A.
        (
            &[(n1, r#"{"IP":"192.168.1.26"}"#, owner)],
            &["5 A 192.168.1.26"],
        ),
        // One address once; the smallest TTL for the set; SRV in ANY order after A.
        (
            &[
                (n1, r#"{"IP":"10.0.0.1","port":80,"ttl":30}"#, service),
                (n2, r#"{"IP":"10.0.0.1","port":81,"txt":["v=1"]}"#, service),
            ],
            &[
                "5 A 10.0.0.1",
                "5 SRV 10 10 80 n1.web.services.local.",
                "5 SRV 10 10 81 n2.web.services.local.",
                "5 TXT v=1",
            ],
        ),
        // IPv6, priority and weight, value TTL.
        (
            &[(
                n1,
                r#"{"ip":"2001:db8::1","port":53,"priority":1,"weight":7,"ttl":30}"#,
                srv,
            )],
            &["30 SRV 1 7 53 n1.web.services.local."],
        ),
        (
            &[(n1, r#"{"ip":"2001:db8::1","ttl":30}"#, owner)],
            &["30 AAAA 2001:db8::1"],
        ),
        // A host name is a CNAME where nothing else is, and the SRV target.
        (
            &[(n1, r#"{"host":"db.example.com"}"#, owner)],
            &["5 CNAME db.example.com."],
        ),
        (
            &[(
                n1,
                r#"{"host":"db.example.com","port":5432}"#,
                owner.with(service),
            )],
            &["5 SRV 10 10 5432 db.example.com."],
        ),
        // A reverse name points at every instance holding the address.
        (
            &[
                (n1, r#"{"IP":"10.0.0.1"}"#, ptr),
                (n2, r#"{"IP":"10.0.0.1"}"#, ptr),
            ],
            &[
                "5 PTR n1.web.services.local.",
                "5 PTR n2.web.services.local.",
            ],
        ),
    ];
    for (contributions, want) in cases {
        assert_eq!(build(contributions), *want, "{contributions:?}");
    }
}

/// Found by the key_value fuzzer: a zone file's TXT at a name that a registration gives
/// TXT too made two TXT sets, and answers carried only the first.
#[test]
fn zone_file_records_join_the_live_set_of_their_type() {
    let owner = Name::from_ascii("gateway.services.local.").expect("owner");
    let record = |data: RData| Record::from_rdata(owner.clone(), 60, data);
    let mut builder = RecordsBuilder::default();
    builder.add_static(&record(RData::TXT(TXT::new(vec!["static=true".into()]))));
    builder.add_static(&record(RData::TXT(TXT::new(vec!["live".into()]))));
    builder.add_static(&record(RData::MX(MX::new(10, owner.clone()))));
    let live = parse_value(br#"{"IP":"10.0.0.1","txt":["live"]}"#).expect("value");
    let owner_wire = wire_name(&owner);
    builder.add(&|| owner_wire.to_vec(), &live, Roles::OWNER, 5);
    let sets = builder.finish();
    let types: Vec<RecordType> = sets.iter().map(|s| s.rtype.into()).collect();
    assert_eq!(types, [RecordType::A, RecordType::TXT, RecordType::MX]);
    let mut txt: Vec<String> = sets[1]
        .as_ref()
        .records(&owner)
        .iter()
        .map(|r| format!("{} {}", r.ttl, r.data))
        .collect();
    txt.sort();
    // One record per distinct text, at the smallest TTL of the set.
    assert_eq!(txt, ["5 live", "5 static=true"]);
}
