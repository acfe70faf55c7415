//! A tiny authoritative DNS server for `example.test.` over UDP and TCP on a free port, that
//! counts every query it receives: the upstream of a forwarding etcd-dns under test. Records
//! and TTLs are set by the test (and may change while it runs); names under
//! `wild.example.test.` all have an A record; absent names get NXDOMAIN, absent types NODATA,
//! both with the zone's SOA. An optional delay holds every answer back.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;

/// The zone it serves.
pub const ZONE: &str = "example.test.";
/// Names under this one all answer A 192.0.2.7 with [`WILD_TTL`].
pub const WILD: &str = "wild.example.test.";
/// TTL of the wildcard names' records.
pub const WILD_TTL: u32 = 300;

/// What the upstream answers.
#[derive(Debug)]
struct Zone {
    /// (lowercase name, type) → TTL and data.
    records: HashMap<(String, RecordType), (u32, Vec<RData>)>,
    /// The SOA's TTL and MINIMUM.
    soa: (u32, u32),
}

/// A running upstream; stops on drop.
pub struct Upstream {
    /// Where it answers, UDP and TCP.
    pub addr: SocketAddr,
    /// What it answers; the test changes it while it runs.
    zone: Arc<Mutex<Zone>>,
    /// Queries received, by (lowercase name, type).
    counts: Arc<Mutex<HashMap<(String, RecordType), usize>>>,
    /// Cancelled by [`Upstream::stop`] and on drop.
    shutdown: CancellationToken,
}

impl Upstream {
    /// Starts it on 127.0.0.1 with an SOA of (`soa_ttl`, `minimum`), answering after `delay`.
    pub async fn start(soa: (u32, u32), delay: Duration) -> Self {
        let (udp, tcp) = bind().await;
        let addr = udp.local_addr().expect("addr");
        let zone = Arc::new(Mutex::new(Zone {
            records: HashMap::new(),
            soa,
        }));
        let counts = Arc::new(Mutex::new(HashMap::new()));
        let shutdown = CancellationToken::new();
        let serve = Server {
            zone: zone.clone(),
            counts: counts.clone(),
            delay,
        };
        tokio::spawn(serve.clone().udp(Arc::new(udp), shutdown.clone()));
        tokio::spawn(serve.tcp(tcp, shutdown.clone()));
        Self {
            addr,
            zone,
            counts,
            shutdown,
        }
    }

    /// Sets the records of `name`/`rtype` (replacing what was there).
    pub fn set(&self, name: &str, ttl: u32, data: Vec<RData>) {
        let rtype = data.first().map_or(RecordType::A, RData::record_type);
        let mut zone = self.zone.lock().expect("zone");
        zone.records
            .insert((name.to_ascii_lowercase(), rtype), (ttl, data));
    }

    /// Queries received for `name`/`rtype` (any case, UDP and TCP).
    pub fn queries(&self, name: &str, rtype: RecordType) -> usize {
        let counts = self.counts.lock().expect("counts");
        counts
            .get(&(name.to_ascii_lowercase(), rtype))
            .copied()
            .unwrap_or(0)
    }

    /// Stops answering and closes its sockets.
    pub fn stop(&self) {
        self.shutdown.cancel();
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// UDP and TCP on one free port.
async fn bind() -> (UdpSocket, TcpListener) {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").await.expect("bind UDP");
        let addr = udp.local_addr().expect("addr");
        if let Ok(tcp) = TcpListener::bind(addr).await {
            return (udp, tcp);
        }
    }
    panic!("no port free for both UDP and TCP");
}

/// What each socket task shares: the zone, the counts and the delay.
#[derive(Clone)]
struct Server {
    /// What it answers.
    zone: Arc<Mutex<Zone>>,
    /// Queries received, by (lowercase name, type).
    counts: Arc<Mutex<HashMap<(String, RecordType), usize>>>,
    /// How long every answer is held back.
    delay: Duration,
}

impl Server {
    /// Answers datagrams on `socket` until `shutdown`.
    async fn udp(self, socket: Arc<UdpSocket>, shutdown: CancellationToken) {
        let mut buf = vec![0u8; 65_535];
        loop {
            let (len, src) = tokio::select! {
                _ = shutdown.cancelled() => return,
                got = socket.recv_from(&mut buf) => match got {
                    Ok(got) => got,
                    Err(_) => continue,
                },
            };
            let request = buf[..len].to_vec();
            let (server, socket) = (self.clone(), socket.clone());
            tokio::spawn(async move {
                if let Some(reply) = server.answer(&request).await {
                    let _ = socket.send_to(&reply, src).await;
                }
            });
        }
    }

    /// Accepts connections on `listener` until `shutdown`, each served on a task of its own.
    async fn tcp(self, listener: TcpListener, shutdown: CancellationToken) {
        loop {
            let stream = tokio::select! {
                _ = shutdown.cancelled() => return,
                got = listener.accept() => match got {
                    Ok((stream, _)) => stream,
                    Err(_) => continue,
                },
            };
            let server = self.clone();
            let stop = shutdown.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = server.connection(stream) => {}
                }
            });
        }
    }

    /// Answers the length-prefixed queries of one connection until it closes.
    async fn connection(&self, mut stream: TcpStream) -> std::io::Result<()> {
        loop {
            let len = stream.read_u16().await? as usize;
            let mut request = vec![0u8; len];
            stream.read_exact(&mut request).await?;
            if let Some(reply) = self.answer(&request).await {
                stream
                    .write_all(&(reply.len() as u16).to_be_bytes())
                    .await?;
                stream.write_all(&reply).await?;
            }
        }
    }

    /// Counts the query, waits the delay, answers from the zone.
    async fn answer(&self, request: &[u8]) -> Option<Vec<u8>> {
        let request = Message::from_vec(request).ok()?;
        let query = request.queries.first()?.clone();
        let name = query.name().to_ascii().to_ascii_lowercase();
        {
            let mut counts = self.counts.lock().expect("counts");
            *counts
                .entry((name.clone(), query.query_type()))
                .or_default() += 1;
        }
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let mut reply = Message::new(
            request.metadata.id,
            MessageType::Response,
            request.metadata.op_code,
        );
        reply.metadata.authoritative = true;
        reply.metadata.recursion_desired = request.metadata.recursion_desired;
        reply.queries = request.queries.clone();
        reply.edns = request.edns.clone();
        let zone = self.zone.lock().expect("zone");
        let owner = query.name().clone();
        let found = zone.records.get(&(name.clone(), query.query_type()));
        let wild = name.ends_with(&format!(".{WILD}")) && query.query_type() == RecordType::A;
        if let Some((ttl, data)) = found {
            for d in data {
                reply
                    .answers
                    .push(Record::from_rdata(owner.clone(), *ttl, d.clone()));
            }
        } else if wild {
            let a = RData::A("192.0.2.7".parse().expect("ip"));
            reply.answers.push(Record::from_rdata(owner, WILD_TTL, a));
        } else {
            let exists = zone.records.keys().any(|(n, _)| *n == name);
            if !exists {
                reply.metadata.response_code = ResponseCode::NXDomain;
            }
            let (ttl, minimum) = zone.soa;
            let apex = Name::from_ascii(ZONE).expect("zone");
            let ns = Name::from_ascii("ns.example.test.").expect("ns");
            let hm = Name::from_ascii("hm.example.test.").expect("hm");
            let soa = SOA::new(ns, hm, 1, 60, 10, 3600, minimum);
            reply
                .authorities
                .push(Record::from_rdata(apex, ttl, RData::SOA(soa)));
        }
        reply.to_vec().ok()
    }
}
