//! Kratos (`contrib/registry/etcd`).
//!
//! `Registry.Register` grants a lease (15 s), puts `/microservices/<name>/<id>` = the JSON of
//! `registry.ServiceInstance` — `{"id","name","version","metadata","endpoints":
//! ["grpc://10.0.0.7:9000","http://10.0.0.7:8000"]}` — and keeps it alive, putting the same key
//! again when the lease is lost. The name is `<name>`, each instance `<id>`; every endpoint
//! becomes SRV at `_<scheme>._tcp.<name>.Z`, the first endpoint's host the address. The version
//! is a tag (`_<name>._v2.Z`) when it is a DNS label.

use serde_json::Value;

use super::common::{host_port, metadata_txt, object, one_tag, service_and_instance, string};
use super::Parsed;
use crate::key::check_label;
use crate::records::Shape;
use crate::service::{field_error, Endpoint, Registration, Target, ValueError};

/// Reads `/microservices/<name>/<id>` = `{"endpoints":[…],…}`.
pub(super) fn parse<'k>(prefix: &str, key: &'k [u8], value: &[u8]) -> Parsed<'k> {
    let (placement, _) = service_and_instance(prefix, key, Shape::Endpoints)?;
    let map = object(value)?;
    let urls = match map.get("endpoints") {
        Some(Value::Array(urls)) => urls,
        None | Some(Value::Null) => return Err(field_error("endpoints", "missing").into()),
        Some(other) => {
            return Err(field_error("endpoints", format!("expected a list, got {other}")).into())
        }
    };
    let mut target = None;
    let mut endpoints: Vec<Endpoint> = Vec::new();
    for url in urls {
        let url = url
            .as_str()
            .ok_or_else(|| field_error("endpoints", format!("expected a string, got {url}")))?;
        let (scheme, host, port) = endpoint(url)?;
        target.get_or_insert(host);
        // One SRV name per scheme: the first endpoint of a scheme wins.
        if !endpoints.iter().any(|e| *e.scheme == *scheme) {
            endpoints.push(Endpoint {
                scheme: scheme.into(),
                port,
            });
        }
    }
    let Some(target) = target else {
        return Err(field_error("endpoints", "empty: no address").into());
    };
    let mut registration = Registration::new(target);
    registration.endpoints = endpoints;
    let version = string(&map, "version")?;
    registration.txt = metadata_txt(version, map.get("metadata"));
    registration.tags = one_tag(version);
    Ok(Some((placement, registration)))
}

/// `scheme://host:port[/path][?query]` → (lowercase scheme, host, port).
fn endpoint(url: &str) -> Result<(String, Target, u16), ValueError> {
    let bad = |why: &str| field_error("endpoints", format!("{url:?}: {why}"));
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("not a URL"))?;
    let scheme = scheme.to_ascii_lowercase();
    check_label(&format!("_{scheme}")).map_err(|_| bad("the scheme is not a DNS label"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    match host_port("endpoints", authority)? {
        (host, Some(port)) => Ok((scheme, host, port)),
        (_, None) => Err(bad("no port")),
    }
}

#[cfg(test)]
mod tests {
    use crate::formats::tests::{check, ZONE};
    use crate::formats::Format;

    #[test]
    fn kratos_registry() {
        // registry.go: "/microservices/<name>/<id>" = json of registry.ServiceInstance.
        let id = "a9b3e1b0-8e0f-11ee-b9d1-0242ac120002";
        let key = format!("/microservices/helloworld/{id}");
        let value = format!(
            r#"{{"id":"{id}","name":"helloworld","version":"v1.0.0","metadata":{{"region":"sh"}},"endpoints":["grpc://10.0.0.7:9000","http://10.0.0.7:8000"]}}"#
        );
        let want = format!(
            "{id}.helloworld.services.local. 10.0.0.7 grpc=9000 http=8000 txt=version=v1.0.0;region=sh tags=v1.0.0"
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
}
