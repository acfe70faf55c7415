//! etcd's naming API (`go.etcd.io/etcd/client/v3/naming/endpoints`) and gRPC's etcd resolver.
//!
//! `endpoints.Manager(target).AddEndpoint(ctx, target+"/"+addr, Endpoint{Addr: addr})` puts
//! `<target>/<key>` = `{"Op":0,"Addr":"10.0.0.1:50051","Metadata":null}` (the JSON of
//! `internal.Update`, no tags: capitalised names), bound to a lease only when the caller
//! passes one. The name is the target's last segment; `Addr`'s host gives A/AAAA (a host name a
//! CNAME), its port SRV.

use serde_json::Value;

use super::common::{endpoint, object, service_and_instance, string};
use super::Parsed;
use crate::records::Shape;
use crate::service::{field_error, ValueError};

/// `Op` of an added endpoint (`endpoints.Add`); a delete is an etcd delete, never a value.
const OP_ADD: u64 = 0;

/// Reads `<target>/<key>` = `{"Op":0,"Addr":…}`.
pub(super) fn parse<'k>(prefix: &str, key: &'k [u8], value: &[u8]) -> Parsed<'k> {
    let (placement, _) = service_and_instance(prefix, key, Shape::Service)?;
    let map = object(value)?;
    match map.get("Op") {
        None | Some(Value::Null) => {}
        Some(op) if op.as_u64() == Some(OP_ADD) => {}
        Some(op) => return Err(field_error("Op", format!("{op} is not 0 (Add)")).into()),
    }
    let addr = string(&map, "Addr")?.ok_or(ValueError::Field {
        field: "Addr",
        why: "missing".into(),
    })?;
    let registration = endpoint("Addr", addr)?;
    Ok(Some((placement, registration)))
}

#[cfg(test)]
mod tests {
    use crate::formats::tests::{check, ZONE};
    use crate::formats::Format;

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
}
