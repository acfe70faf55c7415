//! One UDP datagram through the router, as the UDP loop answers it (`etcd_dns::fuzzing`).
#![no_main]

use std::sync::LazyLock;

use etcd_dns::fuzzing::Requests;
use libfuzzer_sys::fuzz_target;

static REQUESTS: LazyLock<Requests> = LazyLock::new(Requests::new);

fuzz_target!(|datagram: &[u8]| {
    if let Err(violation) = REQUESTS.udp(datagram) {
        panic!("{violation}");
    }
});
