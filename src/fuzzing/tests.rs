//! The committed corpus (`tests/fuzz_corpus/<target>/`), replayed through the fuzz targets'
//! own harnesses on stable: every input that once mattered keeps its invariants.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RecordType};
use hickory_server::net::xfer::Protocol;

use super::reply::check_reply;
use super::{key_value, Requests, Violation};
use crate::wire::{FLAG_QR, FLAG_RD, FLAG_TC};

/// Every file of the corpus of `target`, sorted by name (a corpus must not be empty: a wrong
/// path would otherwise pass).
fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz_corpus")
        .join(target);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("corpus entry").path();
            let bytes = std::fs::read(&path).expect("corpus file");
            (
                format!(
                    "{target}/{}",
                    path.file_name().unwrap_or_default().to_string_lossy()
                ),
                bytes,
            )
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no corpus in {}", dir.display());
    files
}

/// Runs `check` on every input of `target`'s corpus and fails naming every input that broke
/// an invariant or panicked.
fn replay(target: &str, check: impl Fn(&[u8]) -> Result<(), Violation>) {
    let mut failures = Vec::new();
    for (name, bytes) in corpus(target) {
        match catch_unwind(AssertUnwindSafe(|| check(&bytes))) {
            Ok(Ok(())) => {}
            Ok(Err(violation)) => failures.push(format!("{name}: {violation}")),
            Err(_) => failures.push(format!("{name}: panicked")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `message` as one TCP frame.
fn framed(message: &[u8]) -> Vec<u8> {
    let len = u16::try_from(message.len()).unwrap_or(u16::MAX);
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(&message[..message.len().min(len as usize)]);
    out
}

#[test]
fn request_udp_corpus() {
    let requests = Requests::new();
    // Each datagram also goes over TCP, framed alone.
    replay("request_udp", |datagram| {
        requests.udp(datagram)?;
        requests.tcp(&framed(datagram))
    });
}

#[test]
fn request_tcp_corpus() {
    let requests = Requests::new();
    replay("request_tcp", |stream| requests.tcp(stream));
}

#[test]
fn key_value_corpus() {
    replay("key_value", key_value);
}

/// The checks are worth something only if they fail: each broken reply is caught.
#[test]
fn reply_checks_catch_broken_replies() {
    let requests = Requests::new();
    let mut message = Message::query();
    message.metadata.id = 0x1234;
    message.metadata.recursion_desired = true;
    let name = Name::from_ascii("web.services.local.").expect("name");
    message.add_query(Query::query(name, RecordType::A));
    let query = message.to_vec().expect("query");
    let reply = requests.answer_udp(&query).expect("a reply");
    assert_eq!(check_reply(&query, Some(&reply), Protocol::Udp), Ok(()));
    type Change = dyn Fn(&mut Vec<u8>);
    let broken = |change: &Change| {
        let mut bad = reply.clone();
        change(&mut bad);
        check_reply(&query, Some(&bad), Protocol::Udp)
    };
    let cases: &[(&str, &Change)] = &[
        ("ID", &|r| r[1] ^= 1),
        ("QR", &|r| r[2] &= !FLAG_QR),
        ("RD", &|r| r[2] &= !FLAG_RD),
        ("SERVFAIL", &|r| r[3] |= 2),
        ("cut short", &|r| r.truncate(r.len() - 1)),
        ("over 512 bytes", &|r| r.resize(600, 0)),
        ("question", &|r| r[13] = b'W'),
    ];
    for (what, change) in cases {
        assert!(broken(change).is_err(), "{what} not caught");
    }
    assert!(
        check_reply(&query, None, Protocol::Udp).is_err(),
        "no reply"
    );
    // Part of a large set with TC is a valid UDP reply (RFC 2181 §9), never a TCP one.
    let mut truncated = reply.clone();
    truncated[2] |= FLAG_TC;
    assert_eq!(check_reply(&query, Some(&truncated), Protocol::Udp), Ok(()));
    assert!(check_reply(&query, Some(&truncated), Protocol::Tcp).is_err());
    let mut response = query.clone();
    response[2] |= FLAG_QR;
    assert!(check_reply(&response, Some(&reply), Protocol::Udp).is_err());
}
