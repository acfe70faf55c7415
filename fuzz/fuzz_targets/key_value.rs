//! etcd puts and deletes (`KEY\nVALUE` lines, `-KEY` deletes) through key and value parsing,
//! the records builder, the registry and the router (`etcd_dns::fuzzing`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    if let Err(violation) = etcd_dns::fuzzing::key_value(input) {
        panic!("{violation}");
    }
});
