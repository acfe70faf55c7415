//! Why talking to etcd failed, in words an operator can act on, and whether retrying can help:
//! wrong credentials, a missing permission or a certificate that does not verify will not fix
//! themselves; a refused connection, a timeout or an election will.

use std::error::Error as StdError;
use std::path::PathBuf;

use thiserror::Error;
use tonic::Code;

use super::{EtcdConfig, REQUEST_TIMEOUT};

/// etcd's message for a wrong user name or password (gRPC `InvalidArgument`).
const AUTH_FAILED: &str = "etcdserver: authentication failed, invalid user ID or password";
/// etcd's message when authentication is on and the client sent no user (`InvalidArgument`).
const USER_EMPTY: &str = "etcdserver: user name is empty";
/// etcd's message when a user is given but authentication is off (`FailedPrecondition`).
const AUTH_NOT_ENABLED: &str = "etcdserver: authentication is not enabled";
/// Messages of the layers between etcd-client and the socket that say nothing of the cause.
const VAGUE: [&str; 2] = ["transport error", "connection error"];

/// What etcd says when a request meets an election (etcdserver's ErrNoLeader, ErrLeaderChanged,
/// ErrTimeoutDueToLeaderFail).
const ELECTION: [&str; 3] = ["no leader", "leader changed", "previous leader failure"];

/// Why a connection to etcd could not be set up or a request failed.
#[derive(Debug, Error)]
pub enum EtcdError {
    /// A file named by a flag could not be read.
    #[error("{flag} {}: cannot read: {error}", path.display())]
    File {
        /// The flag (`--etcd-ca`, …).
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error (in the message, so not a source: it would be printed twice).
        error: std::io::Error,
    },
    /// A file named by a flag holds no PEM block of the expected kind.
    #[error("{flag} {}: no PEM {kind} in it", path.display())]
    NotPem {
        /// The flag (`--etcd-ca`, …).
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// What it should hold ("CERTIFICATE", "PRIVATE KEY").
        kind: &'static str,
    },
    /// A flag that needs another one, given alone.
    #[error("{0} given without {1}: they go together")]
    Pair(&'static str, &'static str),
    /// An endpoint that cannot work with the other flags.
    #[error("--etcd {endpoint}: {why}")]
    Endpoint {
        /// The endpoint as given.
        endpoint: String,
        /// What is wrong with it.
        why: String,
    },
    /// No endpoint at all.
    #[error("no etcd endpoint given (--etcd)")]
    NoEndpoint,
    /// No connection could be set up within the connect and request timeouts.
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
    /// etcd, or the connection to it, failed.
    #[error("etcd at {endpoints}: {cause}")]
    Client {
        /// The endpoints tried.
        endpoints: String,
        /// The real cause, found in the error's source chain, with what to check.
        cause: String,
        /// True when retrying cannot help (credentials, permission, TLS).
        permanent: bool,
        /// The client's error (its own text is "transport error" more often than not, so it is
        /// not the source: `cause` says what it means).
        error: etcd_client::Error,
    },
    /// A stream the member should keep open ended.
    #[error("etcd at {endpoints}: the {what} ended")]
    Closed {
        /// The endpoints tried.
        endpoints: String,
        /// Which stream.
        what: &'static str,
    },
    /// The task fetching the next page of a read failed.
    #[error("reading the next page: {0}")]
    Page(#[from] tokio::task::JoinError),
}

impl EtcdError {
    /// True for what retrying cannot fix: bad flags, unreadable files, wrong credentials, a
    /// missing permission, a certificate that does not verify.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::File { .. }
            | Self::NotPem { .. }
            | Self::Pair(..)
            | Self::Endpoint { .. }
            | Self::NoEndpoint => true,
            Self::Client { permanent, .. } => *permanent,
            Self::ConnectTimeout { .. }
            | Self::Timeout { .. }
            | Self::Closed { .. }
            | Self::Page(_) => false,
        }
    }

    /// True when the member answered that it has no leader, or lost the one it had while the
    /// request waited (`no leader`, `leader changed`, `request timed out, possibly due to
    /// previous leader failure`): an election is under way, or the member is cut off; another
    /// member may well have a leader, and this one will once the election ends.
    pub fn is_leaderless(&self) -> bool {
        matches!(self, EtcdError::Client {
            error: etcd_client::Error::GRpcStatus(status), ..
        } if ELECTION.iter().any(|text| status.message().contains(text)))
    }

    /// True when a response exceeded the client's message size limit: tonic's decoder reports
    /// it as `OUT_OF_RANGE`.
    pub(super) fn is_too_large(&self) -> bool {
        matches!(self, EtcdError::Client {
            error: etcd_client::Error::GRpcStatus(status), ..
        } if status.code() == Code::OutOfRange)
    }
}

impl EtcdConfig {
    /// Wraps a client error with the endpoints it concerns, its real cause and whether
    /// retrying can help.
    pub fn client_error(&self, error: etcd_client::Error) -> EtcdError {
        let (cause, permanent) = self.classify(&error);
        EtcdError::Client {
            endpoints: self.endpoints_text(),
            cause,
            permanent,
            error,
        }
    }

    /// The cause of `error` in words, naming the user or file to check, and whether it is
    /// permanent.
    fn classify(&self, error: &etcd_client::Error) -> (String, bool) {
        let detail = cause_chain(error);
        if let Some(tls) = find_tls_error(error) {
            return self.classify_tls(tls, &detail);
        }
        let user = match &self.user {
            Some(user) => format!("user {user:?}"),
            None => "no --etcd-user".to_string(),
        };
        match error {
            etcd_client::Error::GRpcStatus(status) => match (status.code(), status.message()) {
                (Code::InvalidArgument, AUTH_FAILED) => (
                    format!("authentication failed for {user}: wrong user or password ({detail})"),
                    true,
                ),
                (Code::InvalidArgument, USER_EMPTY) => (
                    format!(
                        "etcd requires authentication: give --etcd-user and --etcd-password \
                         ({detail})"
                    ),
                    true,
                ),
                (Code::FailedPrecondition, AUTH_NOT_ENABLED) => (
                    format!(
                        "authentication is not enabled in etcd, yet {user} was given: drop \
                         --etcd-user/--etcd-password or enable it ({detail})"
                    ),
                    true,
                ),
                (Code::PermissionDenied, _) => (
                    format!(
                        "permission denied for {user}: its roles do not grant this access \
                         ({detail})"
                    ),
                    true,
                ),
                (Code::Unauthenticated, _) => (
                    format!("authentication refused for {user} ({detail})"),
                    true,
                ),
                // Other invalid arguments are requests etcd will refuse every time.
                (Code::InvalidArgument, _) => (detail, true),
                _ => (detail, false),
            },
            // Only building an endpoint's TLS settings fails this way (connections fail
            // through the balanced channel, as a status).
            etcd_client::Error::TransportError(_) => (
                format!("TLS set-up failed ({}): {detail}", self.tls_files()),
                true,
            ),
            etcd_client::Error::InvalidUri(_) | etcd_client::Error::InvalidArgs(_) => {
                (detail, true)
            }
            _ => (detail, false),
        }
    }

    fn classify_tls(&self, tls: &rustls::Error, detail: &str) -> (String, bool) {
        use rustls::Error as Tls;
        let ca = match &self.ca {
            Some(ca) => format!("--etcd-ca {}", ca.display()),
            None => "no --etcd-ca given".to_string(),
        };
        match tls {
            Tls::InvalidCertificate(_) | Tls::UnsupportedNameType => (
                format!("TLS: the server's certificate does not verify ({ca}): {detail}"),
                true,
            ),
            Tls::AlertReceived(_) | Tls::NoCertificatesPresented | Tls::PeerIncompatible(_) => (
                format!("TLS: the handshake failed ({}): {detail}", self.tls_files()),
                true,
            ),
            Tls::InconsistentKeys(_) | Tls::NoApplicationProtocol => (
                format!("TLS set-up failed ({}): {detail}", self.tls_files()),
                true,
            ),
            _ => (format!("TLS: {detail}"), false),
        }
    }

    /// The TLS flags given, for messages.
    fn tls_files(&self) -> String {
        let files: Vec<String> = [
            ("--etcd-ca", &self.ca),
            ("--etcd-cert", &self.cert),
            ("--etcd-key", &self.key),
        ]
        .into_iter()
        .filter_map(|(flag, path)| Some(format!("{flag} {}", path.as_ref()?.display())))
        .collect();
        if files.is_empty() {
            "no --etcd-ca/--etcd-cert/--etcd-key given".to_string()
        } else {
            files.join(", ")
        }
    }
}

/// The first error below `error` and the errors it wraps: etcd-client's own error does not
/// expose its source, and a gRPC status's message is often a generic "transport error".
fn first_source(error: &etcd_client::Error) -> Option<&(dyn StdError + 'static)> {
    match error {
        etcd_client::Error::TransportError(e) => e.source(),
        etcd_client::Error::GRpcStatus(status) => status.source(),
        _ => None,
    }
}

/// The readable cause: the top message, then each distinct, non-generic message of the source
/// chain ("tcp connect error: Connection refused (os error 111)").
fn cause_chain(error: &etcd_client::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let top = match error {
        etcd_client::Error::GRpcStatus(status) if !status.message().is_empty() => {
            status.message().to_string()
        }
        etcd_client::Error::GRpcStatus(status) => format!("{:?}", status.code()),
        etcd_client::Error::TransportError(e) => e.to_string(),
        other => other.to_string(),
    };
    let mut next = first_source(error);
    for text in std::iter::once(top).chain(std::iter::from_fn(|| {
        let current = next?;
        next = current.source();
        Some(current.to_string())
    })) {
        if !VAGUE.contains(&text.as_str()) && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    if parts.is_empty() {
        error.to_string()
    } else {
        parts.join(": ")
    }
}

/// The TLS error in `error`'s source chain, if any. tokio-rustls reports TLS failures as an
/// `io::Error` wrapping a `rustls::Error`, which `io::Error::source` skips: look inside.
fn find_tls_error(error: &etcd_client::Error) -> Option<&rustls::Error> {
    let mut next = first_source(error);
    while let Some(current) = next {
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        let inner = current
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>());
        if inner.is_some() {
            return inner;
        }
        next = current.source();
    }
    None
}

#[cfg(test)]
mod tests;
