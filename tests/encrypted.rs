//! DNS over TLS (RFC 7858), over HTTPS (RFC 8484) and over QUIC (RFC 9250) against real
//! clients: Knot's kdig verifying the server's certificate, curl resolving a name through DoH
//! and POSTing a query, a quinn client speaking DoQ (Debian's kdig has no +quic);
//! the certificate reloaded on SIGHUP without touching the plain listeners; bad TLS flags
//! refused at start.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use hickory_proto::rr::RecordType;

/// How long a server may take to answer after it starts, or after a reload.
const SETTLE: Duration = Duration::from_secs(15);

/// Knot's kdig, or a panic with the command that installs it.
fn kdig() -> PathBuf {
    for dir in ["/usr/bin", "/usr/local/bin"] {
        let path = Path::new(dir).join("kdig");
        if path.is_file() {
            return path;
        }
    }
    panic!(
        "kdig not found: install it with `apt-get install -y knot-dnsutils` (scripts/deps.sh does)"
    );
}

/// `kdig +tls` of `name` at `addr`, trusting `ca` for the name `localhost`: its exit status
/// and output.
fn dot(addr: SocketAddr, ca: &Path, name: &str) -> (bool, String) {
    let output = Command::new(kdig())
        .arg(format!("@{}", addr.ip()))
        .args(["-p", &addr.port().to_string()])
        .arg(format!("+tls-ca={}", ca.display()))
        .arg("+tls-hostname=localhost")
        .args(["+timeout=2", "+retry=0", name, "A"])
        .output()
        .expect("run kdig");
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success() && text.contains("status: "), text)
}

/// etcd-dns on `etcd` with `listen_flag` on a free loopback port and the certificate `cert`,
/// `key`.
fn encrypted_server(etcd: &Etcd, listen_flag: &str, cert: &Path, key: &Path) -> Daemon {
    let flags = [
        listen_flag,
        "127.0.0.1:0",
        "--tls-cert",
        &cert.display().to_string(),
        "--tls-key",
        &key.display().to_string(),
    ]
    .map(String::from);
    Daemon::etcd_dns(&etcd.endpoint, &flags)
}

/// Copies the server's certificate and key of `pki` to `cert` and `key`.
fn install(pki: &Pki, cert: &Path, key: &Path) {
    std::fs::copy(&pki.server_cert, cert).expect("copy certificate");
    std::fs::copy(&pki.server_key, key).expect("copy key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_over_tls_answers_verified_and_a_new_certificate_takes_over_on_sighup() {
    let etcd = Etcd::start().await;
    etcd.put("services/s-test", r#"{"IP":"192.168.1.26"}"#)
        .await;
    let first = Pki::new();
    let files = tempfile::tempdir().expect("dir");
    let (cert, key) = (files.path().join("tls.pem"), files.path().join("tls.key"));
    install(&first, &cert, &key);
    let server = encrypted_server(&etcd, "--tls-listen", &cert, &key);
    let (udp, tls, http) = (
        server.dns_addr().await,
        server.logged_addr("listening for DNS over TLS addr=").await,
        server.http_addr().await,
    );
    let (text, _) = eventually("kdig +tls answers s-test", SETTLE, || async {
        let (ok, text) = dot(tls, &first.client.ca, "s-test.services.local.");
        (ok && text.contains("192.168.1.26")).then_some(text)
    })
    .await;
    assert!(
        text.contains("status: NOERROR") && text.contains("Flags: qr aa"),
        "{text}"
    );
    let (ok, text) = dot(tls, &first.client.ca, "missing.services.local.");
    assert!(ok && text.contains("status: NXDOMAIN"), "{text}");
    // A client that does not trust the certificate's CA gets nothing.
    let (ok, text) = dot(tls, &first.other_ca, "s-test.services.local.");
    assert!(!ok, "an unverified server answered: {text}");
    let (_, metrics) = http_get(http, "/metrics").await;
    let counted = metric(
        &metrics,
        r#"etcd_dns_encrypted_queries_total{transport="tls"}"#,
    );
    assert!(counted >= Some(2.0), "{counted:?}");

    // A renewed certificate from another CA: SIGHUP, and new connections present it.
    let second = Pki::new();
    install(&second, &cert, &key);
    server.proc.signal("HUP");
    eventually("the new certificate is presented", SETTLE, || async {
        dot(tls, &second.client.ca, "s-test.services.local.")
            .0
            .then_some(())
    })
    .await;
    let (ok, _) = dot(tls, &first.client.ca, "s-test.services.local.");
    assert!(!ok, "the old certificate is still presented");
    assert!(
        server.log().contains("TLS certificate reloaded"),
        "{}",
        server.log()
    );
    // The plain listeners never noticed.
    assert_eq!(
        lookup_a(udp, "s-test.services.local.", Transport::Udp).await,
        ["192.168.1.26"]
    );
    wait_answers(udp, "s-test.services.local.", RecordType::A, 1, SETTLE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tls_flags_stop_the_server_at_start_naming_the_cause() {
    let etcd = Etcd::start().await;
    let pki = Pki::new();
    let other = Pki::new();
    let cert = pki.server_cert.display().to_string();
    let key = pki.server_key.display().to_string();
    let wrong_key = other.server_key.display().to_string();
    let cases: [(Vec<&str>, &str); 4] = [
        (
            vec![
                "--tls-listen",
                "127.0.0.1:0",
                "--tls-cert",
                "/nonexistent.pem",
                "--tls-key",
                &key,
            ],
            "--tls-cert /nonexistent.pem: cannot read",
        ),
        (
            vec![
                "--tls-listen",
                "127.0.0.1:0",
                "--tls-cert",
                &cert,
                "--tls-key",
                &wrong_key,
            ],
            "does not go with --tls-cert",
        ),
        (
            vec!["--tls-listen", "127.0.0.1:0"],
            "--tls-listen, --https-listen and --quic-listen need --tls-cert and --tls-key",
        ),
        (
            vec!["--tls-cert", &cert, "--tls-key", &key],
            "without --tls-listen",
        ),
    ];
    for (flags, cause) in cases {
        let args: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
        let mut server = Daemon::etcd_dns(&etcd.endpoint, &args);
        let (code, took, log) = server.wait_exit(Duration::from_secs(10)).await;
        assert_eq!(code, Some(1), "{flags:?}: {log}");
        assert!(log.contains(cause), "{flags:?}: {log}");
        assert!(took < Duration::from_secs(5), "{flags:?} took {took:?}");
    }
}

/// curl with `args`: its exit status, stdout bytes and stderr.
fn curl(args: &[String]) -> (bool, Vec<u8>, String) {
    let output = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "5"])
        .args(args)
        .output()
        .expect("run curl (apt-get install -y curl)");
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    (output.status.success(), output.stdout, stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_over_https_answers_get_and_post_and_resolves_for_curl() {
    let etcd = Etcd::start().await;
    // The name points at etcd-dns's own HTTP endpoints: curl resolves it through DoH, then
    // fetches /health from it.
    etcd.put("services/s-test", r#"{"IP":"127.0.0.1"}"#).await;
    let pki = Pki::new();
    let server = encrypted_server(&etcd, "--https-listen", &pki.server_cert, &pki.server_key);
    let (udp, https, http) = (
        server.dns_addr().await,
        server
            .logged_addr("listening for DNS over HTTPS addr=")
            .await,
        server.http_addr().await,
    );
    wait_answers(udp, "s-test.services.local.", RecordType::A, 1, SETTLE).await;
    let ca = pki.client.ca.display().to_string();
    let url = format!("https://localhost:{}/dns-query", https.port());

    // curl resolves the name over DoH (HTTP/2), then connects to what it got.
    let (ok, body, stderr) = curl(&[
        "--cacert".into(),
        ca.clone(),
        "--doh-url".into(),
        url.clone(),
        format!("http://s-test.services.local:{}/health", http.port()),
    ]);
    assert!(ok, "curl --doh-url failed: {stderr}");
    assert_eq!(String::from_utf8_lossy(&body).trim(), "ok");

    // A POST of a query in wire form, and a GET of the same in base64url, over HTTP/1.1 too.
    let query = build_query("s-test.services.local.", RecordType::A);
    let bytes = query.to_vec().expect("encode");
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), &bytes).expect("write query");
    use base64::Engine;
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes);
    for (how, extra) in [
        (
            "POST over HTTP/2",
            vec![
                "--http2".to_string(),
                "-H".into(),
                "content-type: application/dns-message".into(),
                "--data-binary".into(),
                format!("@{}", file.path().display()),
                url.clone(),
            ],
        ),
        (
            "GET over HTTP/1.1",
            vec!["--http1.1".to_string(), format!("{url}?dns={encoded}")],
        ),
    ] {
        let mut args = vec!["--cacert".to_string(), ca.clone(), "--include".into()];
        args.extend(extra);
        let (ok, raw, stderr) = curl(&args);
        assert!(ok, "{how}: {stderr}");
        let text = String::from_utf8_lossy(&raw).to_string();
        let split = text.find("\r\n\r\n").expect("headers end");
        let headers = text[..split].to_ascii_lowercase();
        assert!(
            headers.contains("content-type: application/dns-message"),
            "{how}: {headers}"
        );
        assert!(
            headers.contains("cache-control: max-age=5"),
            "{how}: {headers}"
        );
        let reply = parse_reply(&raw[split + 4..], query.metadata.id);
        assert_eq!(addresses(&reply), ["127.0.0.1"], "{how}");
    }
    // Knot's kdig over DoH (its POST), verifying the certificate.
    let output = Command::new(kdig())
        .arg(format!("@{}", https.ip()))
        .args(["-p", &https.port().to_string(), "+https"])
        .arg(format!("+tls-ca={ca}"))
        .args([
            "+tls-hostname=localhost",
            "+timeout=2",
            "s-test.services.local.",
            "A",
        ])
        .output()
        .expect("run kdig");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("status: NOERROR") && text.contains("127.0.0.1"),
        "{text}"
    );
    // Not a DNS query: plain HTTP errors.
    let (_, raw, _) = curl(&[
        "--cacert".into(),
        ca.clone(),
        "--include".into(),
        format!("https://localhost:{}/other", https.port()),
    ]);
    assert!(
        String::from_utf8_lossy(&raw).starts_with("HTTP/2 404"),
        "{}",
        String::from_utf8_lossy(&raw)
    );
    let (_, raw, _) = curl(&[
        "--cacert".into(),
        ca,
        "--include".into(),
        format!("{url}?dns=%%%"),
    ]);
    assert!(
        String::from_utf8_lossy(&raw).starts_with("HTTP/2 400"),
        "{}",
        String::from_utf8_lossy(&raw)
    );
    let (_, metrics) = http_get(http, "/metrics").await;
    let counted = metric(
        &metrics,
        r#"etcd_dns_encrypted_queries_total{transport="https"}"#,
    );
    assert!(counted >= Some(3.0), "{counted:?}");
}

/// Asks `name`/A over DNS over QUIC at `addr`, trusting `ca` for `localhost`, with query ID
/// `id`: the reply's bytes, or why there is none.
async fn doq(addr: SocketAddr, ca: &Path, name: &str, id: u16) -> Result<Vec<u8>, String> {
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject;
    let pem = std::fs::read(ca).expect("CA file");
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.expect("CA")).expect("add CA");
    }
    let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .expect("TLS 1.3")
    .with_root_certificates(roots)
    .with_no_client_auth();
    tls.alpn_protocols = vec![b"doq".to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).expect("QUIC TLS");
    let mut endpoint =
        quinn::Endpoint::client("127.0.0.1:0".parse().expect("addr")).expect("endpoint");
    endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
    let connection = endpoint
        .connect(addr, "localhost")
        .map_err(|e| e.to_string())?
        .await
        .map_err(|e| e.to_string())?;
    let (mut send, mut recv) = connection.open_bi().await.map_err(|e| e.to_string())?;
    let mut query = build_query(name, RecordType::A);
    query.metadata.id = id;
    let bytes = query.to_vec().expect("encode");
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&bytes);
    send.write_all(&framed).await.map_err(|e| e.to_string())?;
    send.finish().map_err(|e| e.to_string())?;
    let reply = recv.read_to_end(65_537).await.map_err(|e| e.to_string())?;
    let len = u16::from_be_bytes([reply[0], reply[1]]) as usize;
    Ok(reply[2..2 + len].to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_over_quic_answers_with_id_zero_and_resets_other_ids() {
    let etcd = Etcd::start().await;
    etcd.put("services/s-test", r#"{"IP":"192.168.1.26"}"#)
        .await;
    let pki = Pki::new();
    let server = encrypted_server(&etcd, "--quic-listen", &pki.server_cert, &pki.server_key);
    let quic = server
        .logged_addr("listening for DNS over QUIC addr=")
        .await;
    let (udp, http) = (server.dns_addr().await, server.http_addr().await);
    wait_answers(udp, "s-test.services.local.", RecordType::A, 1, SETTLE).await;
    let reply = doq(quic, &pki.client.ca, "s-test.services.local.", 0)
        .await
        .expect("DoQ answer");
    let reply = parse_reply(&reply, 0);
    assert_eq!(addresses(&reply), ["192.168.1.26"]);
    assert!(reply.metadata.authoritative);
    let missing = parse_reply(
        &doq(quic, &pki.client.ca, "nope.services.local.", 0)
            .await
            .expect("DoQ answer"),
        0,
    );
    assert_eq!(
        missing.metadata.response_code,
        hickory_proto::op::ResponseCode::NXDomain
    );
    // RFC 9250 §4.2.1: a query ID other than 0 is a protocol error.
    assert!(doq(quic, &pki.client.ca, "s-test.services.local.", 7)
        .await
        .is_err());
    // A client that does not trust the CA does not get through the handshake.
    assert!(doq(quic, &pki.other_ca, "s-test.services.local.", 0)
        .await
        .is_err());
    let (_, metrics) = http_get(http, "/metrics").await;
    let counted = metric(
        &metrics,
        r#"etcd_dns_encrypted_queries_total{transport="quic"}"#,
    );
    assert_eq!(counted, Some(2.0));
}
