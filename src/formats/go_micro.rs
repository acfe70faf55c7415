//! go-micro (`registry/etcd`, also micro/plugins v4).
//!
//! `Register` puts `/micro/registry/<service>/<node id>` = the JSON of `registry.Service` with
//! the one node this process runs: `{"name","version","metadata","endpoints":[…],"nodes":
//! [{"id":"greeter-<uuid>","address":"10.0.0.8:8080","metadata":{…}}]}`. With `RegisterTTL`
//! (90 s by default) the key is bound to a lease and re-registered every 30 s; with a TTL of 0
//! it has no lease at all and stays until `Deregister` deletes it. The name is `<service>`,
//! the node its instance; the node's address gives A/AAAA and SRV, version and node metadata
//! TXT; the version is a tag when it is a DNS label.

use serde_json::Value;

use super::common::{endpoint, metadata_txt, object, one_tag, service_and_instance, string};
use super::Parsed;
use crate::records::Shape;
use crate::service::field_error;

/// Reads `/micro/registry/<service>/<node id>` = `{"nodes":[{"address":…}],…}`.
pub(super) fn parse<'k>(prefix: &str, key: &'k [u8], value: &[u8]) -> Parsed<'k> {
    let (placement, node_id) = service_and_instance(prefix, key, Shape::Service)?;
    let map = object(value)?;
    let nodes = match map.get("nodes") {
        Some(Value::Array(nodes)) => nodes,
        _ => return Err(field_error("nodes", "expected a list of nodes").into()),
    };
    // One node per key: the one the key names, else the first.
    let node = nodes
        .iter()
        .find(|n| n.get("id").and_then(Value::as_str) == Some(node_id))
        .or_else(|| nodes.first())
        .and_then(Value::as_object)
        .ok_or_else(|| field_error("nodes", "no node"))?;
    let address = string(node, "address")?.ok_or_else(|| field_error("address", "missing"))?;
    let mut registration = endpoint("address", address)?;
    let version = string(&map, "version")?;
    registration.txt = metadata_txt(version, node.get("metadata"));
    registration.tags = one_tag(version);
    Ok(Some((placement, registration)))
}

#[cfg(test)]
mod tests {
    use crate::formats::tests::{check, ZONE};
    use crate::formats::Format;

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
            "{node}.helloworld.services.local. 10.0.0.8:8080 txt=version=latest;broker=http;protocol=mucp;registry=etcd;server=mucp;transport=http tags=latest"
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
}
