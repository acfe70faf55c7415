//! TSIG keys, verification and signing, checked against hickory.

use super::*;
use hickory_proto::op::Query;
use hickory_proto::rr::RecordType;

const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA==";

#[test]
fn keys_are_read_from_bind_files_and_flags() {
    let file = format!(
        "# tsig-keygen\nkey \"xfr.example.\" {{\n\talgorithm hmac-sha256;\n\tsecret \"{SECRET}\";\n}};\n\
         /* another */ key other {{ algorithm HMAC-SHA512; secret \"{SECRET}\"; }};"
    );
    let keys = parse_bind_keys(&file).expect("two keys");
    let names: Vec<String> = keys.iter().map(|k| k.name().to_ascii()).collect();
    assert_eq!(names, ["xfr.example.", "other."]);
    assert_eq!(
        parse_key_arg(&format!("k1:{SECRET}")).expect("flag").len(),
        1
    );
    assert!(parse_key_arg(&format!("hmac-sha512:k2:{SECRET}")).is_ok());
    let err = parse_key_arg(&format!("hmac-md5:k3:{SECRET}")).expect_err("md5");
    assert!(err.to_string().contains("not supported"), "{err}");
    assert!(parse_key_arg("k4:not*base64").is_err());
    assert!(parse_key_arg("nothing").is_err());
    assert!(
        parse_bind_keys("key x { secret \"AA==\"; };").is_err(),
        "no algorithm"
    );
}

/// A request signed by hickory verifies, and a reply signed here verifies with hickory.
#[test]
fn requests_verify_and_replies_are_signed_as_hickory_checks_them() {
    let key = Key::new("xfr.example.", "hmac-sha256", SECRET).expect("key");
    let mut request = Message::query();
    request.add_query(Query::query(
        Name::from_ascii("services.local.").expect("name"),
        RecordType::AXFR,
    ));
    request.metadata.id = 77;
    request.finalize(&key.signer, now()).expect("signs");
    let bytes = request.to_vec().expect("encode");
    let parsed = Message::from_vec(&bytes).expect("parses");
    let verified = verify(std::slice::from_ref(&key), &bytes, &parsed)
        .expect("verifies")
        .expect("signed");
    // A wrong key, by name and by secret.
    let other = Key::new("other.", "hmac-sha256", SECRET).expect("key");
    assert_eq!(
        verify(&[other], &bytes, &parsed).err(),
        Some(Refusal::BadKey)
    );
    let wrong = Key::new("xfr.example.", "hmac-sha256", "AAAA").expect("key");
    assert_eq!(
        verify(&[wrong], &bytes, &parsed).err(),
        Some(Refusal::BadSig)
    );
    // Two reply messages, chained.
    let reply = |answers: u16| {
        let mut m = vec![0, 77, 0x84, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        m[6..8].copy_from_slice(&answers.to_be_bytes());
        m
    };
    let mut messages = vec![reply(0), reply(0)];
    sign_all(&verified, &mut messages);
    let (mac, _, _) = key
        .signer
        .verify_message_byte(&messages[0], Some(&verified.mac), true)
        .expect("first verifies");
    key.signer
        .verify_message_byte(&messages[1], Some(&mac), false)
        .expect("second verifies");
    // A NOTIFY signed here verifies as a request.
    let mut notify = crate::dns::notify::notify_message(9, &key.wire, &[0, 6, 0, 1]);
    notify.truncate(HEADER_LEN + key.wire.len() + 4);
    notify[6..8].copy_from_slice(&[0, 0]);
    sign_request(&key, &mut notify);
    let parsed = Message::from_vec(&notify).expect("parses");
    assert!(verify(&[key], &notify, &parsed)
        .expect("verifies")
        .is_some());
}
