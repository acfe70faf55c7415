//! dubbo-go application-level service discovery (`registry/etcdv3/service_discovery.go`).
//!
//! `Register` puts `/services/<app>/<host>:<port>` = the JSON of `DefaultServiceInstance`
//! (no tags: capitalised names) — `{"ID","ServiceName","Host","Port","Enable","Healthy",
//! "Metadata",…}` — bound to a 30 s lease it keeps alive. An instance with `Enable` or
//! `Healthy` false is not answered. The name is `<app>`; `Host` gives A/AAAA, `Port` SRV, and
//! `Tag` (dubbo's tag routing) a tag.

use serde_json::{Map, Value};

use super::common::{host_port, object, one_tag, service_and_instance, string};
use super::Parsed;
use crate::records::Shape;
use crate::service::{field_error, u16_field, Registration, ValueError};

/// Reads `/services/<app>/<host>:<port>` = `{"Host":…,"Port":…,"Enable":…,"Healthy":…}`.
pub(super) fn parse<'k>(prefix: &str, key: &'k [u8], value: &[u8]) -> Parsed<'k> {
    let (placement, leaf) = service_and_instance(prefix, key, Shape::Service)?;
    let map = object(value)?;
    if !flag(&map, "Enable")? || !flag(&map, "Healthy")? {
        return Ok(None);
    }
    // The key spells the address out too; the value's own fields come first.
    let (target, key_port) = match string(&map, "Host")? {
        Some(host) if !host.is_empty() => host_port("Host", host)?,
        _ => host_port("key", leaf)?,
    };
    let mut registration = Registration::new(target);
    registration.port = u16_field(&map, "Port")?.filter(|p| *p > 0).or(key_port);
    registration.tags = one_tag(string(&map, "Tag")?);
    Ok(Some((placement, registration)))
}

/// A boolean field; absent means true (Go always writes it, other writers may not).
fn flag(map: &Map<String, Value>, field: &'static str) -> Result<bool, ValueError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(true),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(field_error(
            field,
            format!("expected true or false, got {other}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use crate::formats::tests::{check, ZONE};
    use crate::formats::Format;

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
                    "/services/dubbo-go-app/10.0.0.4:20000",
                    r#"{"Host":"10.0.0.4","Port":20000,"Tag":"gray"}"#,
                    "10-0-0-4-20000.dubbo-go-app.services.local. 10.0.0.4:20000 tags=gray",
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
}
