//! What the format tests share (each format's cases, the values its framework writes, sit
//! beside its code), the native format's cases, and the names each shape lays out.

use hickory_proto::rr::Name;

use super::Format;
use crate::records::instance_names;
use crate::testing::{letters, name, text};
use crate::wire::wire_name;

/// What `format` makes of `key` = `value` under `prefix` in `zone`, as one line: "ignored",
/// "invalid: <reason>", or the owner name, the target (`:port`), endpoints, SRV priority and
/// weight when not 10/10, TTL, TXT, tags and zone. Also checks that the key alone gives the same
/// placement again.
fn read(format: Format, prefix: &str, zone: &str, key: &str, value: &str) -> String {
    let zone: Name = name(zone);
    let parsed = format.parse(prefix, &zone, key.as_bytes(), value.as_bytes());
    let (placement, reg) = match parsed {
        Ok(None) => return "ignored".into(),
        Err(e) => return format!("invalid: {e}"),
        Ok(Some(entry)) => entry,
    };
    let again = format.place(prefix, zone.num_labels() as usize, key);
    assert_eq!(again, placement, "{key}: placement from the key alone");
    let mut line = format!(
        "{} {}",
        text(&placement.owner_name(&wire_name(&zone))),
        reg.target
    );
    if let Some(port) = reg.port {
        line += &format!(":{port}");
    }
    for endpoint in &reg.endpoints {
        line += &format!(" {}={}", endpoint.scheme, endpoint.port);
    }
    if (reg.priority, reg.weight) != (10, 10) {
        line += &format!(" srv={}/{}", reg.priority, reg.weight);
    }
    if let Some(ttl) = reg.ttl {
        line += &format!(" ttl={ttl}");
    }
    if !reg.txt.is_empty() {
        line += &format!(" txt={}", reg.txt.join(";"));
    }
    if !reg.tags.is_empty() {
        line += &format!(" tags={}", reg.tags.join(","));
    }
    if let Some(zone) = &reg.zone {
        line += &format!(" zone={zone}");
    }
    line
}

/// (key, value, what it reads as: a full line, or "invalid: " and a part of the reason)
type Case<'a> = (&'a str, &'a str, &'a str);

pub(super) fn check(format: Format, prefix: &str, zone: &str, cases: &[Case]) {
    for (key, value, want) in cases {
        let got = read(format, prefix, zone, key, value);
        match want.strip_prefix("invalid: ") {
            Some(needle) => assert!(
                got.starts_with("invalid: ") && got.contains(needle),
                "{format} {key} = {value}: got {got:?}, want {want:?}"
            ),
            None => assert_eq!(got, *want, "{format} {key} = {value}"),
        }
    }
}

pub(super) const ZONE: &str = "services.local.";

#[test]
fn native_is_the_spec_format() {
    check(
        Format::Native,
        "services/",
        ZONE,
        &[
            (
                "services/s-test",
                r#"{"IP":"192.168.1.26"}"#,
                "s-test.services.local. 192.168.1.26",
            ),
            (
                "services/web/n1",
                r#"{"ip":"10.0.0.1","port":80,"txt":{"v":"1"}}"#,
                "n1.web.services.local. 10.0.0.1:80 txt=v=1",
            ),
            (
                "services/web/n2",
                r#"{"ip":"10.0.0.2","tags":["canary","env=prod"],"zone":"eu-1a"}"#,
                "n2.web.services.local. 10.0.0.2 tags=canary,env=prod zone=eu-1a",
            ),
            (
                "services/a/b/c",
                r#"{"IP":"10.0.0.1"}"#,
                "invalid: too many '/'",
            ),
        ],
    );
}

#[test]
fn formats_lay_out_their_names() {
    let zone = name(ZONE);
    let zone_wire = wire_name(&zone);
    type Names<'a> = &'a [(&'a str, &'a str)];
    let cases: &[(Format, &str, &str, &str, Names)] = &[
        (
            Format::Kratos,
            "/microservices/",
            "/microservices/helloworld/i1",
            r#"{"endpoints":["grpc://10.0.0.7:9000","http://10.0.0.7:8000"]}"#,
            &[
                ("i1.helloworld.services.local.", "O"),
                ("helloworld.services.local.", "S"),
                ("_grpc._tcp.helloworld.services.local.", "E"),
                ("_http._tcp.helloworld.services.local.", "E"),
                ("_tcp.helloworld.services.local.", "-"),
                ("7.0.0.10.in-addr.arpa.", "P"),
            ],
        ),
        (
            Format::Skydns,
            "/skydns/",
            "/skydns/local/services/east/web/x1",
            r#"{"host":"10.0.0.1","port":80}"#,
            &[
                ("x1.web.east.services.local.", "OS"),
                ("web.east.services.local.", "S"),
                ("east.services.local.", "S"),
                ("1.0.0.10.in-addr.arpa.", "P"),
            ],
        ),
    ];
    for (format, prefix, key, value, want) in cases {
        let (placement, reg) = format
            .parse(prefix, &zone, key.as_bytes(), value.as_bytes())
            .expect(key)
            .expect(key);
        let mut got: Vec<(String, String)> = instance_names(&placement, &reg, &zone_wire)
            .into_iter()
            .map(|(n, roles)| (text(&n), letters(roles)))
            .collect();
        let mut want: Vec<(String, String)> = want
            .iter()
            .map(|(n, r)| (n.to_string(), r.to_string()))
            .collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{key}");
    }
}

#[test]
fn format_names_round_trip() {
    for format in Format::ALL {
        assert_eq!(format.name().parse::<Format>(), Ok(format));
    }
    assert!("consul"
        .parse::<Format>()
        .expect_err("unknown")
        .contains("etcd-naming"));
}
