//! Batched UDP I/O on Linux: `recvmmsg` takes every datagram already queued on the socket (up
//! to [`BATCH`]) in one system call and `sendmmsg` sends the replies together, as NSD and Knot
//! do. Under load this saves most of the system calls per query; when queries trickle in, a
//! batch is simply one datagram. The system calls come through `nix`'s safe wrappers.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

use nix::sys::socket::{recvmmsg, sendmmsg, MsgFlags, MultiHeaders, SockaddrStorage};

/// Most datagrams taken or sent per system call.
pub const BATCH: usize = 32;
/// Bytes read per datagram. A DNS query is a few hundred bytes; anything longer than this is
/// cut by the kernel and flagged (see [`Received::truncated`]).
pub const SLOT: usize = 4096;

/// Buffers and kernel headers for receiving and sending, reused across calls.
pub struct Batch {
    buffers: Box<[u8]>,
    headers: MultiHeaders<SockaddrStorage>,
    send_headers: MultiHeaders<SockaddrStorage>,
    /// Length, sender and truncation of each datagram of the last receive.
    received: Vec<(usize, Option<SocketAddr>, bool)>,
}

/// One datagram of a received batch.
pub struct Received<'a> {
    /// Its bytes (at most [`SLOT`]).
    pub bytes: &'a [u8],
    /// The sender, if the kernel gave an IPv4 or IPv6 address.
    pub src: Option<SocketAddr>,
    /// Longer than [`SLOT`]: `bytes` is only its beginning.
    pub truncated: bool,
}

impl Default for Batch {
    fn default() -> Self {
        Self {
            buffers: vec![0u8; BATCH * SLOT].into_boxed_slice(),
            headers: MultiHeaders::preallocate(BATCH, None),
            send_headers: MultiHeaders::preallocate(BATCH, None),
            received: Vec::with_capacity(BATCH),
        }
    }
}

impl Batch {
    /// Waits for at least one datagram (or the socket's read timeout), then takes every one
    /// already queued, up to [`BATCH`]. Returns how many arrived.
    pub fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.received.clear();
        let mut slices: Vec<[IoSliceMut<'_>; 1]> = self
            .buffers
            .chunks_mut(SLOT)
            .map(|slot| [IoSliceMut::new(slot)])
            .collect();
        let results = recvmmsg(
            socket.as_raw_fd(),
            &mut self.headers,
            slices.iter_mut(),
            MsgFlags::MSG_WAITFORONE,
            None,
        )
        .map_err(io::Error::from)?;
        for message in results {
            self.received.push((
                message.bytes.min(SLOT),
                message.address.as_ref().and_then(socket_addr),
                message.flags.contains(MsgFlags::MSG_TRUNC),
            ));
        }
        Ok(self.received.len())
    }

    /// Datagram `i` of the last [`Batch::recv`].
    pub fn get(&self, i: usize) -> Received<'_> {
        let (len, src, truncated) = self.received.get(i).copied().unwrap_or_default();
        Received {
            bytes: &self.buffers[i * SLOT..i * SLOT + len],
            src,
            truncated,
        }
    }
    /// Sends `replies` (bytes, destination) in as few system calls as possible. When the
    /// kernel refuses one (an unreachable client, say), the rest go one by one and each failure
    /// is reported to `failed`.
    pub fn send_all(
        &mut self,
        socket: &UdpSocket,
        replies: &[(Vec<u8>, SocketAddr)],
        mut failed: impl FnMut(&io::Error, SocketAddr),
    ) {
        for chunk in replies.chunks(BATCH) {
            let slices: Vec<[IoSlice<'_>; 1]> = chunk
                .iter()
                .map(|(bytes, _)| [IoSlice::new(bytes)])
                .collect();
            let addrs: Vec<Option<SockaddrStorage>> = chunk
                .iter()
                .map(|(_, dst)| Some(SockaddrStorage::from(*dst)))
                .collect();
            let sent = sendmmsg(
                socket.as_raw_fd(),
                &mut self.send_headers,
                slices.iter(),
                &addrs,
                [],
                MsgFlags::empty(),
            )
            .map_or(0, |results| results.count());
            for (bytes, dst) in &chunk[sent..] {
                if let Err(error) = socket.send_to(bytes, dst) {
                    failed(&error, *dst);
                }
            }
        }
    }
}

/// The address in `storage`, if it is IPv4 or IPv6.
fn socket_addr(storage: &SockaddrStorage) -> Option<SocketAddr> {
    match (storage.as_sockaddr_in(), storage.as_sockaddr_in6()) {
        (Some(v4), _) => Some(SocketAddr::from(*v4)),
        (_, Some(v6)) => Some(SocketAddr::from(*v6)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::SockaddrLike;

    #[test]
    fn socket_addresses_round_trip() {
        for text in [
            "127.0.0.1:53",
            "192.0.2.7:65535",
            "[::1]:5353",
            "[fe80::1%2]:53",
        ] {
            let addr: SocketAddr = text.parse().expect("address");
            let storage = SockaddrStorage::from(addr);
            assert_eq!(socket_addr(&storage), Some(addr), "{text}");
            assert!(storage.len() > 0);
        }
    }

    #[test]
    fn a_batch_carries_every_queued_datagram_and_its_sender() {
        let server = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let clients: Vec<UdpSocket> = (0..3)
            .map(|_| UdpSocket::bind("127.0.0.1:0").expect("bind"))
            .collect();
        let target = server.local_addr().expect("addr");
        for (i, client) in clients.iter().enumerate() {
            client.send_to(&[i as u8; 3], target).expect("send");
        }
        // One query longer than a slot: flagged, not mistaken for a short one.
        clients[0].send_to(&[7u8; SLOT + 10], target).expect("send");
        let mut batch = Batch::default();
        let mut seen = Vec::new();
        while seen.len() < clients.len() + 1 {
            let n = batch.recv(&server).expect("recvmmsg");
            for i in 0..n {
                let got = batch.get(i);
                let src = got.src.expect("sender");
                seen.push((got.truncated, got.bytes.len(), got.bytes[0], src));
            }
        }
        seen.sort();
        for (i, client) in clients.iter().enumerate() {
            let src = client.local_addr().expect("addr");
            assert_eq!(seen[i], (false, 3, i as u8, src));
        }
        let src = clients[0].local_addr().expect("addr");
        assert_eq!(seen[3], (true, SLOT, 7, src));

        // And back: one sendmmsg answers all three.
        let replies: Vec<(Vec<u8>, SocketAddr)> = clients
            .iter()
            .enumerate()
            .map(|(i, c)| (vec![i as u8; 6], c.local_addr().expect("addr")))
            .collect();
        batch.send_all(&server, &replies, |e, dst| panic!("send to {dst}: {e}"));
        for (i, client) in clients.iter().enumerate() {
            let mut buf = [0u8; 16];
            let (len, from) = client.recv_from(&mut buf).expect("reply");
            assert_eq!((&buf[..len], from), (&[i as u8; 6][..], target));
        }
    }
}
