//! Keys, fills, hits and eviction, without sockets.

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record, RecordType};

use super::store::Store;
use super::*;
use crate::testing::name;
use crate::wire::parse_query;

/// A query for `qname`/A with RD, EDNS with `dnssec_ok` when `edns`.
fn query(qname: &str, edns: Option<bool>, cd: bool) -> Vec<u8> {
    let mut m = Message::new(rand::random(), MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.metadata.checking_disabled = cd;
    m.add_query(Query::query(name(qname), RecordType::A));
    if let Some(dnssec_ok) = edns {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        e.set_dnssec_ok(dnssec_ok);
        m.set_edns(e);
    }
    m.to_vec().expect("encode")
}

/// The catalog's reply to `request`: one A record with `ttl`.
fn reply_to(request: &[u8], ttl: u32, ip: [u8; 4]) -> Vec<u8> {
    let request = Message::from_vec(request).expect("parse");
    let mut m = Message::new(request.metadata.id, MessageType::Response, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.metadata.recursion_available = true;
    m.metadata.response_code = ResponseCode::NoError;
    m.queries = request.queries.clone();
    let owner = request.queries[0].name().clone();
    m.answers.push(Record::from_rdata(
        owner,
        ttl,
        RData::A(A::new(ip[0], ip[1], ip[2], ip[3])),
    ));
    m.edns = request.edns.clone();
    m.to_vec().expect("encode")
}

fn key_of(bytes: &[u8]) -> Vec<u8> {
    let q = parse_query(bytes).expect("plain query");
    Key::of(&q).expect("RD set").as_slice().to_vec()
}

#[test]
fn keys_fold_case_and_split_edns_do_and_cd() {
    let plain = key_of(&query("www.example.test.", Some(false), false));
    assert_eq!(
        plain,
        key_of(&query("WWW.Example.Test.", Some(false), false))
    );
    let others = [
        key_of(&query("www.example.test.", None, false)),
        key_of(&query("www.example.test.", Some(true), false)),
        key_of(&query("www.example.test.", Some(false), true)),
    ];
    for other in &others {
        assert_ne!(&plain, other);
    }
    let mut no_rd = query("www.example.test.", None, false);
    no_rd[2] &= !FLAG_RD;
    assert!(Key::of(&parse_query(&no_rd).expect("plain")).is_none());
}

#[test]
fn hits_carry_the_clients_id_case_and_do_answers_apart() {
    let cache = AnswerCache::new(1 << 20);
    let first = query("www.example.test.", Some(false), false);
    let q = parse_query(&first).expect("plain");
    let key = Key::of(&q).expect("RD");
    cache.keep(&key, &q, &reply_to(&first, 60, [192, 0, 2, 1]));
    let second = query("WwW.EXAMPLE.test.", Some(false), false);
    let mut out = Vec::new();
    assert!(cache.answer(
        &parse_query(&second).expect("plain"),
        &second,
        Protocol::Udp,
        &mut out
    ));
    let m = Message::from_vec(&out).expect("parse");
    assert_eq!(&out[..2], &second[..2], "the second client's ID");
    assert_eq!(m.queries[0].name().to_ascii(), "WwW.EXAMPLE.test.");
    assert_eq!(m.answers[0].ttl, 60);
    // The DO query is another key: a miss until its own reply is kept.
    let with_do = query("www.example.test.", Some(true), false);
    assert!(!cache.answer(
        &parse_query(&with_do).expect("plain"),
        &with_do,
        Protocol::Udp,
        &mut out
    ));
    // A reply to another question is not kept under this one.
    let other = query("other.example.test.", Some(true), false);
    let q = parse_query(&with_do).expect("plain");
    cache.keep(
        &Key::of(&q).expect("RD"),
        &q,
        &reply_to(&other, 60, [192, 0, 2, 9]),
    );
    assert!(!cache.answer(&q, &with_do, Protocol::Udp, &mut out));
}

fn entry(ttl: u32, padding: usize) -> Entry {
    let request = query(
        &format!("{}.example.test.", "a".repeat(padding)),
        None,
        false,
    );
    let reply = reply_to(&request, ttl, [192, 0, 2, 1]);
    let len = crate::wire::question_bytes(&reply).expect("question").len();
    Entry::parse(&reply, len).expect("cacheable")
}

#[test]
fn a_full_shard_evicts_by_clock() {
    // One shard (the budget is small) that holds about four of these entries.
    let one = entry(60, 10);
    let budget = 4 * (one.cost() + 96 + 20) + 10;
    let store = Store::new(budget);
    let key = |i: u64| format!("key-{i}").into_bytes();
    for i in 0..4 {
        store.shard(i).insert(i, &key(i), one.clone(), 0, 0);
    }
    let count = |store: &Store| {
        let mut n = (0, 0);
        store.each(|s| n = (s.size().0, s.evictions));
        n
    };
    assert_eq!(count(&store), (4, 0));
    // Key 0 was used: the hand passes it once and takes key 1.
    assert!(store.shard(0).get(0, &key(0)).is_some());
    store.shard(4).insert(4, &key(4), one.clone(), 0, 0);
    assert_eq!(count(&store), (4, 1));
    assert!(
        store.shard(1).get(1, &key(1)).is_none(),
        "the unused one went"
    );
    for i in [0, 2, 3, 4] {
        assert!(store.shard(i).get(i, &key(i)).is_some(), "key {i} stays");
    }
    // Replacing a key keeps one slot.
    store.shard(4).insert(4, &key(4), one.clone(), 5, 0);
    assert_eq!(count(&store).0, 4);
    assert_eq!(store.shard(4).get(4, &key(4)).expect("kept").stored, 5);
    // Many more: never above the budget, every index still finds its slot.
    for i in 10..200 {
        store
            .shard(i)
            .insert(i, &key(i), entry(60, 1 + (i % 40) as usize), 0, 0);
        let mut bytes = 0;
        store.each(|s| bytes = s.size().1);
        assert!(bytes <= budget, "{bytes} > {budget}");
        assert!(store.shard(i).get(i, &key(i)).is_some());
    }
    // An entry larger than the whole shard is not kept, and evicts nothing.
    let before = count(&store);
    store.shard(9).insert(9, &key(9), entry(60, 60), 0, 0);
    let tiny = Store::new(64);
    tiny.shard(1).insert(1, &key(1), one, 0, 0);
    assert_eq!(count(&tiny), (0, 0));
    assert!(count(&store).0 >= before.0 - 2);
}
