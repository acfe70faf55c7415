use std::net::IpAddr;

use super::*;
use crate::wire::FLAG_QR;

/// A reply with `rcode`, one question `name` (dotted, may be empty for the root) of `qtype`,
/// and `answers` answer records (only counted in the header).
fn reply(name: &str, qtype: u16, rcode: u8, answers: u16) -> Vec<u8> {
    let mut out = vec![0x12, 0x34, FLAG_QR, rcode, 0, 1];
    out.extend_from_slice(&answers.to_be_bytes());
    out.extend_from_slice(&[0, 1, 0, 0]);
    for label in name.split('.').filter(|l| !l.is_empty()) {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&[0, 1]);
    // Stand-in for answer and authority records, which the limiter does not read.
    out.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 10, 0, 0, 1]);
    out
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("address")
}

fn limiter(rate: u32, slip: u32) -> RateLimiter {
    RateLimiter::new(&RrlConfig {
        rate,
        slip,
        ..RrlConfig::default()
    })
}

/// Sends `n` copies of `reply` from `client` at `now`; counts the verdicts (send, slip, drop).
fn flood(rrl: &RateLimiter, reply: &[u8], client: &str, n: usize, now: u64) -> [usize; 3] {
    let mut counts = [0; 3];
    for _ in 0..n {
        match rrl.check(reply, ip(client), None, now) {
            Verdict::Send => counts[0] += 1,
            Verdict::Slip => counts[1] += 1,
            Verdict::Drop => counts[2] += 1,
        }
    }
    counts
}

const SECOND: u64 = 1_000_000;

#[test]
fn a_flood_gets_one_seconds_burst_then_the_rate() {
    let rrl = limiter(10, 0);
    let positive = reply("web.services.local", 1, 0, 1);
    let [sent, _, dropped] = flood(&rrl, &positive, "192.0.2.1", 100, SECOND);
    assert_eq!((sent, dropped), (10, 90));
    // Half a second later, half a second's worth more.
    let [sent, ..] = flood(&rrl, &positive, "192.0.2.1", 100, SECOND + SECOND / 2);
    assert_eq!(sent, 5);
    // Ten seconds of flood at 1,000 a second: ten a second get through.
    let mut total = 0;
    for tick in 0..10_000u64 {
        total += flood(&rrl, &positive, "192.0.2.1", 1, 3 * SECOND + tick * 1_000)[0];
    }
    assert!(
        (100..=111).contains(&total),
        "{total} replies in 10 s at 10/s"
    );
}

#[test]
fn clients_of_one_network_share_a_bucket_and_others_do_not() {
    let rrl = limiter(5, 0);
    let positive = reply("web.services.local", 1, 0, 1);
    assert_eq!(flood(&rrl, &positive, "192.0.2.1", 5, SECOND)[0], 5);
    assert_eq!(
        flood(&rrl, &positive, "192.0.2.200", 5, SECOND)[0],
        0,
        "same /24"
    );
    assert_eq!(
        flood(&rrl, &positive, "192.0.3.1", 5, SECOND)[0],
        5,
        "next /24"
    );
    assert_eq!(flood(&rrl, &positive, "2001:db8:0:1::1", 5, SECOND)[0], 5);
    assert_eq!(
        flood(&rrl, &positive, "2001:db8:0:1:ffff::1", 5, SECOND)[0],
        0,
        "same /56"
    );
    assert_eq!(
        flood(&rrl, &positive, "2001:db8:0:100::1", 5, SECOND)[0],
        5,
        "next /56"
    );
    // An IPv4 client seen through an IPv6 socket is its IPv4 network.
    assert_eq!(flood(&rrl, &positive, "::ffff:192.0.2.9", 5, SECOND)[0], 0);
}

#[test]
fn names_types_and_kinds_count_apart_but_random_names_in_the_zone_do_not() {
    let rrl = limiter(3, 0);
    let client = "198.51.100.7";
    for (name, qtype) in [
        ("a.services.local", 1),
        ("a.services.local", 28),
        ("b.services.local", 1),
    ] {
        assert_eq!(
            flood(&rrl, &reply(name, qtype, 0, 1), client, 5, SECOND)[0],
            3,
            "{name} {qtype}"
        );
    }
    // The query's case does not make a new bucket.
    assert_eq!(
        flood(&rrl, &reply("A.Services.LOCAL", 1, 0, 1), client, 5, SECOND)[0],
        0
    );
    // NXDOMAIN for random names of the live zone, which starts at byte 3 of each name in
    // wire form (after the length byte and "rN").
    let mut sent = 0;
    for i in 0..50 {
        let nx = reply(&format!("r{}.services.local", i % 10), 1, 3, 0);
        if rrl.check(&nx, ip(client), Some(3), SECOND) == Verdict::Send {
            sent += 1;
        }
    }
    assert_eq!(sent, 3, "random names of one zone share the zone's bucket");
    // Errors share one bucket per network, whatever the name.
    let refused = |name: &str| reply(name, 1, 5, 0);
    let errors: usize = (0..10)
        .map(|i| flood(&rrl, &refused(&format!("n{i}.example")), client, 1, SECOND)[0])
        .sum();
    assert_eq!(errors, 3);
}

#[test]
fn every_slip_th_limited_reply_is_slipped() {
    let rrl = limiter(1, 2);
    let positive = reply("web.services.local", 1, 0, 1);
    let [sent, slipped, dropped] = flood(&rrl, &positive, "203.0.113.1", 21, SECOND);
    assert_eq!((sent, slipped, dropped), (1, 10, 10));
    let every = limiter(1, 1);
    assert_eq!(
        flood(&every, &positive, "203.0.113.1", 11, SECOND),
        [1, 10, 0]
    );
}

#[test]
fn exempt_clients_are_never_limited() {
    let rrl = RateLimiter::new(&RrlConfig {
        rate: 1,
        slip: 0,
        exempt: Acl::parse("10.0.0.0/8").expect("acl"),
        ..RrlConfig::default()
    });
    let positive = reply("web.services.local", 1, 0, 1);
    assert_eq!(flood(&rrl, &positive, "10.1.2.3", 50, SECOND)[0], 50);
    assert_eq!(flood(&rrl, &positive, "11.1.2.3", 50, SECOND)[0], 1);
}

#[test]
fn a_slipped_reply_is_header_and_question_with_tc() {
    let mut full = reply("web.services.local", 33, 0, 1);
    let question_end = HEADER_LEN + "web.services.local".len() + 2 + 4;
    truncate(&mut full);
    assert_eq!(full.len(), question_end);
    assert_eq!(full[2] & FLAG_TC, FLAG_TC);
    assert_eq!(&full[4..12], &[0, 1, 0, 0, 0, 0, 0, 0]);
    assert_eq!(&full[0..2], &[0x12, 0x34], "id kept");
    // The OPT record of an EDNS reply stays, as Knot keeps it.
    let mut edns = reply("web.services.local", 1, 0, 1);
    edns[11] = 1;
    let opt = [0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0];
    edns.extend_from_slice(&opt);
    truncate(&mut edns);
    assert_eq!(&edns[4..12], &[0, 1, 0, 0, 0, 0, 0, 1]);
    assert_eq!(&edns[edns.len() - OPT_LEN..], &opt);
    assert_eq!(
        edns.len(),
        HEADER_LEN + "web.services.local".len() + 2 + 4 + OPT_LEN
    );
    // Without a question: the header alone.
    let mut bare = vec![0x12, 0x34, FLAG_QR, 1, 0, 0, 0, 0, 0, 0, 0, 0];
    truncate(&mut bare);
    assert_eq!(bare.len(), HEADER_LEN);
    // Garbage shorter than a header stays as it is.
    let mut short = vec![1, 2, 3];
    truncate(&mut short);
    assert_eq!(short, [1, 2, 3]);
}

#[test]
fn the_coarse_clock_moves_forward() {
    let first = now_micros();
    assert!(first > 0);
    assert!(now_micros() >= first);
}
