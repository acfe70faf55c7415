//! Certificates made at test time for the mutual-TLS tests: a CA, a server certificate for
//! 127.0.0.1 and a client certificate it signed, and an unrelated CA that verifies neither;
//! the files a client needs.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tempfile::TempDir;

/// The files a client needs for mutual TLS.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The CA that signed the server's and the client's certificates.
    pub ca: PathBuf,
    /// The client certificate.
    pub cert: PathBuf,
    /// The client key.
    pub key: PathBuf,
}

impl TlsFiles {
    /// The client flags for these files.
    pub fn flags(&self) -> Vec<String> {
        let mut flags = Vec::new();
        for (flag, path) in [
            ("--etcd-ca", &self.ca),
            ("--etcd-cert", &self.cert),
            ("--etcd-key", &self.key),
        ] {
            flags.push(flag.to_string());
            flags.push(path.display().to_string());
        }
        flags
    }
}

/// A CA with a server and a client certificate, in PEM files in a temp dir.
pub struct Pki {
    /// The server's certificate (for 127.0.0.1 and localhost).
    pub server_cert: PathBuf,
    /// The server's key.
    pub server_key: PathBuf,
    /// What a client needs: the CA, its certificate and key.
    pub client: TlsFiles,
    /// A CA that signed nothing here: a client trusting it cannot verify the server.
    pub other_ca: PathBuf,
    _dir: TempDir,
}

impl Pki {
    /// Makes the certificates.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let (ca_pem, ca) = authority("etcd-dns test CA");
        let (other_pem, _) = authority("some other CA");
        let write = |name: &str, text: &str| -> PathBuf {
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("write PEM");
            path
        };
        let (cert, key) = leaf(
            &ca,
            "etcd",
            &["127.0.0.1", "localhost"],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let server_cert = write("server.pem", &cert);
        let server_key = write("server.key", &key);
        let (cert, key) = leaf(&ca, "etcd-dns", &[], ExtendedKeyUsagePurpose::ClientAuth);
        let client = TlsFiles {
            ca: write("ca.pem", &ca_pem),
            cert: write("client.pem", &cert),
            key: write("client.key", &key),
        };
        let other_ca = write("other-ca.pem", &other_pem);
        Self {
            server_cert,
            server_key,
            client,
            other_ca,
            _dir: dir,
        }
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        self._dir.path()
    }
}

/// A self-signed CA: its certificate (PEM) and what signs with it.
fn authority(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().expect("CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let cert = params.self_signed(&key).expect("self-sign CA");
    (cert.pem(), Issuer::new(params, key))
}

/// A certificate for `names` with `usage`, signed by `ca`: (certificate PEM, key PEM).
fn leaf(
    ca: &Issuer<'static, KeyPair>,
    common_name: &str,
    names: &[&str],
    usage: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let key = KeyPair::generate().expect("key");
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = CertificateParams::new(names).expect("params");
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.extended_key_usages = vec![usage];
    let cert = params.signed_by(&key, ca).expect("sign");
    (cert.pem(), key.serialize_pem())
}
