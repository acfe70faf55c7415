use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

/// A timeout no passing check here comes near.
const GENEROUS: Duration = Duration::from_secs(10);

#[test]
fn intervals_parse_as_humantime() {
    let cases: &[(&str, Option<Duration>)] = &[
        ("500ms", Some(Duration::from_millis(500))),
        ("5s", Some(Duration::from_secs(5))),
        ("1m", Some(Duration::from_secs(60))),
        ("1m30s", Some(Duration::from_secs(90))),
        ("100ms", Some(MIN_CHECK_INTERVAL)),
        ("99ms", None),
        ("0s", None),
        ("5", None),
        ("soon", None),
        ("", None),
    ];
    for (text, want) in cases {
        assert_eq!(parse_interval(text).ok(), *want, "{text:?}");
    }
    assert_eq!(
        parse_interval(DEFAULT_CHECK_INTERVAL),
        Ok(Duration::from_secs(5))
    );
}

#[test]
fn timeout_is_the_interval_at_most_two_seconds() {
    assert_eq!(
        check_timeout(Duration::from_millis(500)),
        Duration::from_millis(500)
    );
    assert_eq!(check_timeout(Duration::from_secs(5)), MAX_CHECK_TIMEOUT);
}

#[test]
fn urls_parse_to_host_port_and_path() {
    let cases = [
        ("http://127.0.0.1:8080/health", "127.0.0.1", 8080, "/health"),
        ("http://localhost", "localhost", 80, "/"),
        ("http://[::1]:9000/x?y=1", "::1", 9000, "/x?y=1"),
    ];
    for (url, host, port, path) in cases {
        let target: HttpTarget = url.parse().expect(url);
        assert_eq!(
            (target.host.as_str(), target.port, target.path.to_string()),
            (host, port, path.to_string()),
            "{url}"
        );
    }
    for url in [
        "https://127.0.0.1/health",
        "127.0.0.1:8080/health",
        "http://",
        "http://user:pw@host/",
        "ftp://host/",
    ] {
        assert!(
            matches!(url.parse::<HttpTarget>(), Err(InvalidCheck::Url(_))),
            "{url}"
        );
    }
}

#[test]
fn blank_commands_are_refused() {
    assert_eq!(parse_command(" "), Err(InvalidCheck::EmptyCommand));
    assert_eq!(parse_command("true").as_deref(), Ok("true"));
}

#[tokio::test]
async fn command_passes_on_exit_zero_and_quotes_stderr_otherwise() {
    let pass = Check::Command("true".into());
    assert!(pass.run(GENEROUS).await.is_ok());
    let fail = Check::Command("echo first >&2; echo 'not ready' >&2; exit 3".into());
    let error = fail.run(GENEROUS).await.expect_err("exit 3 fails");
    assert!(matches!(error, Failure::Exit { .. }), "{error:?}");
    assert_eq!(error.to_string(), "exit status: 3: not ready");
}

#[tokio::test]
async fn command_past_its_timeout_is_killed_with_its_children() {
    let dir = tempfile::tempdir().expect("temp dir");
    let marker = dir.path().join("survived");
    // The shell's child would create the file after 1 s unless the whole group is killed.
    let command = format!("(sleep 1; touch {}) & wait", marker.display());
    let start = Instant::now();
    let error = Check::Command(command)
        .run(Duration::from_millis(100))
        .await
        .expect_err("times out");
    assert!(matches!(error, Failure::TimedOut(_)), "{error:?}");
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    // Poll past the moment the file would have appeared: it must never appear.
    let deadline = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < deadline {
        assert!(
            !marker.exists(),
            "a child of the timed-out check kept running"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Serves `status` to every request on a free port; returns the check URL.
async fn serve(status: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.ends_with(b"\r\n\r\n") {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let reply = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
            let _ = stream.write_all(reply.as_bytes()).await;
        }
    });
    format!("http://{addr}/health")
}

fn http(url: &str) -> Check {
    Check::Http(url.parse().expect("url"))
}

#[tokio::test]
async fn http_passes_on_2xx_only() {
    let ok = http(&serve("200 OK").await).run(GENEROUS).await;
    assert!(ok.is_ok(), "{ok:?}");
    assert!(http(&serve("204 No Content").await)
        .run(GENEROUS)
        .await
        .is_ok());
    let error = http(&serve("503 Service Unavailable").await)
        .run(GENEROUS)
        .await
        .expect_err("503 fails");
    assert!(matches!(error, Failure::Status(503)), "{error:?}");
}

#[tokio::test]
async fn http_fails_on_refused_and_silent_servers() {
    // Bound, then dropped: nothing listens there any more.
    let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/", closed.local_addr().expect("addr"));
    drop(closed);
    let error = http(&url).run(GENEROUS).await.expect_err("refused");
    assert!(matches!(error, Failure::Connect(_)), "{error:?}");

    // Accepts (the kernel's backlog does) but never answers.
    let silent = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/", silent.local_addr().expect("addr"));
    let error = http(&url)
        .run(Duration::from_millis(200))
        .await
        .expect_err("silent");
    assert!(matches!(error, Failure::TimedOut(_)), "{error:?}");
}

#[tokio::test]
async fn gate_follows_the_check() {
    let dir = tempfile::tempdir().expect("temp dir");
    let flag = dir.path().join("healthy");
    let check = Check::Command(format!("test -e {}", flag.display()));
    let shutdown = CancellationToken::new();
    let mut gate = Gate::spawn(check, MIN_CHECK_INTERVAL, shutdown.clone());
    tokio::time::timeout(GENEROUS, gate.failing())
        .await
        .expect("failing while the file is missing");
    std::fs::write(&flag, "").expect("create flag");
    tokio::time::timeout(GENEROUS, gate.passing())
        .await
        .expect("passing once the file exists");
    std::fs::remove_file(&flag).expect("remove flag");
    tokio::time::timeout(GENEROUS, gate.failing())
        .await
        .expect("failing again");
    shutdown.cancel();

    let mut open = Gate::open();
    tokio::time::timeout(GENEROUS, open.passing())
        .await
        .expect("an open gate passes");
    assert!(
        tokio::time::timeout(Duration::from_millis(50), open.failing())
            .await
            .is_err(),
        "an open gate never fails"
    );
}
