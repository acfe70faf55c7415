//! A TCP byte stream (length-prefixed messages, several or cut short) through the server's
//! connection code and the router (`etcd_dns::fuzzing`).
#![no_main]

use std::sync::LazyLock;

use etcd_dns::fuzzing::Requests;
use libfuzzer_sys::fuzz_target;

static REQUESTS: LazyLock<Requests> = LazyLock::new(Requests::new);

fuzz_target!(|stream: &[u8]| {
    if let Err(violation) = REQUESTS.tcp(stream) {
        panic!("{violation}");
    }
});
