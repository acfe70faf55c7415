//! Helpers shared by the unit tests.

use hickory_proto::rr::Name;

use crate::wire::name_from_wire;

/// `text` as a name (tests only write valid ones).
pub fn name(text: &str) -> Name {
    Name::from_ascii(text).expect("name")
}

/// The live zone most tests use.
pub fn zone() -> Name {
    name("services.local.")
}

/// A wire name as text, for readable expectations.
pub fn text(wire: &[u8]) -> String {
    name_from_wire(wire).expect("wire name").to_ascii()
}
