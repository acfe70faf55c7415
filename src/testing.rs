//! Helpers shared by the unit tests.

use hickory_proto::rr::Name;

use crate::records::Roles;
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

/// `roles` as letters for readable expectations: O owner, S service, R SRV, P PTR, E endpoint
/// (any index); "-" for none (an empty non-terminal).
pub fn letters(roles: Roles) -> String {
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
}

/// Everything `run` logs (at debug and above), as plain text lines.
pub fn captured_logs(run: impl FnOnce()) -> String {
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("log buffer").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, run);
    let bytes = buffer.0.lock().expect("log buffer").clone();
    String::from_utf8_lossy(&bytes).into_owned()
}
