//! Table-driven and statistical tests of `pick`, with fixed seeds.

use super::*;
use crate::wire::spread::{selection_weight, SpreadInput};
use crate::wire::RRset;

/// An A set of `n` records 10.x.y.z with these `weights` (none: equal).
fn a_set(n: usize, weights: &[u16]) -> RRset {
    let rdatas: Vec<[u8; 4]> = (0..n as u32)
        .map(|i| (0x0a00_0000 | i).to_be_bytes())
        .collect();
    let mut set = RRset::from_rdata(1, 5, rdatas.iter().map(|r| &r[..]));
    if !weights.is_empty() {
        set.spread = SpreadInput {
            starts: set.record_starts(),
            weights: weights.iter().map(|w| selection_weight(*w)).collect(),
            ..SpreadInput::default()
        }
        .encode();
    }
    set
}

/// The last byte of each chosen A record's address: which records were chosen, in order.
fn chosen(picks: &Picks) -> Vec<u32> {
    picks
        .answers
        .chunks(16)
        .map(|rr| u32::from_be_bytes([rr[12], rr[13], rr[14], rr[15]]) & 0x00ff_ffff)
        .collect()
}

fn run(set: &RRset, room: usize, cap: usize, rotate: usize, picks: &mut Picks) -> Picked {
    let spread = SpreadRef::new(&set.spread).expect("spread");
    pick(set.as_ref(), spread, room, cap, rotate, picks)
}

#[test]
fn equal_weights_take_a_rotating_window_that_fits() {
    let set = a_set(10_000, &[]);
    let mut picks = Picks::new(1);
    // 75 records fit 1,200 bytes; answer 133 starts at 133 × 75 = 9,975 and wraps.
    let got = run(&set, 1200, usize::MAX, 133, &mut picks);
    let size = Picked {
        answers: 75,
        extra: 0,
        cut: Cut::Size,
    };
    assert_eq!(got, size);
    let ids = chosen(&picks);
    assert_eq!((ids[0], ids[24], ids[25], ids[74]), (9_975, 9_999, 0, 49));
    // With a cap of 8, successive answers tile the set.
    let mut seen = std::collections::BTreeSet::new();
    for rotate in 0..1_250 {
        let got = run(&set, 1200, 8, rotate, &mut picks);
        assert_eq!(
            got,
            Picked {
                answers: 8,
                extra: 0,
                cut: Cut::Cap
            }
        );
        seen.extend(chosen(&picks));
    }
    assert_eq!(
        seen.len(),
        10_000,
        "1,250 answers of 8 cover 10,000 records"
    );
    let small = a_set(3, &[]);
    let got = run(&small, 1200, 8, 0, &mut picks);
    assert_eq!(got.cut, Cut::None);
    assert_eq!(chosen(&picks), [0, 1, 2]);
}

/// Over 100,000 answers, each record's share of first places is its weight's share, ±2 %
/// (relative) — as the issue asks of A answers shaped by `weight`.
#[test]
fn first_places_follow_the_weights() {
    let weights = [1, 10, 100, 100, 50, 0, 25];
    let set = a_set(weights.len(), &weights);
    let total: u64 = weights.iter().map(|w| selection_weight(*w)).sum();
    let mut picks = Picks::new(0x5eed);
    let mut firsts = vec![0u32; weights.len()];
    let rounds = 100_000;
    for round in 0..rounds {
        let got = run(&set, 1200, 3, round, &mut picks);
        assert_eq!(got.answers, 3);
        let ids = chosen(&picks);
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 3, "no record twice: {ids:?}");
        firsts[ids[0] as usize] += 1;
    }
    eprintln!("| weight | expected share of first places | observed over {rounds} answers |");
    for (i, w) in weights.iter().enumerate() {
        let expected = selection_weight(*w) as f64 / total as f64;
        let share = f64::from(firsts[i]) / rounds as f64;
        eprintln!(
            "| {w} | {:.3} % | {:.3} % |",
            expected * 100.0,
            share * 100.0
        );
        let tolerance = (expected * 0.02).max(4.0 * (expected / rounds as f64).sqrt());
        assert!(
            (share - expected).abs() <= tolerance,
            "record {i} (weight {w}): {share:.4} of first places, expected {expected:.4} ± {tolerance:.4}"
        );
    }
}

/// A few heavy records among many light ones: every answer still has distinct records and is
/// built from draws, not a walk over the set.
#[test]
fn a_skewed_large_set_still_yields_distinct_records() {
    let mut weights = vec![1u16; 5_000];
    weights[7] = 60_000;
    weights[4_000] = 60_000;
    let set = a_set(weights.len(), &weights);
    let mut picks = Picks::new(3);
    for round in 0..200 {
        let got = run(&set, 65_000, 500, round, &mut picks);
        assert_eq!(got.answers, 500);
        let mut ids = chosen(&picks);
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 500);
    }
}

/// SRV: the lowest priority first, each SRV record with its target's addresses in the
/// additional section when the set must be cut; a complete answer takes addresses as they fit.
#[test]
fn srv_takes_priorities_in_order_each_record_with_its_addresses() {
    // Five SRV records: priorities 1, 1, 1, 5, 5; each target has one A record.
    let priorities = [1u16, 1, 1, 5, 5];
    let rdatas: Vec<Vec<u8>> = (0..5u8)
        .map(|i| {
            let mut rdata = Vec::new();
            for field in [priorities[i as usize], 10, 80] {
                rdata.extend_from_slice(&field.to_be_bytes());
            }
            rdata.extend_from_slice(&[2, b'n', b'0' + i, 0]);
            rdata
        })
        .collect();
    let mut set = RRset::from_rdata(33, 5, rdatas.iter().map(Vec::as_slice));
    let mut extra_starts = vec![0u32];
    for i in 0..5u8 {
        set.push_extra(&[2, b'n', b'0' + i, 0], 1, 5, &[10, 0, 0, i]);
        extra_starts.push(set.extra.len() as u32);
    }
    set.spread = SpreadInput {
        starts: set.record_starts(),
        weights: vec![selection_weight(10); 5],
        priorities: priorities.to_vec(),
        extra_starts,
    }
    .encode();
    let srv_len = set.rrs.len() / 5;
    let a_len = set.extra.len() / 5;
    let mut picks = Picks::new(9);
    // The five SRV records do not fit: two, each with its address (a third pair does not fit).
    let got = run(&set, 5 * srv_len - 1, usize::MAX, 0, &mut picks);
    assert_eq!(
        got,
        Picked {
            answers: 2,
            extra: 2,
            cut: Cut::Size
        }
    );
    let priority = |rr: &[u8]| u16::from_be_bytes([rr[12], rr[13]]);
    let firsts: Vec<u16> = picks.answers.chunks(srv_len).map(priority).collect();
    assert_eq!(firsts, [1, 1]);
    // All five fit, with room for three addresses: a complete answer, addresses as they fit.
    let got = run(&set, 5 * srv_len + 3 * a_len, usize::MAX, 0, &mut picks);
    assert_eq!(
        got,
        Picked {
            answers: 5,
            extra: 3,
            cut: Cut::None
        }
    );
    let firsts: Vec<u16> = picks.answers.chunks(srv_len).map(priority).collect();
    assert_eq!(firsts, [1, 1, 1, 5, 5]);
    let got = run(&set, 10_000, usize::MAX, 0, &mut picks);
    assert_eq!(
        got,
        Picked {
            answers: 5,
            extra: 5,
            cut: Cut::None
        }
    );
}
