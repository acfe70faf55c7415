use super::*;
use hickory_proto::dnssec::rdata::{DNSSECRData, DNSKEY, RRSIG};
use hickory_proto::dnssec::{Algorithm, PublicKeyBuf, Verifier};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecoder, Restrict};

use crate::dnssec::key::ZoneKey;
use crate::wire::wire_name;

fn key() -> (tempfile::TempDir, ZoneKey) {
    let dir = tempfile::tempdir().expect("tempdir");
    let zone = Name::from_ascii("services.local.").expect("name");
    let (key, _) = ZoneKey::generate(&zone, dir.path()).expect("generate");
    (dir, key)
}

/// The RRSIG record of `tail` (type, class, TTL, RDLENGTH, RDATA) as hickory reads it.
fn rrsig_of(tail: &[u8]) -> RRSIG {
    assert_eq!(&tail[..2], &types::RRSIG.to_be_bytes());
    let mut decoder = BinDecoder::new(&tail[10..]);
    let len = Restrict::new((tail.len() - 10) as u16);
    match RData::read(&mut decoder, RecordType::RRSIG, len).expect("RRSIG reads") {
        RData::DNSSEC(DNSSECRData::RRSIG(rrsig)) => rrsig,
        other => panic!("not an RRSIG: {other:?}"),
    }
}

#[test]
fn signatures_verify_with_hickorys_validator_whatever_the_order_of_the_records() {
    let (_dir, key) = key();
    let dnskey = DNSKEY::with_flags(
        key.flags,
        PublicKeyBuf::new(key.public.clone(), Algorithm::ECDSAP256SHA256),
    );
    let owner = Name::from_ascii("web.services.local.").expect("name");
    // Two SRV records handed over in reverse canonical order.
    let records: Vec<Record> = ["n2.web.services.local.", "n1.web.services.local."]
        .iter()
        .map(|target| {
            let srv = hickory_proto::rr::rdata::SRV::new(
                10,
                10,
                8080,
                Name::from_ascii(target).expect("name"),
            );
            Record::from_rdata(owner.clone(), 5, RData::SRV(srv))
        })
        .collect();
    let rdatas: Vec<Vec<u8>> = records
        .iter()
        .map(|r| crate::wire::rr_tail(r)[10..].to_vec())
        .collect();
    let lower = wire_name(&owner);
    let set = SetToSign {
        owner: &lower,
        rtype: types::SRV,
        ttl: 5,
        rdatas: rdatas.iter().map(|r| &r[..]).collect(),
    };
    let now = 1_800_000_000;
    let mut tail = Vec::new();
    push_rrsig(&mut tail, &key, &set, now).expect("signed");
    assert_eq!(tail.len(), rrsig_tail_len(&key));
    let rrsig = rrsig_of(&tail);
    let input = rrsig.input();
    assert_eq!(
        (input.type_covered, input.num_labels, input.original_ttl),
        (RecordType::SRV, 3, 5)
    );
    assert_eq!(input.key_tag, key.tag);
    assert_eq!(
        input.sig_inception.get(),
        (now - u64::from(SLACK_SECS)) as u32
    );
    assert_eq!(
        input.sig_expiration.get(),
        (now + 5 + u64::from(SLACK_SECS)) as u32
    );
    dnskey
        .verify_rrsig(&owner, DNSClass::IN, &rrsig, records.iter())
        .expect("hickory validates the signature");
    // A record changed: the signature no longer holds.
    let mut changed = records.clone();
    changed.truncate(1);
    assert!(dnskey
        .verify_rrsig(&owner, DNSClass::IN, &rrsig, changed.iter())
        .is_err());
}

#[test]
fn validity_follows_the_ttl_not_a_fixed_hour() {
    let (inception, expiration, reuse) = validity(1_000_000, 5);
    assert_eq!((inception, expiration), (1_000_000 - 120, 1_000_000 + 125));
    assert_eq!(
        reuse, 1_000_060,
        "reused for a minute: every one served keeps TTL + 60 s"
    );
    let (_, long, _) = validity(1_000_000, 3600);
    assert_eq!(long, 1_000_000 + 3600 + 120);
}

#[test]
fn nsec_bitmaps_list_the_types_in_windows() {
    let owner = wire_name(&Name::from_ascii("a.services.local.").expect("name"));
    let rdata = nsec_rdata(&owner, &[1, 28, types::NXNAME]);
    let mut next = vec![1, 0];
    next.extend_from_slice(&owner);
    assert_eq!(&rdata[..next.len()], &next[..], "next name is \\000.owner");
    // Window 0: A (1), AAAA (28), RRSIG (46), NSEC (47), NXNAME (128): 17 bytes.
    let bitmap = &rdata[next.len()..];
    assert_eq!(&bitmap[..2], &[0, 17]);
    assert_eq!(bitmap[2], 0b0100_0000, "A");
    assert_eq!(bitmap[2 + 3], 0b0000_1000, "AAAA is bit 28");
    assert_eq!(bitmap[2 + 5], 0b0000_0011, "RRSIG, NSEC");
    assert_eq!(bitmap[2 + 16], 0b1000_0000, "NXNAME");
    // hickory reads it back as the same types.
    let mut decoder = BinDecoder::new(&rdata);
    let nsec = match RData::read(
        &mut decoder,
        RecordType::NSEC,
        Restrict::new(rdata.len() as u16),
    ) {
        Ok(RData::DNSSEC(DNSSECRData::NSEC(nsec))) => nsec,
        other => panic!("not an NSEC: {other:?}"),
    };
    let types: Vec<u16> = nsec.type_bit_maps().map(u16::from).collect();
    assert_eq!(types, vec![1, 28, 46, 47, 128]);
}

#[test]
fn labels_and_canonical_rdata() {
    let name = |s: &str| wire_name(&Name::from_ascii(s).expect("name"));
    assert_eq!(labels(&name("services.local.")), 2);
    assert_eq!(
        labels(&name("*.services.local.")),
        2,
        "a wildcard's star is not counted"
    );
    assert_eq!(labels(&[0]), 0);
    let mut soa = name("NS.Services.Local.").to_vec();
    soa.extend_from_slice(&name("Host.Master.")[..]);
    soa.extend_from_slice(&[b'A'; 20]);
    let canonical = canonical_rdata(types::SOA, &soa);
    assert_eq!(
        &canonical[canonical.len() - 20..],
        &[b'A'; 20],
        "numbers untouched"
    );
    assert!(!canonical[..canonical.len() - 20]
        .iter()
        .any(u8::is_ascii_uppercase));
    assert_eq!(
        canonical_rdata(1, b"ABCD"),
        b"ABCD",
        "A RDATA is not a name"
    );
}

#[test]
fn the_next_name_stays_a_legal_name_for_the_longest_owners() {
    let short = wire_name(&Name::from_ascii("a.services.local.").expect("name"));
    assert_eq!(&next_name(&short)[..2], &[1, 0]);
    // A 255-octet owner whose first label ends in '@': the next name ends it in '[' (not 'A',
    // which sorts as 'a' and would cover the names ending in '[' … '`', '_' among them).
    let mut max = vec![3u8, b'q', b'q', b'@'];
    for _ in 0..3 {
        max.push(62);
        max.extend_from_slice(&[b'x'; 62]);
    }
    max.push(60);
    max.extend_from_slice(&[b'y'; 60]);
    max.push(0);
    assert_eq!(max.len(), 255);
    let next = next_name(&max);
    assert_eq!(next.len(), 255, "still a legal name");
    assert_eq!(&next[..4], &[3, b'q', b'q', b'[']);
    assert_eq!(&next[4..], &max[4..]);
}
