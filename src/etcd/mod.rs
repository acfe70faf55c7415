//! etcd access shared by both binaries: endpoints, authentication and TLS, bounded requests,
//! and the paged read of a prefix at one revision.

use std::path::PathBuf;
use std::time::Duration;

use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};
use thiserror::Error;

use crate::flags::split_list;

mod read;
pub use read::{read_prefix, FIRST_PAGE, PAGE_MAX};

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

/// Why a connection to etcd could not be set up.
#[derive(Debug, Error)]
pub enum EtcdError {
    /// A TLS file could not be read.
    #[error("cannot read {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Two flags that go together, one of them given alone.
    #[error("{0} and {1} go together")]
    Pair(&'static str, &'static str),
    /// No endpoint at all.
    #[error("no etcd endpoint given (--etcd)")]
    NoEndpoint,
    /// No connection could be set up within [`CONNECT_TIMEOUT`] + [`REQUEST_TIMEOUT`].
    #[error("etcd at {endpoints}: connection timed out")]
    ConnectTimeout {
        /// The endpoints tried.
        endpoints: String,
    },
    /// A request took longer than [`REQUEST_TIMEOUT`].
    #[error("etcd at {endpoints}: request timed out after {REQUEST_TIMEOUT:?}")]
    Timeout {
        /// The endpoints tried.
        endpoints: String,
    },
    /// The client failed.
    #[error("etcd at {endpoints}: {source}")]
    Client {
        /// The endpoints tried.
        endpoints: String,
        /// The client's error.
        source: etcd_client::Error,
    },
    /// The task fetching the next page of a read failed.
    #[error("reading the next page: {0}")]
    Page(#[from] tokio::task::JoinError),
}

impl EtcdError {
    /// True when a response exceeded the client's message size limit: tonic's decoder reports
    /// it as `OUT_OF_RANGE`.
    fn is_too_large(&self) -> bool {
        matches!(self, EtcdError::Client {
            source: etcd_client::Error::GRpcStatus(status), ..
        } if status.code() == tonic::Code::OutOfRange)
    }
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

    fn options(&self) -> Result<ConnectOptions, EtcdError> {
        let mut options = ConnectOptions::new()
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_keep_alive(KEEPALIVE_INTERVAL, KEEPALIVE_TIMEOUT)
            .with_keep_alive_while_idle(true)
            // A member cut off from its cluster must not serve a stale watch forever.
            .with_require_leader(true);
        match (&self.user, &self.password) {
            (Some(user), Some(password)) => options = options.with_user(user, password),
            (None, None) => {}
            _ => return Err(EtcdError::Pair("--etcd-user", "--etcd-password")),
        }
        if self.ca.is_some() || self.cert.is_some() || self.key.is_some() {
            let mut tls = TlsOptions::new();
            if let Some(ca) = &self.ca {
                tls = tls.ca_certificate(Certificate::from_pem(read(ca)?));
            }
            match (&self.cert, &self.key) {
                (Some(cert), Some(key)) => {
                    tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
                }
                (None, None) => {}
                _ => return Err(EtcdError::Pair("--etcd-cert", "--etcd-key")),
            }
            options = options.with_tls(tls);
        }
        Ok(options)
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
        match tokio::time::timeout(REQUEST_TIMEOUT, request).await {
            Ok(result) => result.map_err(|source| self.client_error(source)),
            Err(_) => Err(EtcdError::Timeout {
                endpoints: self.endpoints_text(),
            }),
        }
    }

    /// Wraps a client error with the endpoints it concerns.
    pub fn client_error(&self, source: etcd_client::Error) -> EtcdError {
        EtcdError::Client {
            endpoints: self.endpoints_text(),
            source,
        }
    }
}

fn read(path: &PathBuf) -> Result<Vec<u8>, EtcdError> {
    std::fs::read(path).map_err(|source| EtcdError::File {
        path: path.clone(),
        source,
    })
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
}
