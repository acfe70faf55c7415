//! NOTIFY (RFC 1996): tells secondaries (`--notify ADDR[:PORT],…`) that a live zone changed, so
//! that they transfer it at once instead of at the SOA refresh. One worker per zone and target
//! follows the zone's serial: changes are coalesced (at most one NOTIFY per [`COALESCE`] per
//! zone and target, always for the newest serial), and a NOTIFY is sent again until the target
//! acknowledges it, up to [`TRIES`] times, waiting longer each time.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::DescriptorEncoder;
use thiserror::Error;
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::tsig::{self, Key};
use crate::flags::split_list;
use crate::logging::LogLimit;
use crate::metrics::{counter, Report};
use crate::table::Table;
use crate::wire::{FLAG_AA, FLAG_QR, HEADER_LEN, QNAME_POINTER};

/// Shortest time between two NOTIFYs of one zone to one target.
pub const COALESCE: Duration = Duration::from_millis(100);
/// How often the table is looked at for new serials (changes closer together coalesce).
const POLL: Duration = Duration::from_millis(20);
/// Tries of one NOTIFY before it is given up (the secondary still has the SOA refresh).
pub const TRIES: u32 = 5;
/// How long the first try waits for the acknowledgement; each later one waits twice as long as
/// the one before (250 ms, 0.5, 1, 2, 4 s: a lost datagram costs a quarter of a second, a
/// secondary that is down gets 7.75 s of tries).
const FIRST_TRY_TIMEOUT: Duration = Duration::from_millis(250);
/// Opcode NOTIFY in header byte 2.
const OPCODE_NOTIFY: u8 = 4 << 3;
/// SOA as a type number.
const TYPE_SOA: u16 = 6;

/// A zone's serial and its SOA record (type to RDATA) to announce; empty before the first.
type Announced = (u32, Vec<u8>);

/// NOTIFYs given up on, logged at most once a minute per kind.
static GIVEN_UP: LogLimit = LogLimit::new();

/// A bad `--notify` item.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("{0:?} is not ADDR or ADDR:PORT ([v6]:PORT for IPv6)")]
pub struct NotifyError(String);

/// Parses `--notify`: addresses, with a port or 53.
pub fn parse_targets(list: &str) -> Result<Vec<SocketAddr>, NotifyError> {
    split_list(list)
        .into_iter()
        .map(|item| {
            item.parse::<SocketAddr>()
                .or_else(|_| item.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                .map_err(|_| NotifyError(item.clone()))
        })
        .collect()
}

/// The notifier's counters.
#[derive(Debug, Default)]
pub struct NotifyStats {
    sent: AtomicU64,
    acknowledged: AtomicU64,
    failed: AtomicU64,
}

impl Report for NotifyStats {
    fn report(&self, encoder: &mut DescriptorEncoder) -> std::fmt::Result {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        counter(
            encoder,
            "etcd_dns_notify_sent",
            "NOTIFY messages sent to --notify targets, retries included",
            load(&self.sent),
        )?;
        counter(
            encoder,
            "etcd_dns_notify_acknowledged",
            "NOTIFYs a target acknowledged",
            load(&self.acknowledged),
        )?;
        counter(
            encoder,
            "etcd_dns_notify_failed",
            "NOTIFYs given up on after every try went unanswered (the target still has the SOA refresh)",
            load(&self.failed),
        )
    }
}

/// Sends NOTIFYs for every live zone of `table` to `targets` until `shutdown`, signed with
/// `key` when there is one.
pub async fn run(
    table: Arc<Table>,
    targets: Vec<SocketAddr>,
    key: Option<Key>,
    stats: Arc<NotifyStats>,
    shutdown: CancellationToken,
) {
    if targets.is_empty() {
        return;
    }
    let zones: Vec<(Vec<u8>, watch::Sender<Announced>)> = table
        .load()
        .zones
        .iter()
        .map(|zone| {
            let (sender, _) = watch::channel((zone.serial, Vec::new()));
            (zone.name().to_vec(), sender)
        })
        .collect();
    let mut workers = tokio::task::JoinSet::new();
    for (zone, sender) in &zones {
        for target in &targets {
            workers.spawn(worker(
                zone.clone(),
                *target,
                key.clone(),
                sender.subscribe(),
                stats.clone(),
                shutdown.clone(),
            ));
        }
    }
    let mut last: Vec<Option<u32>> = vec![None; zones.len()];
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(POLL) => {}
        }
        let snapshot = table.load();
        if !snapshot.ready {
            continue;
        }
        for ((_, sender), (zone, last)) in zones.iter().zip(snapshot.zones.iter().zip(&mut last)) {
            // The first serial after start-up is announced too: a secondary may be behind.
            if *last != Some(zone.serial) {
                *last = Some(zone.serial);
                sender.send_replace((zone.serial, zone.soa_tail.to_vec()));
            }
        }
    }
    workers.shutdown().await;
}

/// Follows one zone's serial for one target: NOTIFY for each new one, coalesced and retried.
async fn worker(
    zone: Vec<u8>,
    target: SocketAddr,
    key: Option<Key>,
    mut serials: watch::Receiver<Announced>,
    stats: Arc<NotifyStats>,
    shutdown: CancellationToken,
) {
    let local: SocketAddr = match target {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = match UdpSocket::bind(local).await {
        Ok(socket) => socket,
        Err(error) => {
            warn!(%target, %error, "cannot open a socket for NOTIFY; this target gets none");
            return;
        }
    };
    let mut id: u16 = rand_id();
    // A newer serial arrived while the last NOTIFY was being tried.
    let mut superseded = false;
    loop {
        if !superseded {
            tokio::select! {
                () = shutdown.cancelled() => return,
                changed = serials.changed() => if changed.is_err() { return; },
            }
        }
        superseded = false;
        let (serial, soa_tail) = serials.borrow_and_update().clone();
        if soa_tail.is_empty() {
            continue;
        }
        let mut acknowledged = false;
        for attempt in 0..TRIES {
            let timeout = FIRST_TRY_TIMEOUT * (1 << attempt);
            id = id.wrapping_add(1);
            let mut message = notify_message(id, &zone, &soa_tail);
            if let Some(key) = &key {
                tsig::sign_request(key, &mut message);
            }
            stats.sent.fetch_add(1, Ordering::Relaxed);
            if let Err(error) = socket.send_to(&message, target).await {
                debug!(%target, %error, "NOTIFY not sent");
            }
            // The acknowledgement, a newer serial (which replaces this one at once), or the
            // end.
            tokio::select! {
                acked = wait_ack(&socket, target, id, timeout) => if acked {
                    acknowledged = true;
                    break;
                },
                changed = serials.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    superseded = true;
                    break;
                }
                () = shutdown.cancelled() => return,
            }
        }
        if acknowledged {
            stats.acknowledged.fetch_add(1, Ordering::Relaxed);
            debug!(%target, serial, "NOTIFY acknowledged");
        } else if !superseded {
            stats.failed.fetch_add(1, Ordering::Relaxed);
            if let Some(suppressed) = GIVEN_UP.allow() {
                warn!(%target, serial, tries = TRIES, suppressed,
                    "NOTIFY unanswered; the secondary will see the change at its SOA refresh");
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(COALESCE) => {}
        }
    }
}

/// Waits up to `timeout` for the acknowledgement of NOTIFY `id` from `target`: a
/// response of opcode NOTIFY with that ID (any RCODE: a secondary that refuses says so, and
/// trying again would not change its mind).
async fn wait_ack(socket: &UdpSocket, target: SocketAddr, id: u16, timeout: Duration) -> bool {
    let mut buf = [0u8; 512];
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let received = tokio::time::timeout_at(deadline, socket.recv_from(&mut buf)).await;
        let Ok(Ok((len, from))) = received else {
            return false;
        };
        let reply = &buf[..len];
        let is_ack = from.ip() == target.ip()
            && len >= HEADER_LEN
            && reply[..2] == id.to_be_bytes()
            && reply[2] & FLAG_QR != 0
            && reply[2] & (0xF << 3) == OPCODE_NOTIFY;
        if is_ack {
            let rcode = reply[3] & 0xF;
            if rcode != 0 {
                debug!(%target, rcode, "NOTIFY answered with an error");
            }
            return true;
        }
    }
}

/// A NOTIFY of `zone` (wire form) with its SOA (`soa_tail`: type to RDATA) in the answer
/// section, as Knot and BIND send it.
pub fn notify_message(id: u16, zone: &[u8], soa_tail: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + zone.len() * 2 + soa_tail.len() + 8);
    out.extend_from_slice(&id.to_be_bytes());
    out.push(OPCODE_NOTIFY | FLAG_AA);
    out.push(0);
    out.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 0]);
    out.extend_from_slice(zone);
    out.extend_from_slice(&TYPE_SOA.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&QNAME_POINTER);
    out.extend_from_slice(soa_tail);
    out
}

/// A message ID that differs between runs.
fn rand_id() -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    (nanos ^ (nanos >> 16)) as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Message, OpCode};
    use hickory_proto::rr::RecordType;

    #[test]
    fn targets_parse_with_or_without_a_port() {
        let got = parse_targets("127.0.0.1:5300, 10.0.0.2, [::1]:53").expect("valid");
        let want: Vec<SocketAddr> = ["127.0.0.1:5300", "10.0.0.2:53", "[::1]:53"]
            .iter()
            .map(|a| a.parse().expect("address"))
            .collect();
        assert_eq!(got, want);
        assert!(parse_targets("ns1.example:53").is_err());
        assert_eq!(parse_targets("").expect("empty"), vec![]);
    }

    #[test]
    fn a_notify_is_a_message_hickory_reads() {
        let config = crate::zone::ZoneConfig::new(crate::testing::name("services.local."));
        let apex = crate::zone::Apex::new(&config);
        let message = notify_message(7, &apex.zone_name, &apex.soa_tail(42));
        let parsed = Message::from_vec(&message).expect("parses");
        assert_eq!(parsed.metadata.op_code, OpCode::Notify);
        assert!(parsed.metadata.authoritative);
        assert_eq!(parsed.queries[0].query_type(), RecordType::SOA);
        assert_eq!(parsed.queries[0].name().to_ascii(), "services.local.");
        match &parsed.answers[0].data {
            hickory_proto::rr::RData::SOA(soa) => assert_eq!(soa.serial, 42),
            other => panic!("not an SOA: {other:?}"),
        }
    }
}
