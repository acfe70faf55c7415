//! A small DNS client for the tests: queries over UDP or TCP with the reply's ID checked, and
//! the answer sections as sorted text.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// How long one DNS query may take before the test gives up on it.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// UDP or TCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Datagram.
    Udp,
    /// Length-prefixed stream.
    Tcp,
}

impl Transport {
    /// Both transports, for behaviour that must hold over each.
    pub const BOTH: [Transport; 2] = [Transport::Udp, Transport::Tcp];
}

/// A random message ID, so that a reply to some other query cannot pass the ID check.
pub fn rand_id() -> u16 {
    rand::random()
}

/// Builds a query message for `name`/`qtype` with a random ID, RD and EDNS (payload 1232).
pub fn build_query(name: &str, qtype: RecordType) -> Message {
    let mut message = Message::new(rand_id(), MessageType::Query, OpCode::Query);
    // As dig and glibc do: forwarded names need RD.
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(Name::from_ascii(name).expect("name"), qtype));
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    message.set_edns(edns);
    message
}

/// Sends one datagram from a socket connected to `addr` (only it can reply); returns the reply.
async fn udp_exchange(addr: SocketAddr, bytes: &[u8]) -> io::Result<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").await?;
    socket.connect(addr).await?;
    socket.send(bytes).await?;
    let mut buf = vec![0u8; 65535];
    let n = socket.recv(&mut buf).await?;
    buf.truncate(n);
    Ok(buf)
}

/// Sends one length-prefixed message on a new connection to `addr` and returns the first reply.
async fn tcp_exchange(addr: SocketAddr, bytes: &[u8]) -> io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(addr).await?;
    let len = u16::try_from(bytes.len()).expect("a TCP DNS message fits 64 KiB");
    stream.write_all(&len.to_be_bytes()).await?;
    stream.write_all(bytes).await?;
    let len = stream.read_u16().await? as usize;
    let mut buf = vec![0u8; len];
    stream.read_exact(&mut buf).await?;
    Ok(buf)
}

/// Sends raw bytes over `transport`: `None` when no reply arrives within `limit`.
async fn exchange_within(
    addr: SocketAddr,
    bytes: &[u8],
    transport: Transport,
    limit: Duration,
) -> Option<io::Result<Vec<u8>>> {
    let work = async {
        match transport {
            Transport::Udp => udp_exchange(addr, bytes).await,
            Transport::Tcp => tcp_exchange(addr, bytes).await,
        }
    };
    tokio::time::timeout(limit, work).await.ok()
}

/// Sends raw bytes and returns the raw reply; check its ID with [`parse_reply`].
pub async fn exchange(addr: SocketAddr, bytes: &[u8], transport: Transport) -> Vec<u8> {
    exchange_within(addr, bytes, transport, QUERY_TIMEOUT)
        .await
        .unwrap_or_else(|| {
            panic!("no DNS answer from {addr} over {transport:?} in {QUERY_TIMEOUT:?}")
        })
        .unwrap_or_else(|e| panic!("DNS exchange with {addr} over {transport:?} failed: {e}"))
}

/// Asserts that the raw `reply` carries the query ID `id`, then parses it.
pub fn parse_reply(reply: &[u8], id: u16) -> Message {
    assert!(
        reply.len() >= 12,
        "a reply of {} bytes has no DNS header",
        reply.len()
    );
    let got = u16::from_be_bytes([reply[0], reply[1]]);
    assert_eq!(
        got, id,
        "reply ID {got:#06x} does not match query ID {id:#06x}"
    );
    Message::from_vec(reply).expect("parse answer")
}

/// Sends `request` over `transport` and parses the reply, checking that its ID matches.
pub async fn exchange_message(
    addr: SocketAddr,
    request: &Message,
    transport: Transport,
) -> Message {
    let bytes = request.to_vec().expect("encode query");
    parse_reply(
        &exchange(addr, &bytes, transport).await,
        request.metadata.id,
    )
}

/// Sends one query over UDP and parses the answer (ID checked); `None` if none within `limit`.
pub async fn try_query(
    addr: SocketAddr,
    name: &str,
    qtype: RecordType,
    limit: Duration,
) -> Option<Message> {
    let request = build_query(name, qtype);
    let bytes = request.to_vec().expect("encode query");
    let reply = exchange_within(addr, &bytes, Transport::Udp, limit)
        .await?
        .ok()?;
    Some(parse_reply(&reply, request.metadata.id))
}

/// Sends one query over `transport` and parses the answer (ID checked).
pub async fn query(
    addr: SocketAddr,
    name: &str,
    qtype: RecordType,
    transport: Transport,
) -> Message {
    exchange_message(addr, &build_query(name, qtype), transport).await
}

/// `text` of every record in `records` for which it gives one, sorted.
fn sorted_text<'a>(
    records: &'a [Record],
    text: impl Fn(&'a Record) -> Option<String>,
) -> Vec<String> {
    let mut out: Vec<String> = records.iter().filter_map(text).collect();
    out.sort();
    out
}

/// The addresses (A/AAAA) in the answer section, as text, sorted.
pub fn addresses(message: &Message) -> Vec<String> {
    sorted_text(&message.answers, |r| match &r.data {
        RData::A(a) => Some(a.0.to_string()),
        RData::AAAA(a) => Some(a.0.to_string()),
        _ => None,
    })
}

/// The SRV records in the answer section as "priority weight port target", sorted.
pub fn srv_records(message: &Message) -> Vec<String> {
    sorted_text(&message.answers, |r| match &r.data {
        RData::SRV(s) => Some(format!(
            "{} {} {} {}",
            s.priority, s.weight, s.port, s.target
        )),
        _ => None,
    })
}

/// The TXT records in the answer section, as text, sorted.
pub fn txt_strings(message: &Message) -> Vec<String> {
    sorted_text(&message.answers, |r| match &r.data {
        RData::TXT(_) => Some(r.data.to_string()),
        _ => None,
    })
}

/// The PTR targets in the answer section, sorted.
pub fn ptr_targets(message: &Message) -> Vec<String> {
    sorted_text(&message.answers, |r| match &r.data {
        RData::PTR(p) => Some(p.0.to_string()),
        _ => None,
    })
}

/// The addresses (A/AAAA) in the additional section as "name address", sorted.
pub fn additional_addresses(message: &Message) -> Vec<String> {
    sorted_text(&message.additionals, |r| match &r.data {
        RData::A(a) => Some(format!("{} {}", r.name, a.0)),
        RData::AAAA(a) => Some(format!("{} {}", r.name, a.0)),
        _ => None,
    })
}

/// The A addresses `name` answers over `transport`, sorted.
pub async fn lookup_a(addr: SocketAddr, name: &str, transport: Transport) -> Vec<String> {
    addresses(&query(addr, name, RecordType::A, transport).await)
}

/// The AAAA addresses `name` answers over `transport`, sorted.
pub async fn lookup_aaaa(addr: SocketAddr, name: &str, transport: Transport) -> Vec<String> {
    addresses(&query(addr, name, RecordType::AAAA, transport).await)
}

/// The SRV records `name` answers over `transport`, as "priority weight port target", sorted.
pub async fn lookup_srv(addr: SocketAddr, name: &str, transport: Transport) -> Vec<String> {
    srv_records(&query(addr, name, RecordType::SRV, transport).await)
}

/// The TXT records `name` answers over `transport`, sorted.
pub async fn lookup_txt(addr: SocketAddr, name: &str, transport: Transport) -> Vec<String> {
    txt_strings(&query(addr, name, RecordType::TXT, transport).await)
}

/// The PTR targets `name` answers over `transport`, sorted.
pub async fn lookup_ptr(addr: SocketAddr, name: &str, transport: Transport) -> Vec<String> {
    ptr_targets(&query(addr, name, RecordType::PTR, transport).await)
}

/// The SOA in the authority section, if any.
pub fn authority_soa(message: &Message) -> Option<&Record> {
    message
        .authorities
        .iter()
        .find(|r| r.record_type() == RecordType::SOA)
}
