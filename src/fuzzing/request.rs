//! Whole requests through the router, as the transports hand them over, against a populated
//! table; every reply is checked against the request it answers.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use hickory_server::net::xfer::Protocol;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::Runtime;

use super::reply::check_reply;
use super::zones::{live_config, static_zone};
use super::{ensure, Violation};
use crate::dns::acl::Acl;
use crate::dns::reply::{REPLY_CAPACITY, TCP_MESSAGE_MAX};
use crate::dns::router::{Answer, Router};
use crate::dns::{router, tcp, CatalogConfig};
use crate::metrics::{Metrics, ThreadStats};
use crate::table::{Registry, Table};
use crate::wire::{FLAG_TC, HEADER_LEN};

/// Where every request comes from: a client allowed to transfer the live zone, so that AXFR
/// is fuzzed too.
pub const CLIENT: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5300);

/// Registrations of the harness's table: every kind of target and field, a name shared with
/// the zone file, one invalid value, and sets too large for 512 and 1,232 bytes.
const REGISTRATIONS: &[(&str, &str)] = &[
    ("services/s-test", r#"{"IP":"192.168.1.26"}"#),
    (
        "services/web/n1",
        r#"{"IP":"10.0.0.1","port":80,"txt":["v=1"]}"#,
    ),
    (
        "services/web/n2",
        r#"{"IP":"10.0.0.2","port":81,"priority":1,"weight":5}"#,
    ),
    (
        "services/web/n3",
        r#"{"ip":"2001:db8::3","port":82,"ttl":30}"#,
    ),
    (
        "services/db",
        r#"{"host":"db.example.internal","port":5432}"#,
    ),
    ("services/alias", r#"{"host":"www.example.internal"}"#),
    (
        "services/api.v2/N1",
        r#"{"IP":"10.0.0.9","txt":{"version":"2","owner":"team"}}"#,
    ),
    ("services/gateway", r#"{"IP":"192.0.2.2"}"#),
    ("services/bad", r#"{"IP":"300.1.1.1"}"#),
];

/// Instances of `services/big`: 60 A records (over 512 bytes), 60 SRV records with their
/// addresses (over 1,232).
const BIG_INSTANCES: u32 = 60;

/// The router over a populated table, and what drives it like the transports do.
pub struct Requests {
    router: Arc<Router>,
    /// A UDP thread's own counters.
    stats: ThreadStats,
    /// Runs what the UDP loop hands to tasks, and the TCP connection.
    runtime: Runtime,
}

impl Default for Requests {
    fn default() -> Self {
        Self::new()
    }
}

impl Requests {
    /// The harness: the live zone `services.local.` (its zone file and the registrations
    /// above), the static zone `example.internal.`, no forwarding (a forwarded request would
    /// wait for an upstream), transfers allowed to [`CLIENT`].
    pub fn new() -> Self {
        let config = live_config();
        let mut registry = Registry::new(Arc::new(config.clone()));
        for (key, value) in REGISTRATIONS {
            registry.put(key.as_bytes(), value.as_bytes());
        }
        for i in 0..BIG_INSTANCES {
            let key = format!("services/big/n{i}");
            let value = format!(r#"{{"IP":"10.1.0.{i}","port":{}}}"#, 8000 + i);
            registry.put(key.as_bytes(), value.as_bytes());
        }
        let long_txt: Vec<String> = (0..8).map(|i| format!("{i}{}", "t".repeat(200))).collect();
        let value = serde_json::json!({ "IP": "10.2.0.1", "txt": long_txt }).to_string();
        registry.put(b"services/txt", value.as_bytes());
        let table = Arc::new(Table::new(&config));
        table.store(registry.snapshot());
        let catalog = CatalogConfig {
            zone_files: vec![static_zone()],
            upstreams: None,
            allow_transfer: Acl::parse(&CLIENT.ip().to_string()).expect("harness ACL"),
            cache_bytes: 0,
        };
        let metrics = Arc::new(Metrics::default());
        let router = Arc::new(router(table, metrics, &catalog).expect("harness catalog"));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("harness runtime");
        Self {
            stats: router.exclusive_stats(),
            router,
            runtime,
        }
    }

    /// `datagram` as the UDP loop answers it: `answer_now` into a reused buffer (which still
    /// holds an earlier reply's bytes), and `answer_later` for what needs the catalog or a
    /// transfer. Checks the reply (or its absence) against the request, and that TCP says the
    /// same: where the UDP reply is whole (no TC), the same flags, RCODE and counts of
    /// questions, answers and authority records (the additional section may have gone).
    pub fn udp(&self, datagram: &[u8]) -> Result<(), Violation> {
        let reply = self.answer_udp(datagram);
        check_reply(datagram, reply.as_deref(), Protocol::Udp)?;
        let over_tcp = self
            .runtime
            .block_on(self.router.answer_tcp(datagram, CLIENT));
        for message in &over_tcp {
            check_reply(datagram, Some(message), Protocol::Tcp)?;
        }
        if over_tcp.is_empty() {
            check_reply(datagram, None, Protocol::Tcp)?;
        }
        // AXFR is NOTIMP over UDP (as Knot answers it) and a transfer over TCP.
        let axfr = hickory_proto::op::Message::from_vec(datagram).is_ok_and(|m| {
            m.queries
                .first()
                .is_some_and(|q| q.query_type() == hickory_proto::rr::RecordType::AXFR)
        });
        match (reply, over_tcp.into_iter().next()) {
            (Some(udp), Some(tcp)) if udp[2] & FLAG_TC == 0 && !axfr => {
                ensure(udp.get(2..10) == tcp.get(2..10), || {
                    format!(
                        "UDP header {:02x?}, TCP header {:02x?}",
                        udp.get(..12),
                        tcp.get(..12)
                    )
                })
            }
            _ => Ok(()),
        }
    }

    pub(super) fn answer_udp(&self, datagram: &[u8]) -> Option<Vec<u8>> {
        let used = vec![0xa5; REPLY_CAPACITY];
        match self
            .router
            .answer_now(datagram, CLIENT, Protocol::Udp, used, &self.stats)
        {
            Answer::Reply(reply) => Some(reply),
            Answer::Drop => None,
            Answer::Later(pending) => self.runtime.block_on(self.router.answer_later(
                datagram,
                CLIENT,
                Protocol::Udp,
                pending,
            )),
        }
    }

    /// `stream` as the bytes a TCP client sends before closing its side, through the server's
    /// connection code over an in-memory pipe. The replies must be those of the messages the
    /// stream frames (each checked against its request), in order, each framed whole.
    pub fn tcp(&self, stream: &[u8]) -> Result<(), Violation> {
        let sent = self.runtime.block_on(self.connection(stream));
        let sent = frames(&sent).ok_or_else(|| Violation("a reply is cut short".into()))?;
        let mut expected = Vec::new();
        for message in messages(stream) {
            let replies = self
                .runtime
                .block_on(self.router.answer_tcp(message, CLIENT));
            if replies.is_empty() {
                check_reply(message, None, Protocol::Tcp)?;
            }
            for reply in &replies {
                check_reply(message, Some(reply), Protocol::Tcp)?;
            }
            expected.extend(replies);
        }
        ensure(sent.len() == expected.len(), || {
            format!(
                "the connection sent {} replies for {} answered messages",
                sent.len(),
                expected.len()
            )
        })?;
        for (i, (got, want)) in sent.iter().zip(&expected).enumerate() {
            // Answers rotate their records, so only the header and the size must agree.
            ensure(
                got.len() == want.len() && got[..HEADER_LEN] == want[..HEADER_LEN],
                || format!("reply {i} over the connection differs from the message's own"),
            )?;
        }
        Ok(())
    }

    /// Runs the server's TCP connection code over a pipe fed `stream`: everything it sends.
    async fn connection(&self, stream: &[u8]) -> Vec<u8> {
        // Larger than any reply, so the pipe never fills while the client is still writing.
        let (client, server) = tokio::io::duplex(2 * TCP_MESSAGE_MAX);
        let serve = tcp::serve_stream(server, CLIENT, &self.router);
        let (mut from_server, mut to_server) = tokio::io::split(client);
        let send = async {
            // The server may close first (garbage): a failed write is its answer.
            let _ = to_server.write_all(stream).await;
            let _ = to_server.shutdown().await;
        };
        let mut sent = Vec::new();
        let receive = from_server.read_to_end(&mut sent);
        let ((), (), _) = tokio::join!(serve, send, receive);
        sent
    }
}

/// The messages a TCP stream frames, by RFC 1035 §4.2.2 and the server's rule that a length
/// below a header ends the connection; a message cut short ends it too.
fn messages(mut stream: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while let [high, low, rest @ ..] = stream {
        let len = u16::from_be_bytes([*high, *low]) as usize;
        if len < HEADER_LEN || rest.len() < len {
            break;
        }
        out.push(&rest[..len]);
        stream = &rest[len..];
    }
    out
}

/// The messages of what a server sent, or `None` when the last one is cut short.
fn frames(mut sent: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    while !sent.is_empty() {
        let [high, low, rest @ ..] = sent else {
            return None;
        };
        let len = u16::from_be_bytes([*high, *low]) as usize;
        out.push(rest.get(..len)?);
        sent = &rest[len..];
    }
    Some(out)
}
