//! etcd access shared by both binaries: endpoints, authentication and TLS, bounded requests,
//! and the paged read of a prefix at one revision.

use std::path::{Path, PathBuf};
use std::time::Duration;

use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};

use crate::flags::split_list;

mod error;
mod read;
pub use error::EtcdError;
pub use read::{range_start, read_prefix, read_prefix_at, FIRST_PAGE, PAGE_MAX};

/// Default etcd endpoint.
pub const DEFAULT_ETCD: &str = "http://127.0.0.1:2379";
/// How long to wait for a TCP/TLS connection to an endpoint.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// HTTP/2 keep-alive interval: a silent peer is noticed within interval + timeout, which bounds
/// how long a watch can hang on a dead member. etcd answers pings more frequent than its
/// `--grpc-keepalive-min-time` (default 5 s) with GOAWAY "too many pings", which breaks the
/// watch, so stay well above it.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// HTTP/2 keep-alive timeout.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on unary requests (reads, puts, grants); streams are not bounded by it.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How to reach etcd.
#[derive(Debug, Clone, Default)]
pub struct EtcdConfig {
    /// Endpoint URLs (`http://host:port` or `https://…`).
    pub endpoints: Vec<String>,
    /// User name for etcd authentication.
    pub user: Option<String>,
    /// Password for etcd authentication.
    pub password: Option<String>,
    /// CA certificate (PEM) that signed the etcd server certificates.
    pub ca: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS.
    pub cert: Option<PathBuf>,
    /// Client key (PEM) for mutual TLS.
    pub key: Option<PathBuf>,
}

impl EtcdConfig {
    /// Endpoints parsed from a comma-separated list.
    pub fn from_list(list: &str) -> Self {
        Self {
            endpoints: split_list(list),
            ..Self::default()
        }
    }

    /// The endpoints as one string, for messages.
    pub fn endpoints_text(&self) -> String {
        self.endpoints.join(",")
    }

    /// Checks the flags and reads the files they name, so that a typo or an unreadable file
    /// stops start-up at once, naming the flag and the file, instead of failing every
    /// connection attempt.
    pub fn validate(&self) -> Result<(), EtcdError> {
        if self.endpoints.is_empty() {
            return Err(EtcdError::NoEndpoint);
        }
        let tls_flag = [
            ("--etcd-ca", &self.ca),
            ("--etcd-cert", &self.cert),
            ("--etcd-key", &self.key),
        ]
        .into_iter()
        .find_map(|(flag, path)| path.as_ref().map(|_| flag));
        for endpoint in &self.endpoints {
            let why = match (endpoint.split_once("://"), tls_flag) {
                (Some(("http", _)), Some(flag)) => {
                    format!("http:// does not use TLS, yet {flag} was given: use https://")
                }
                (Some(("http" | "https", "")), _) => "no host".to_string(),
                (Some(("http" | "https", _)) | None, _) => continue,
                (Some((scheme, _)), _) => {
                    format!("unknown scheme {scheme}://: use http:// or https://")
                }
            };
            return Err(EtcdError::Endpoint {
                endpoint: endpoint.clone(),
                why,
            });
        }
        self.options().map(drop)
    }

    /// The client options; reads the TLS files (again at every connection, so renewed
    /// certificates are picked up).
    fn options(&self) -> Result<ConnectOptions, EtcdError> {
        let mut options = ConnectOptions::new()
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_keep_alive(KEEPALIVE_INTERVAL, KEEPALIVE_TIMEOUT)
            .with_keep_alive_while_idle(true)
            // A member cut off from its cluster must not serve a stale watch forever.
            .with_require_leader(true)
            // etcd's simple tokens expire after 5 idle minutes: authenticate again rather
            // than fail the request.
            .with_auto_token_refresh(true);
        match (&self.user, &self.password) {
            (Some(user), Some(password)) => options = options.with_user(user, password),
            (None, None) => {}
            (Some(_), None) => return Err(EtcdError::Pair("--etcd-user", "--etcd-password")),
            (None, Some(_)) => return Err(EtcdError::Pair("--etcd-password", "--etcd-user")),
        }
        if self.ca.is_some() || self.cert.is_some() || self.key.is_some() {
            let mut tls = TlsOptions::new();
            if let Some(ca) = &self.ca {
                tls = tls.ca_certificate(Certificate::from_pem(read_pem(
                    "--etcd-ca",
                    ca,
                    CERTIFICATE,
                )?));
            }
            match (&self.cert, &self.key) {
                (Some(cert), Some(key)) => {
                    let cert = read_pem("--etcd-cert", cert, CERTIFICATE)?;
                    tls = tls.identity(Identity::from_pem(
                        cert,
                        read_pem("--etcd-key", key, PRIVATE_KEY)?,
                    ));
                }
                (None, None) => {}
                (Some(_), None) => return Err(EtcdError::Pair("--etcd-cert", "--etcd-key")),
                (None, Some(_)) => return Err(EtcdError::Pair("--etcd-key", "--etcd-cert")),
            }
            options = options.with_tls(tls);
        }
        Ok(options)
    }

    /// This configuration with only its endpoint number `index` (mod the count): a session
    /// that found its endpoint stalled moves on to the next one instead of letting the
    /// client's balancer pick the frozen member again.
    pub fn only(&self, index: usize) -> Self {
        let mut one = self.clone();
        if let Some(endpoint) = self.endpoints.get(index % self.endpoints.len().max(1)) {
            one.endpoints = vec![endpoint.clone()];
        }
        one
    }

    /// Connects to the endpoints (the client balances across them).
    pub async fn connect(&self) -> Result<Client, EtcdError> {
        if self.endpoints.is_empty() {
            return Err(EtcdError::NoEndpoint);
        }
        let options = self.options()?;
        let connect = Client::connect(&self.endpoints, Some(options));
        match tokio::time::timeout(CONNECT_TIMEOUT + REQUEST_TIMEOUT, connect).await {
            Ok(result) => result.map_err(|source| self.client_error(source)),
            Err(_) => Err(EtcdError::ConnectTimeout {
                endpoints: self.endpoints_text(),
            }),
        }
    }

    /// Runs one unary request, bounded by [`REQUEST_TIMEOUT`], naming the endpoints on error.
    pub async fn timed<T>(
        &self,
        request: impl std::future::Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, EtcdError> {
        self.timed_within(REQUEST_TIMEOUT, request).await
    }

    /// [`EtcdConfig::timed`] with its own bound, for requests whose size is known to be large.
    pub async fn timed_within<T>(
        &self,
        limit: Duration,
        request: impl std::future::Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, EtcdError> {
        match tokio::time::timeout(limit, request).await {
            Ok(result) => result.map_err(|source| self.client_error(source)),
            Err(_) => Err(EtcdError::Timeout {
                endpoints: self.endpoints_text(),
            }),
        }
    }
}

/// PEM block of a certificate (`-----BEGIN CERTIFICATE-----`).
const CERTIFICATE: &str = "CERTIFICATE";
/// End of a PEM private key block's label (`PRIVATE KEY`, `EC PRIVATE KEY`, `RSA PRIVATE KEY`).
const PRIVATE_KEY: &str = "PRIVATE KEY";

/// Reads the file named by `flag` and checks that it holds a PEM block of `kind`: a file
/// without one would only fail later, and obscurely (tonic ignores a CA file without
/// certificates, and the server's certificate then "does not verify").
fn read_pem(flag: &'static str, path: &Path, kind: &'static str) -> Result<Vec<u8>, EtcdError> {
    let bytes = std::fs::read(path).map_err(|error| EtcdError::File {
        flag,
        path: path.to_path_buf(),
        error,
    })?;
    let end = format!("{kind}-----");
    let found = String::from_utf8_lossy(&bytes)
        .lines()
        .any(|line| line.starts_with("-----BEGIN ") && line.trim_end().ends_with(&end));
    if !found {
        return Err(EtcdError::NotPem {
            flag,
            path: path.to_path_buf(),
            kind,
        });
    }
    Ok(bytes)
}

/// The first key after every key that starts with `prefix` (etcd's range end for a prefix).
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // Every byte was 0xff (or the prefix is empty): the range runs to the end of the keyspace.
    vec![0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ends() {
        assert_eq!(prefix_end(b"services/"), b"services0".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b""), vec![0]);
    }

    #[test]
    fn bad_flags_are_named() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        let junk = dir.path().join("junk.pem");
        std::fs::write(
            &cert,
            "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n",
        )
        .expect("write cert");
        std::fs::write(
            &key,
            "-----BEGIN EC PRIVATE KEY-----\nAA==\n-----END EC PRIVATE KEY-----\n",
        )
        .expect("write key");
        std::fs::write(&junk, "not PEM").expect("write junk");
        let missing = dir.path().join("missing.pem");
        let https = || EtcdConfig::from_list("https://127.0.0.1:2379");
        let cases: Vec<(EtcdConfig, Option<String>)> = vec![
            (
                EtcdConfig::from_list(" , "),
                Some("no etcd endpoint".into()),
            ),
            (EtcdConfig::from_list("127.0.0.1:2379"), None),
            (
                EtcdConfig::from_list("ftp://h:1"),
                Some("--etcd ftp://h:1: unknown scheme".into()),
            ),
            (
                EtcdConfig::from_list("http://"),
                Some("--etcd http://: no host".into()),
            ),
            (
                EtcdConfig {
                    ca: Some(cert.clone()),
                    ..EtcdConfig::from_list("https://a:1,http://b:2")
                },
                Some("--etcd http://b:2: http:// does not use TLS, yet --etcd-ca was given".into()),
            ),
            (
                EtcdConfig {
                    user: Some("u".into()),
                    ..https()
                },
                Some("--etcd-user given without --etcd-password".into()),
            ),
            (
                EtcdConfig {
                    password: Some("p".into()),
                    ..https()
                },
                Some("--etcd-password given without --etcd-user".into()),
            ),
            (
                EtcdConfig {
                    cert: Some(cert.clone()),
                    ..https()
                },
                Some("--etcd-cert given without --etcd-key".into()),
            ),
            (
                EtcdConfig {
                    ca: Some(missing.clone()),
                    ..https()
                },
                Some(format!(
                    "--etcd-ca {}: cannot read: No such file",
                    missing.display()
                )),
            ),
            (
                EtcdConfig {
                    ca: Some(junk.clone()),
                    ..https()
                },
                Some(format!(
                    "--etcd-ca {}: no PEM CERTIFICATE in it",
                    junk.display()
                )),
            ),
            (
                EtcdConfig {
                    cert: Some(cert.clone()),
                    key: Some(cert.clone()),
                    ..https()
                },
                Some(format!(
                    "--etcd-key {}: no PEM PRIVATE KEY in it",
                    cert.display()
                )),
            ),
            (
                EtcdConfig {
                    ca: Some(cert.clone()),
                    cert: Some(cert.clone()),
                    key: Some(key),
                    ..https()
                },
                None,
            ),
        ];
        for (config, expected) in cases {
            let result = config.validate();
            match (&result, &expected) {
                (Ok(()), None) => {}
                (Err(error), Some(text)) => {
                    assert!(error.is_permanent(), "{error}");
                    assert!(
                        error.to_string().starts_with(text.as_str()),
                        "{error} / {text}"
                    );
                }
                _ => panic!("{config:?}: {result:?}, expected {expected:?}"),
            }
        }
    }
}
