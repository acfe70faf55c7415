//! The certificate of the encrypted listeners (DNS over TLS, RFC 7858): one PEM certificate
//! chain and key (`--tls-cert`, `--tls-key`), checked at start — an unreadable file, no key, or
//! a key that is not the certificate's stops the server — and reloaded on SIGHUP and when
//! either file changes, without touching the plain listeners or open connections. A new pair
//! that does not load is logged and the one in use kept.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use thiserror::Error;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

/// The encrypted listeners' flags.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TlsFlags {
    /// DNS-over-TLS address to answer on (RFC 7858; repeatable, or comma separated; port 853 is
    /// the standard one, 0 picks a free port); needs --tls-cert and --tls-key
    #[arg(
        long,
        env = "ETCD_DNS_TLS_LISTEN",
        value_delimiter = ',',
        value_name = "ADDR"
    )]
    pub tls_listen: Vec<std::net::SocketAddr>,
    /// DNS-over-HTTPS address to answer on (RFC 8484: GET and POST on /dns-query, HTTP/2 and
    /// HTTP/1.1; repeatable, or comma separated; 443 is the standard port); needs --tls-cert
    /// and --tls-key
    #[arg(
        long,
        env = "ETCD_DNS_HTTPS_LISTEN",
        value_delimiter = ',',
        value_name = "ADDR"
    )]
    pub https_listen: Vec<std::net::SocketAddr>,
    /// DNS-over-QUIC address to answer on (RFC 9250, UDP; repeatable, or comma separated; 853
    /// is the standard port); needs --tls-cert and --tls-key
    #[arg(
        long,
        env = "ETCD_DNS_QUIC_LISTEN",
        value_delimiter = ',',
        value_name = "ADDR"
    )]
    pub quic_listen: Vec<std::net::SocketAddr>,
    /// Certificate chain (PEM) of the encrypted listeners; reloaded on SIGHUP and when the file
    /// changes
    #[arg(long, env = "ETCD_DNS_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert; reloaded with it
    #[arg(long, env = "ETCD_DNS_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
}

/// Why the TLS flags cannot work together.
#[derive(Debug, Error)]
pub enum TlsFlagsError {
    /// A listener without a certificate, or half a pair.
    #[error("{0}")]
    Flags(&'static str),
    /// The certificate and key.
    #[error(transparent)]
    Pair(#[from] TlsError),
}

impl TlsFlags {
    /// The certificate, loaded and checked, when an encrypted listener is asked for.
    pub fn certificates(&self) -> Result<Option<Arc<Certificates>>, TlsFlagsError> {
        let listening = !self.tls_listen.is_empty()
            || !self.https_listen.is_empty()
            || !self.quic_listen.is_empty();
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) if listening => Ok(Some(Certificates::load(cert, key)?)),
            (Some(_), Some(_)) => Err(TlsFlagsError::Flags(
                "--tls-cert and --tls-key given without --tls-listen, --https-listen or \
                 --quic-listen: no listener would use them",
            )),
            (None, None) if !listening => Ok(None),
            (None, None) => Err(TlsFlagsError::Flags(
                "--tls-listen, --https-listen and --quic-listen need --tls-cert and --tls-key \
                 (PEM certificate chain and key)",
            )),
            (Some(_), None) => Err(TlsFlagsError::Flags("--tls-cert given without --tls-key")),
            (None, Some(_)) => Err(TlsFlagsError::Flags("--tls-key given without --tls-cert")),
        }
    }
}

/// How often the files' modification times are compared with the loaded pair's.
const CHANGE_POLL: Duration = Duration::from_secs(2);

/// Why a certificate and key could not be used.
#[derive(Debug, Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("{flag} {}: cannot read: {error}", path.display())]
    Read {
        /// `--tls-cert` or `--tls-key`.
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// A file held no PEM block of the kind it should.
    #[error("{flag} {}: no PEM {kind} in it", path.display())]
    NotPem {
        /// `--tls-cert` or `--tls-key`.
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// CERTIFICATE or PRIVATE KEY.
        kind: &'static str,
    },
    /// rustls could not make a server configuration.
    #[error("TLS configuration: {0}")]
    Config(rustls::Error),
    /// rustls refused the pair (a key it cannot use, or not the certificate's).
    #[error("--tls-key {} does not go with --tls-cert {}: {error}", key.display(), cert.display())]
    Pair {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls's reason.
        error: rustls::Error,
    },
}

/// The certificate and key in use, and where they come from.
pub struct Certificates {
    cert: PathBuf,
    key: PathBuf,
    current: ArcSwap<CertifiedKey>,
    /// The files' modification times when last loaded.
    stamps: Mutex<(Option<SystemTime>, Option<SystemTime>)>,
}

impl fmt::Debug for Certificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificates")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// A file's modification time, if it can be read.
fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Reads `path` for `flag`.
fn read(flag: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|error| TlsError::Read {
        flag,
        path: path.to_path_buf(),
        error,
    })
}

/// Loads the pair, checking that the key is the certificate's.
fn load_pair(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(&read("--tls-cert", cert)?)
            .filter_map(Result::ok)
            .collect();
    if chain.is_empty() {
        return Err(TlsError::NotPem {
            flag: "--tls-cert",
            path: cert.to_path_buf(),
            kind: "CERTIFICATE",
        });
    }
    let private =
        PrivateKeyDer::from_pem_slice(&read("--tls-key", key)?).map_err(|_| TlsError::NotPem {
            flag: "--tls-key",
            path: key.to_path_buf(),
            kind: "PRIVATE KEY",
        })?;
    let provider = rustls::crypto::ring::default_provider();
    CertifiedKey::from_der(chain, private, &provider).map_err(|error| TlsError::Pair {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        error,
    })
}

impl Certificates {
    /// Loads `cert` and `key` (PEM), or says why they cannot serve.
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<Self>, TlsError> {
        let stamps = (modified(cert), modified(key));
        let pair = load_pair(cert, key)?;
        Ok(Arc::new(Self {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: ArcSwap::from_pointee(pair),
            stamps: Mutex::new(stamps),
        }))
    }

    /// Loads the files again; on failure the pair in use stays (and the files are not tried
    /// again until they change or SIGHUP comes).
    pub fn reload(&self) -> Result<(), TlsError> {
        *self.stamps.lock().unwrap_or_else(|e| e.into_inner()) =
            (modified(&self.cert), modified(&self.key));
        let pair = load_pair(&self.cert, &self.key)?;
        self.current.store(Arc::new(pair));
        Ok(())
    }

    /// True when either file changed since it was last loaded.
    fn changed(&self) -> bool {
        let now = (modified(&self.cert), modified(&self.key));
        *self.stamps.lock().unwrap_or_else(|e| e.into_inner()) != now
    }

    /// A rustls server configuration that always presents the current pair, offering `alpn`
    /// (TLS 1.2 and 1.3, ring's cipher suites).
    pub fn server_config(self: &Arc<Self>, alpn: &[&[u8]]) -> Result<Arc<ServerConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// Reloads `certificates` on SIGHUP and when a file changes, until `shutdown`.
pub async fn keep_fresh(certificates: Arc<Certificates>, shutdown: CancellationToken) {
    let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(signal) => Some(signal),
        Err(error) => {
            error!(%error, "cannot listen for SIGHUP: certificates reload on file change only");
            None
        }
    };
    let mut poll = tokio::time::interval(CHANGE_POLL);
    loop {
        let why = tokio::select! {
            _ = shutdown.cancelled() => return,
            Some(()) = async { match &mut hangup { Some(s) => s.recv().await, None => None } } => "SIGHUP",
            _ = poll.tick() => {
                if !certificates.changed() {
                    continue;
                }
                "file changed"
            }
        };
        match certificates.reload() {
            Ok(()) => info!(why, cert = %certificates.cert.display(), "TLS certificate reloaded"),
            Err(error) => error!(why, %error, "TLS certificate not reloaded; the one in use stays"),
        }
    }
}

#[cfg(test)]
mod tests;
