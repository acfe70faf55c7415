//! Polling with a deadline instead of sleeping: a condition, an rcode, an answer count.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

use super::dns::{query, Transport};

/// Poll step of [`eventually`].
const POLL_STEP: Duration = Duration::from_millis(20);

/// Polls `check` every 20 ms until `Some`, returned with the time taken; panics after `limit`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> (T, Duration)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return (value, start.elapsed());
        }
        if start.elapsed() > limit {
            panic!("{what}: not within {limit:?}");
        }
        tokio::time::sleep(POLL_STEP).await;
    }
}

/// Waits until `name` answers `rcode` (with answers if NOERROR) over UDP; returns it and the time.
pub async fn wait_rcode(
    addr: SocketAddr,
    name: &str,
    qtype: RecordType,
    rcode: ResponseCode,
    limit: Duration,
) -> (Message, Duration) {
    eventually(&format!("{name} {qtype} → {rcode}"), limit, || async {
        let m = query(addr, name, qtype, Transport::Udp).await;
        (m.metadata.response_code == rcode
            && (rcode != ResponseCode::NoError || !m.answers.is_empty()))
        .then_some(m)
    })
    .await
}

/// Waits until `name`/`qtype` answers exactly `count` records (over UDP).
pub async fn wait_answers(
    addr: SocketAddr,
    name: &str,
    qtype: RecordType,
    count: usize,
    limit: Duration,
) -> Message {
    let what = format!("{count} {qtype} records at {name}");
    let (message, _) = eventually(&what, limit, || async {
        let m = query(addr, name, qtype, Transport::Udp).await;
        (m.answers.len() == count).then_some(m)
    })
    .await;
    message
}
