//! Table-driven tests of `service`: values accepted and rejected.

use super::*;

fn ip(s: &str) -> Target {
    Target::Addr(s.parse().expect("ip"))
}

#[test]
fn accepts_valid_values() {
    let base = Registration {
        target: ip("192.168.1.26"),
        port: None,
        priority: DEFAULT_PRIORITY,
        weight: DEFAULT_WEIGHT,
        ttl: None,
        txt: vec![],
        endpoints: vec![],
        tags: vec![],
        zone: None,
    };
    let cases: Vec<(&str, Registration)> = vec![
        (r#"{"IP":"192.168.1.26"}"#, base.clone()),
        (r#"{"ip":"192.168.1.26","extra":[1,2]}"#, base.clone()),
        (
            r#"{"ip":"2001:db8::1"}"#,
            Registration {
                target: ip("2001:db8::1"),
                ..base.clone()
            },
        ),
        (r#"{"host":"192.168.1.26"}"#, base.clone()),
        (
            r#"{"host":"db.example.com"}"#,
            Registration {
                target: Target::Host(Box::new(Name::from_ascii("db.example.com.").expect("name"))),
                ..base.clone()
            },
        ),
        (
            r#"{"IP":"192.168.1.26","port":8080,"priority":1,"weight":5,"ttl":30,
                "txt":{"version":"2"}}"#,
            Registration {
                port: Some(8080),
                priority: 1,
                weight: 5,
                ttl: Some(30),
                txt: vec!["version=2".into()],
                ..base.clone()
            },
        ),
        (
            r#"{"IP":"192.168.1.26","txt":["a=b","c"]}"#,
            Registration {
                txt: vec!["a=b".into(), "c".into()],
                ..base.clone()
            },
        ),
        (
            r#"{"IP":"192.168.1.26","tags":["canary","v2"],"zone":" eu-west-1a "}"#,
            Registration {
                tags: vec!["canary".into(), "v2".into()],
                zone: Some("eu-west-1a".into()),
                ..base.clone()
            },
        ),
        (
            r#"{"IP":"192.168.1.26","tags":"canary","zone":""}"#,
            Registration {
                tags: vec!["canary".into()],
                ..base.clone()
            },
        ),
    ];
    for (json, want) in cases {
        assert_eq!(parse_value(json.as_bytes()), Ok(want), "{json}");
    }
}

/// Tags that are DNS labels name lookups, lowercase and once; `tcp`/`udp` and other tags do
/// not, and stay in the registration.
#[test]
fn dns_tags_are_labels() {
    let mut reg = Registration::new(ip("10.0.0.1"));
    reg.tags = [
        "Canary", "v2", "canary", "env=prod", "tcp", "UDP", "", "a_b", "x-1",
    ]
    .into_iter()
    .map(Box::from)
    .collect();
    reg.tags.push("l".repeat(63).into());
    reg.tags.push("m".repeat(62).into());
    assert_eq!(reg.dns_tags(), ["canary", "v2", "x-1", &"m".repeat(62)]);
    assert_eq!(reg.tags.len(), 11, "every tag is kept");
}

/// The shortcut for `{"IP":…}` answers exactly as the JSON parser does, or leaves the value
/// to it.
#[test]
fn plain_addresses_parse_as_json_does() {
    let cases = [
        r#"{"IP":"10.0.0.1"}"#,
        r#"{"ip":"2001:db8::1"}"#,
        r#"{"IP":" 10.0.0.1 "}"#,
        r#"{"IP":"10.0.0.256"}"#,
        r#"{"IP":""}"#,
        r#"{"IP":"10.0.0.1","port":80}"#,
        r#"{"IP":"10.0.0.1","IP":"10.0.0.2"}"#,
        r#"{"IP":"10.0.0.\u0031"}"#,
        r#"{"IP":"10.0.0.1"} "#,
        r#"{"Ip":"10.0.0.1"}"#,
    ];
    for json in cases {
        let fast = plain_address(json.as_bytes());
        let full = parse_json(json.as_bytes());
        if let Some(ip) = fast {
            assert_eq!(full, Ok(Registration::new(Target::Addr(ip))), "{json}");
        }
        assert_eq!(parse_value(json.as_bytes()), full, "{json}");
    }
}

#[test]
fn rejects_invalid_values() {
    let cases: &[(&str, &str)] = &[
        ("{not json", "not JSON"),
        (r#""192.168.1.26""#, "JSON object"),
        (r#"{"port":80}"#, "no \"IP\""),
        (r#"{"IP":"300.1.1.1"}"#, "not an IPv4"),
        (r#"{"IP":7}"#, "expected a string"),
        (r#"{"IP":"10.0.0.1","port":70000}"#, "above 65535"),
        (r#"{"IP":"10.0.0.1","port":"80"}"#, "expected a number"),
        (r#"{"IP":"10.0.0.1","port":-1}"#, "whole number"),
        (r#"{"IP":"10.0.0.1","ttl":4294967295}"#, "above"),
        (r#"{"IP":"10.0.0.1","txt":5}"#, "object or a list"),
        (r#"{"IP":"10.0.0.1","txt":{"a":1}}"#, "expected a string"),
        (r#"{"host":"bad..name"}"#, "not a host name"),
        (r#"{"IP":"10.0.0.1","tags":[1]}"#, "expected a string"),
        (r#"{"IP":"10.0.0.1","tags":{"a":"b"}}"#, "list of strings"),
        (r#"{"IP":"10.0.0.1","zone":3}"#, "expected a string"),
    ];
    for (json, needle) in cases {
        let err = parse_value(json.as_bytes()).expect_err(json).to_string();
        assert!(err.contains(needle), "{json}: {err}");
    }
}
