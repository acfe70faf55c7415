//! Loading, checking and reloading the encrypted listeners' certificate.

use super::*;

/// A self-signed certificate for `name` and its key, as PEM.
fn pair(name: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let params = rcgen::CertificateParams::new(vec![name.to_string()]).expect("params");
    let cert = params.self_signed(&key).expect("certificate");
    (cert.pem(), key.serialize_pem())
}

fn write(dir: &Path, file: &str, text: &str) -> PathBuf {
    let path = dir.join(file);
    std::fs::write(&path, text).expect("write");
    path
}

fn subject(certificates: &Certificates) -> Vec<u8> {
    certificates.current.load().cert[0].to_vec()
}

#[test]
fn a_pair_loads_and_a_wrong_one_is_refused_naming_the_files() {
    let dir = tempfile::tempdir().expect("dir");
    let (cert, key) = pair("dns.example");
    let (_, other_key) = pair("other.example");
    let cert = write(dir.path(), "cert.pem", &cert);
    let key_path = write(dir.path(), "key.pem", &key);
    let other = write(dir.path(), "other.pem", &other_key);
    assert!(Certificates::load(&cert, &key_path).is_ok());
    let error = Certificates::load(&cert, &other)
        .expect_err("mismatch")
        .to_string();
    assert!(
        error.contains("does not go with --tls-cert") && error.contains("other.pem"),
        "{error}"
    );
    let missing = dir.path().join("missing.pem");
    let error = Certificates::load(&missing, &key_path)
        .expect_err("missing")
        .to_string();
    assert!(
        error.starts_with("--tls-cert") && error.contains("cannot read"),
        "{error}"
    );
    // A key file given as the certificate holds no certificate.
    let error = Certificates::load(&key_path, &key_path)
        .expect_err("no cert")
        .to_string();
    assert!(error.contains("no PEM CERTIFICATE"), "{error}");
}

#[test]
fn reload_takes_a_new_pair_and_keeps_the_old_one_when_the_new_is_broken() {
    let dir = tempfile::tempdir().expect("dir");
    let (cert, key) = pair("one.example");
    let cert_path = write(dir.path(), "cert.pem", &cert);
    let key_path = write(dir.path(), "key.pem", &key);
    let certificates = Certificates::load(&cert_path, &key_path).expect("load");
    let first = subject(&certificates);
    let (cert, key) = pair("two.example");
    write(dir.path(), "cert.pem", &cert);
    write(dir.path(), "key.pem", &key);
    certificates.reload().expect("reload");
    let second = subject(&certificates);
    assert_ne!(first, second);
    // A certificate renewed without its key: refused, the pair in use stays.
    let (cert, _) = pair("three.example");
    write(dir.path(), "cert.pem", &cert);
    assert!(certificates.reload().is_err());
    assert_eq!(subject(&certificates), second);
    assert!(certificates.server_config(&[b"dot"]).is_ok());
}
