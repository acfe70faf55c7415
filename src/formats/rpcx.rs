//! rpcx (`rpcx-etcd`'s `EtcdV3RegisterPlugin`).
//!
//! `Register` puts the marker keys `<base>` = `rpcx_path` and `<base>/<service>` = `<service>`,
//! then `<base>/<service>/tcp@10.0.0.10:8972` = the service's metadata as a URL query
//! (`group=test&state=active`, often empty), every key bound to one lease the plugin shares
//! (`UpdateInterval` + `Expired`, 30 s by default). Marker keys (no `@`) are no instances;
//! `state=inactive` is rpcx's way to take an instance out, so it is not answered either. The
//! name is `<service>`, the address and port come from the key, the metadata gives TXT, and
//! its `group` is a tag (`_<service>._<group>.Z`).

use super::common::{endpoint, key_text, last_two, one_tag, service_and_instance};
use super::Parsed;
use crate::records::Shape;
use crate::service::field_error;

/// Reads `<base>/<service>/<network>@<address>` = `k=v&…`.
pub(super) fn parse<'k>(prefix: &str, key: &'k [u8], value: &[u8]) -> Parsed<'k> {
    let text = key_text(prefix, key)?;
    let is_marker = last_two(text).is_none_or(|(_, leaf)| !leaf.contains('@'));
    if is_marker {
        return Ok(None);
    }
    let (placement, leaf) = service_and_instance(prefix, key, Shape::Service)?;
    let (network, address) = leaf.split_once('@').unwrap_or_default();
    if !matches!(
        network,
        "tcp" | "tcp4" | "tcp6" | "quic" | "kcp" | "http" | "https"
    ) {
        let why = format!("{network:?}: not a network DNS can point at");
        return Err(field_error("key", why).into());
    }
    let mut registration = endpoint("key", address)?;
    let metadata = std::str::from_utf8(value).map_err(|_| field_error("value", "not UTF-8"))?;
    let pairs: Vec<&str> = metadata.split('&').filter(|p| !p.is_empty()).collect();
    if pairs.contains(&"state=inactive") {
        return Ok(None);
    }
    registration.txt = pairs
        .into_iter()
        .filter(|p| p.len() <= 255)
        .map(String::from)
        .collect();
    registration.txt.sort();
    registration.tags = one_tag(
        registration
            .txt
            .iter()
            .find_map(|pair| pair.strip_prefix("group=")),
    );
    Ok(Some((placement, registration)))
}

#[cfg(test)]
mod tests {
    use crate::formats::tests::{check, ZONE};
    use crate::formats::Format;

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
                    "tcp-10-0-0-10-8972.arith.services.local. 10.0.0.10:8972 txt=group=test;state=active tags=test",
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
}
