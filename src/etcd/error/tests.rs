//! What etcd failures mean: causes named, permanent ones told apart.
use super::*;

fn config() -> EtcdConfig {
    EtcdConfig {
        user: Some("dns".into()),
        password: Some("secret".into()),
        ca: Some("/etc/ssl/etcd-ca.pem".into()),
        ..EtcdConfig::from_list("https://10.0.0.1:2379")
    }
}

fn status(code: Code, message: &str) -> etcd_client::Error {
    etcd_client::Error::GRpcStatus(tonic::Status::new(code, message))
}

/// A status as the balanced channel reports a failed connection: a vague message, the
/// real cause deep in its sources.
fn connect_failure(cause: std::io::Error) -> etcd_client::Error {
    let mut status = tonic::Status::new(Code::Unavailable, "transport error");
    status.set_source(std::sync::Arc::new(cause));
    etcd_client::Error::GRpcStatus(status)
}

#[test]
fn an_election_is_told_from_other_failures() {
    let etcd = config();
    for text in [
        "etcdserver: no leader",
        "etcdserver: leader changed",
        "etcdserver: request timed out, possibly due to previous leader failure",
    ] {
        let error = etcd.client_error(status(Code::Unavailable, text));
        assert!(error.is_leaderless(), "{text}");
        assert!(!error.is_permanent(), "{text}");
    }
    for text in [
        "etcdserver: request timed out",
        "etcdserver: too many requests",
    ] {
        assert!(!etcd
            .client_error(status(Code::Unavailable, text))
            .is_leaderless());
    }
}

#[test]
fn permanent_failures_name_the_user_or_file() {
    let tls = std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
    );
    let cases: Vec<(etcd_client::Error, &str)> = vec![
        (status(Code::InvalidArgument, AUTH_FAILED), "authentication failed for user \"dns\""),
        (status(Code::InvalidArgument, USER_EMPTY), "requires authentication"),
        (status(Code::FailedPrecondition, AUTH_NOT_ENABLED), "not enabled"),
        (status(Code::PermissionDenied, "etcdserver: permission denied"), "permission denied for user \"dns\""),
        (status(Code::Unauthenticated, "etcdserver: invalid auth token"), "user \"dns\""),
        (connect_failure(tls), "does not verify (--etcd-ca /etc/ssl/etcd-ca.pem): invalid peer certificate: UnknownIssuer"),
    ];
    for (error, expected) in cases {
        let error = config().client_error(error);
        assert!(error.is_permanent(), "{error}");
        let text = error.to_string();
        assert!(
            text.starts_with("etcd at https://10.0.0.1:2379: "),
            "{text}"
        );
        assert!(text.contains(expected), "{text:?} lacks {expected:?}");
    }
}

#[test]
fn transient_failures_keep_their_real_cause() {
    let refused = std::io::Error::new(
        std::io::ErrorKind::ConnectionRefused,
        "Connection refused (os error 111)",
    );
    let cases: Vec<(etcd_client::Error, &str)> = vec![
        (
            connect_failure(refused),
            "Connection refused (os error 111)",
        ),
        (
            status(Code::Unavailable, "etcdserver: no leader"),
            "etcdserver: no leader",
        ),
        (
            status(
                Code::OutOfRange,
                "etcdserver: mvcc: required revision has been compacted",
            ),
            "compacted",
        ),
        (
            status(Code::FailedPrecondition, "etcdserver: not leader"),
            "not leader",
        ),
    ];
    for (error, expected) in cases {
        let error = config().client_error(error);
        assert!(!error.is_permanent(), "{error}");
        assert!(error.to_string().contains(expected), "{error}");
        assert!(!error.to_string().contains("transport error"), "{error}");
    }
}
