use super::*;
use hickory_proto::dnssec::rdata::DNSKEY;
use hickory_proto::dnssec::{Algorithm, DigestType, PublicKeyBuf};

/// A key `dnssec-keygen -a ECDSAP256SHA256 -n ZONE -f KSK services.local` (BIND 9.18) wrote.
const PRIVATE: &str = "Private-key-format: v1.3\nAlgorithm: 13 (ECDSAP256SHA256)\nPrivateKey: mF82XkUMWQGTaWWltAEJR6OqeMEUuCldtU7Pd6W5PLo=\nCreated: 20261207164017\nPublish: 20261207164017\nActivate: 20261207164017\n";
const PUBLIC: &str = "; This is a key-signing key, keyid 57412, for services.local.\n; Created: 20261207164017 (Mon Dec  7 16:40:17 2026)\nservices.local. IN DNSKEY 257 3 13 Ke/INQvymkOfmS3afiCXpMIa5mwrY6kZ+M/RIwv/YYby/0cX6nNwaueU DQxcCz5Y3eajlpn99l/B02yYTtb5DQ==\n";
/// `dnssec-dsfromkey -2` of it.
const DS: &str = "services.local. IN DS 57412 13 2 E7ABFCC448D025E4FBE8DE63F3C6B4910D073962BFA455FDCE0E898121069A39";
/// The public key of another key of the zone (a zone-signing key, flags 256).
const OTHER_PUBLIC: &str = "services.local. 3600 IN DNSKEY 256 3 13 DmD+i6AD+X+YXgTScU1c/dm0nLsqjBwCgyI7SjtNhCAfYnVUQc3CHEDG Wm1nXe3GFqZi/rqov7q9KeBSk2LXfw==\n";

fn write_pair(dir: &Path, private: &str, public: &str) -> PathBuf {
    let (private_path, public_path) = key_files(&dir.join("Kservices.local.+013+57412"));
    std::fs::write(&private_path, private).expect("write");
    std::fs::write(&public_path, public).expect("write");
    private_path
}

#[test]
fn reads_bind_key_files_and_agrees_with_bind_and_hickory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_pair(dir.path(), PRIVATE, PUBLIC);
    // Any of the three spellings of the key's name.
    let (_, public_path) = key_files(&path);
    let stem = dir.path().join("Kservices.local.+013+57412");
    for given in [path.clone(), public_path, stem] {
        let key = ZoneKey::read(&given).expect("BIND's key reads");
        assert_eq!(key.zone.to_ascii(), "services.local.");
        assert_eq!(
            (key.tag, key.flags),
            (57412, 257),
            "BIND's key id and flags"
        );
        assert_eq!(key.ds_text(), DS, "dnssec-dsfromkey's DS");
    }
    // hickory's own computation of tag and digest over the same DNSKEY.
    let key = ZoneKey::read(&path).expect("read");
    let dnskey = DNSKEY::with_flags(
        257,
        PublicKeyBuf::new(key.public.clone(), Algorithm::ECDSAP256SHA256),
    );
    assert_eq!(dnskey.calculate_key_tag().expect("tag"), key.tag);
    let digest = dnskey
        .to_digest(&key.zone, DigestType::SHA256)
        .expect("digest");
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    assert!(DS.ends_with(&hex));
}

#[test]
fn generated_keys_are_written_as_bind_writes_them_and_read_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let zone = Name::from_ascii("Example.Test").expect("name");
    let (made, path) = ZoneKey::generate(&zone, dir.path()).expect("generate");
    assert_eq!(
        path.file_name().and_then(|n| n.to_str()),
        Some(&*format!("Kexample.test.+013+{:05}.private", made.tag))
    );
    let read = ZoneKey::read(&path).expect("reads back");
    assert_eq!(
        (read.tag, read.flags, read.ds_text()),
        (made.tag, 257, made.ds_text())
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "the private key is readable by its owner only"
    );
    // Never overwrites a key.
    assert!(
        ZoneKey::generate(&zone, dir.path()).is_ok(),
        "another key, another tag"
    );
}

#[test]
fn bad_key_files_are_refused_naming_the_file_and_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: [(&str, &str, &str); 8] = [
        (PRIVATE, &PUBLIC.replace("257 3 13", "385 3 13"), "revoked"),
        (
            &PRIVATE.replace(
                "Algorithm: 13 (ECDSAP256SHA256)",
                "Algorithm: 8 (RSASHA256)",
            ),
            PUBLIC,
            "only 13",
        ),
        (PRIVATE, OTHER_PUBLIC, "does not match"),
        (
            &PRIVATE.replace("PrivateKey: mF82", "PrivateKey: !!82"),
            PUBLIC,
            "not base64",
        ),
        (
            &PRIVATE.replace(
                "PrivateKey: mF82XkUMWQGTaWWltAEJR6OqeMEUuCldtU7Pd6W5PLo=",
                "PrivateKey: AAAA",
            ),
            PUBLIC,
            "not the 32",
        ),
        ("Private-key-format: v1.3\n", PUBLIC, "no Algorithm"),
        (
            PRIVATE,
            &PUBLIC.replace("257 3 13", "1 3 13"),
            "not a zone key",
        ),
        (PRIVATE, "; nothing\n", "no DNSKEY"),
    ];
    for (private, public, why) in cases {
        let path = write_pair(dir.path(), private, public);
        let error = ZoneKey::read(&path).expect_err(why).to_string();
        assert!(
            error.contains(why) && error.contains("Kservices.local.+013+57412"),
            "{why}: {error}"
        );
    }
    let error = ZoneKey::read(&dir.path().join("Kmissing"))
        .expect_err("missing")
        .to_string();
    assert!(error.contains("Kmissing.private"), "{error}");
}
