//! Table tests: each framework's keys and values, as its own code and tests write them.

use hickory_proto::rr::Name;

use super::Format;
use crate::records::{instance_names, Roles};
use crate::testing::{name, text};
use crate::wire::wire_name;

/// What `format` makes of `key` = `value` under `prefix` in `zone`, as one line: "ignored",
/// "invalid: <reason>", or the owner name, the target (`:port`), endpoints, SRV priority and
/// weight when not 10/10, TTL and TXT. Also checks that the key alone gives the same
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
    line
}

/// (key, value, what it reads as: a full line, or "invalid: " and a part of the reason)
type Case<'a> = (&'a str, &'a str, &'a str);

fn check(format: Format, prefix: &str, zone: &str, cases: &[Case]) {
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

const ZONE: &str = "services.local.";

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
                "services/a/b/c",
                r#"{"IP":"10.0.0.1"}"#,
                "invalid: too many '/'",
            ),
        ],
    );
}

#[test]
fn etcd_naming_endpoints() {
    // endpoints.Manager.AddEndpoint(target+"/"+key, Endpoint{Addr}) → internal.Update's JSON.
    check(
        Format::EtcdNaming,
        "foo/bar/",
        ZONE,
        &[
            (
                "foo/bar/my-service/e1",
                r#"{"Op":0,"Addr":"10.0.0.1:50051","Metadata":null}"#,
                "e1.my-service.services.local. 10.0.0.1:50051",
            ),
            // The old GRPCResolver: target + "/" + addr.
            (
                "foo/bar/my-service/10.0.0.2:50051",
                r#"{"Op":0,"Addr":"10.0.0.2:50051","Metadata":""}"#,
                "10-0-0-2-50051.my-service.services.local. 10.0.0.2:50051",
            ),
            (
                "foo/bar/my-service/v6",
                r#"{"Op":0,"Addr":"[2001:db8::1]:50051"}"#,
                "v6.my-service.services.local. 2001:db8::1:50051",
            ),
            (
                "foo/bar/my-service/local",
                r#"{"Addr":"localhost:50051","Metadata":{"weight":2}}"#,
                "local.my-service.services.local. localhost.:50051",
            ),
            (
                "foo/bar/my-service/e3",
                r#"{"Op":0,"Addr":"10.0.0.3"}"#,
                "e3.my-service.services.local. 10.0.0.3",
            ),
            (
                "foo/bar/my-service/e4",
                r#"{"Op":1,"Addr":"10.0.0.4:1"}"#,
                "invalid: not 0 (Add)",
            ),
            ("foo/bar/my-service/e5", r#"{"Op":0}"#, "invalid: \"Addr\""),
            (
                "foo/bar/my-service/e6",
                r#"{"Addr":":50051"}"#,
                "invalid: no host",
            ),
            (
                "foo/bar/my-service/e7",
                r#"{"Addr":"10.0.0.1:65536"}"#,
                "invalid: port",
            ),
            (
                "foo/bar/my-service/e8",
                "10.0.0.1:50051",
                "invalid: not JSON",
            ),
            (
                "foo/bar/",
                r#"{"Addr":"10.0.0.1:1"}"#,
                "invalid: <service>/<instance>",
            ),
        ],
    );
}

#[test]
fn go_zero_discov() {
    // publisher.register: "<Key>/<lease id>" (or "<Key>/<ID>") = figureOutListenOn(ListenOn).
    check(
        Format::GoZero,
        "",
        ZONE,
        &[
            (
                "user.rpc/7587867307385737483",
                "10.0.0.5:8080",
                "7587867307385737483.user.rpc.services.local. 10.0.0.5:8080",
            ),
            // Re-registered after a lost lease: a new lease id, so a new key and instance.
            (
                "user.rpc/7587867307385737499",
                "10.0.0.5:8080",
                "7587867307385737499.user.rpc.services.local. 10.0.0.5:8080",
            ),
            (
                "discov/order.rpc/3",
                "10.0.0.6:9090",
                "3.order.rpc.services.local. 10.0.0.6:9090",
            ),
            (
                "user.rpc/42",
                " user-svc:8080\n",
                "42.user.rpc.services.local. user-svc.:8080",
            ),
            ("user.rpc/43", "10.0.0.5:99999", "invalid: port"),
            ("user.rpc/44", "", "invalid: no host"),
            ("user.rpc", "10.0.0.5:8080", "invalid: <service>/<instance>"),
            ("user rpc/45", "10.0.0.5:8080", "invalid: invalid label"),
        ],
    );
}

#[test]
fn kratos_registry() {
    // registry.go: "/microservices/<name>/<id>" = json of registry.ServiceInstance.
    let id = "a9b3e1b0-8e0f-11ee-b9d1-0242ac120002";
    let key = format!("/microservices/helloworld/{id}");
    let value = format!(
        r#"{{"id":"{id}","name":"helloworld","version":"v1.0.0","metadata":{{"region":"sh"}},"endpoints":["grpc://10.0.0.7:9000","http://10.0.0.7:8000"]}}"#
    );
    let want = format!(
        "{id}.helloworld.services.local. 10.0.0.7 grpc=9000 http=8000 txt=version=v1.0.0;region=sh"
    );
    check(
        Format::Kratos,
        "/microservices/",
        ZONE,
        &[
            (&key, &value, &want),
            // The older endpoint form, with a query.
            (
                "/microservices/helloworld/1",
                r#"{"id":"1","name":"helloworld","version":"","metadata":null,"endpoints":["grpcs://10.0.0.8:9000?isSecure=true"]}"#,
                "1.helloworld.services.local. 10.0.0.8 grpcs=9000",
            ),
            (
                "/microservices/helloworld/2",
                r#"{"endpoints":[]}"#,
                "invalid: no address",
            ),
            (
                "/microservices/helloworld/3",
                r#"{"id":"3"}"#,
                "invalid: \"endpoints\"",
            ),
            (
                "/microservices/helloworld/4",
                r#"{"endpoints":["grpc://10.0.0.7"]}"#,
                "invalid: no port",
            ),
            (
                "/microservices/helloworld/5",
                r#"{"endpoints":["10.0.0.7:9000"]}"#,
                "invalid: not a URL",
            ),
        ],
    );
}

#[test]
fn go_micro_registry() {
    // etcd.go: nodePath = /micro/registry/<service>/<node id>, value = json of the Service with
    // one node; node id = server name + "-" + uuid.
    let node = "helloworld-f6d5c9b4-7f5a-4a8e-9a8c-2b1e6f3d9c11";
    let key = format!("/micro/registry/helloworld/{node}");
    let value = format!(
        r#"{{"name":"helloworld","version":"latest","metadata":null,"endpoints":[{{"name":"Helloworld.Call","request":{{"name":"Request","type":"Request","values":null}},"response":{{"name":"Response","type":"Response","values":null}},"metadata":{{}}}}],"nodes":[{{"id":"{node}","address":"10.0.0.8:8080","metadata":{{"broker":"http","protocol":"mucp","registry":"etcd","server":"mucp","transport":"http"}}}}]}}"#
    );
    let want = format!(
        "{node}.helloworld.services.local. 10.0.0.8:8080 txt=version=latest;broker=http;protocol=mucp;registry=etcd;server=mucp;transport=http"
    );
    check(
        Format::GoMicro,
        "/micro/registry/",
        ZONE,
        &[
            (&key, &value, &want),
            // A dotted service name; the node id's dots become dashes in its label.
            (
                "/micro/registry/go.micro.srv.greeter/go.micro.srv.greeter-1",
                r#"{"name":"go.micro.srv.greeter","version":"","nodes":[{"id":"go.micro.srv.greeter-1","address":"10.0.0.9:9090","metadata":null}]}"#,
                "go-micro-srv-greeter-1.go.micro.srv.greeter.services.local. 10.0.0.9:9090",
            ),
            (
                "/micro/registry/helloworld/n2",
                r#"{"nodes":[]}"#,
                "invalid: no node",
            ),
            (
                "/micro/registry/helloworld/n3",
                r#"{"nodes":[{"id":"n3"}]}"#,
                "invalid: \"address\"",
            ),
        ],
    );
}

#[test]
fn skydns_as_coredns_reads_it() {
    // CoreDNS's etcd plugin tests (msg.Service as JSON) and external-dns's provider.
    check(
        Format::Skydns,
        "/skydns/",
        "skydns.test.",
        &[
            (
                "/skydns/test/skydns/east/web/x1",
                r#"{"host":"10.0.0.1"}"#,
                "x1.web.east.skydns.test. 10.0.0.1 srv=10/100",
            ),
            (
                "/skydns/test/skydns/bar/x",
                r#"{"host":"192.168.0.1","port":80,"targetstrip":1}"#,
                "x.bar.skydns.test. 192.168.0.1:80 srv=10/100",
            ),
            (
                "/skydns/test/skydns/bar/y",
                r#"{"host":"bar.skydns.local","port":443}"#,
                "y.bar.skydns.test. bar.skydns.local.:443 srv=10/100",
            ),
            (
                "/skydns/test/skydns/region5/server1/100",
                r#"{"host":"server1","weight":130}"#,
                "100.server1.region5.skydns.test. server1. srv=10/130",
            ),
            (
                "/skydns/test/skydns/region5/server4/104",
                r#"{"host":"server4","priority":30}"#,
                "104.server4.region5.skydns.test. server4. srv=30/100",
            ),
            (
                "/skydns/test/skydns/txt/a1",
                r#"{"text":"abc"}"#,
                "a1.txt.skydns.test. - srv=10/100 txt=abc",
            ),
            (
                "/skydns/test/skydns/ttl",
                r#"{"host":"10.0.0.2","ttl":360}"#,
                "ttl.skydns.test. 10.0.0.2 srv=10/100 ttl=360",
            ),
            (
                "/skydns/test/skydns/k8s/svc",
                r#"{"host":"10.0.0.3","port":-1}"#,
                "svc.k8s.skydns.test. 10.0.0.3 srv=10/100",
            ),
            // external-dns: a random last label, targetstrip 1, the owner in text (not served
            // as TXT next to an address, as CoreDNS does).
            (
                "/skydns/test/skydns/www/1a2b3c4d",
                r#"{"host":"10.0.0.4","text":"\"heritage=external-dns,external-dns/owner=default\"","targetstrip":1}"#,
                "1a2b3c4d.www.skydns.test. 10.0.0.4 srv=10/100",
            ),
            // A host name with text is TXT, not CNAME (CoreDNS's HostType).
            (
                "/skydns/test/skydns/both",
                r#"{"host":"x.example.com","text":"t"}"#,
                "both.skydns.test. - srv=10/100 txt=t",
            ),
            (
                "/skydns/test/skydns/UPPER",
                r#"{"host":"127.0.0.1","port":443}"#,
                "upper.skydns.test. 127.0.0.1:443 srv=10/100",
            ),
            // Another zone's entry is not ours.
            (
                "/skydns/com/example/www",
                r#"{"host":"10.0.0.5"}"#,
                "ignored",
            ),
            (
                "/skydns/test/skydnsx/www",
                r#"{"host":"10.0.0.5"}"#,
                "ignored",
            ),
            (
                "/skydns/test/skydns",
                r#"{"host":"10.0.0.6"}"#,
                "invalid: zone apex",
            ),
            (
                "/skydns/test/skydns/*/x",
                r#"{"host":"10.0.0.7"}"#,
                "invalid: invalid label",
            ),
            (
                "/skydns/test/skydns/empty",
                r#"{"port":80}"#,
                "invalid: no host and no text",
            ),
            (
                "/skydns/test/skydns/big",
                r#"{"host":"10.0.0.8","port":70000}"#,
                "invalid: above 65535",
            ),
        ],
    );
}

#[test]
fn rpcx_plugin() {
    // EtcdV3RegisterPlugin.Register: two marker keys, then the service address key.
    check(
        Format::Rpcx,
        "/rpcx_test/",
        ZONE,
        &[
            ("/rpcx_test/Arith", "Arith", "ignored"),
            ("/rpcx_test/Arith/tcp@127.0.0.1:8972", "", "tcp-127-0-0-1-8972.arith.services.local. 127.0.0.1:8972"),
            (
                "/rpcx_test/Arith/tcp@10.0.0.10:8972",
                "group=test&state=active",
                "tcp-10-0-0-10-8972.arith.services.local. 10.0.0.10:8972 txt=group=test;state=active",
            ),
            ("/rpcx_test/Arith/quic@10.0.0.11:1234", "", "quic-10-0-0-11-1234.arith.services.local. 10.0.0.11:1234"),
            // rpcx's way to take a server out of rotation.
            ("/rpcx_test/Arith/tcp@10.0.0.12:8972", "state=inactive", "ignored"),
            ("/rpcx_test/Arith/unix@/tmp/rpcx.sock", "", "ignored"),
            ("/rpcx_test/Arith/pipe@x:1", "", "invalid: not a network"),
            ("/rpcx_test/Arith/tcp@10.0.0.13", "", "tcp-10-0-0-13.arith.services.local. 10.0.0.13"),
        ],
    );
}

#[test]
fn dubbo_go_application_level() {
    // service_discovery.go: /services/<app>/<host>:<port> = json of DefaultServiceInstance.
    let value = |enable: bool, healthy: bool| {
        format!(
            r#"{{"ID":"10.0.0.1:20000","ServiceName":"dubbo-go-app","Host":"10.0.0.1","Port":20000,"Enable":{enable},"Healthy":{healthy},"Metadata":{{"dubbo.endpoints":"[{{\"port\":20000,\"protocol\":\"tri\"}}]","dubbo.metadata.revision":"a1b2c3","dubbo.metadata.storage-type":"local"}},"ServiceMetadata":null,"Address":"10.0.0.1:20000","GroupName":"","Tag":""}}"#
        )
    };
    let up = value(true, true);
    let disabled = value(false, true);
    let unhealthy = value(true, false);
    check(
        Format::Dubbo,
        "/services/",
        ZONE,
        &[
            (
                "/services/dubbo-go-app/10.0.0.1:20000",
                &up,
                "10-0-0-1-20000.dubbo-go-app.services.local. 10.0.0.1:20000",
            ),
            (
                "/services/dubbo-go-app/10.0.0.1:20000",
                &disabled,
                "ignored",
            ),
            (
                "/services/dubbo-go-app/10.0.0.1:20000",
                &unhealthy,
                "ignored",
            ),
            (
                "/services/org.apache.demo/10.0.0.2:20880",
                r#"{"Port":20880}"#,
                "10-0-0-2-20880.org.apache.demo.services.local. 10.0.0.2:20880",
            ),
            (
                "/services/dubbo-go-app/10.0.0.3:1",
                r#"{"Host":"10.0.0.3","Enable":"yes"}"#,
                "invalid: true or false",
            ),
            (
                "/services/dubbo-go-app/10.0.0.3:2",
                r#"{"Host":"10.0.0.3","Port":"2"}"#,
                "invalid: expected a number",
            ),
        ],
    );
}

#[test]
fn formats_lay_out_their_names() {
    let zone = name(ZONE);
    let zone_wire = wire_name(&zone);
    let letters = |roles: Roles| {
        let all = [
            (Roles::OWNER, 'O'),
            (Roles::SERVICE, 'S'),
            (Roles::SRV, 'R'),
            (Roles::PTR, 'P'),
            (Roles::ENDPOINT, 'E'),
        ];
        let s: String = all
            .iter()
            .filter(|(r, _)| roles.has(*r))
            .map(|(_, c)| *c)
            .collect();
        if s.is_empty() {
            "-".to_string()
        } else {
            s
        }
    };
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
