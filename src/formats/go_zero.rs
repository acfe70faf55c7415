//! go-zero's `core/discov` (zrpc servers register through it).
//!
//! `Publisher.register` grants a lease (`TimeToLive` 10 s), puts `<Key>/<lease id>` (or
//! `<Key>/<ID>` when `EtcdConf.ID` is set) = the plain text `ip:port` with it, keeps the lease
//! alive, and when the keep-alive is lost revokes it and registers again: a new lease, so a
//! new key. The name is the Key's last segment (`user.rpc` → `user.rpc.Z`); each key is an
//! instance named after its id.

use super::common::{endpoint, service_and_instance};
use super::Parsed;
use crate::records::Shape;
use crate::service::field_error;

/// Reads `<Key>/<id>` = `ip:port`.
pub(super) fn parse<'k>(prefix: &str, key: &'k [u8], value: &[u8]) -> Parsed<'k> {
    let (placement, _) = service_and_instance(prefix, key, Shape::Service)?;
    let text = std::str::from_utf8(value).map_err(|_| field_error("value", "not UTF-8"))?;
    let registration = endpoint("value", text)?;
    Ok(Some((placement, registration)))
}

#[cfg(test)]
mod tests {
    use crate::formats::tests::{check, ZONE};
    use crate::formats::Format;

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
}
