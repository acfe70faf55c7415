//! Harnesses shared by the cargo-fuzz targets (`fuzz/`) and the corpus replay in the normal
//! test suite, so that the two cannot drift: each takes the fuzzer's bytes, drives the same
//! code the server runs, and returns the first broken invariant as a [`Violation`] (a crash or
//! a hang shows by itself). Not an API: built for `cargo test` and with the `fuzzing` feature.
//!
//! - [`Requests::udp`]: one datagram through the router as the UDP loop hands it over.
//! - [`Requests::tcp`]: a byte stream through the TCP connection code (length-prefixed
//!   messages, several or partial).
//! - [`key_value`]: etcd puts and deletes through key and value parsing, the records builder
//!   and the registry, then every name of the table asked through the router.

mod key_value;
mod reply;
mod request;
mod table;
mod zones;

pub use key_value::key_value;
pub use request::{Requests, CLIENT};

/// An invariant the input broke, said in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation(pub String);

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Violation {}

/// `Err` with the message `what` builds unless `holds`.
fn ensure(holds: bool, what: impl FnOnce() -> String) -> Result<(), Violation> {
    if holds {
        Ok(())
    } else {
        Err(Violation(what()))
    }
}

/// True when `name` is a wire name as RFC 1035 allows it: labels of 1–63 octets ending at the
/// root, 255 octets at most, nothing after the root.
fn valid_wire_name(name: &[u8]) -> bool {
    let mut at = 0;
    while let Some(&len) = name.get(at) {
        if len == 0 {
            return at + 1 == name.len() && name.len() <= crate::wire::MAX_NAME_WIRE;
        }
        if len > 63 {
            return false;
        }
        at += 1 + len as usize;
    }
    false
}

#[cfg(test)]
mod tests;
