//! What clients make happen that is counted instead of logged.

/// What remote clients can make happen that is counted rather than logged line by line
/// (a flood of packets must not become a flood of log lines), as `etcd_dns_client_events_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientEvent {
    /// A request that does not parse (FORMERR, or dropped when too short to answer).
    Malformed = 0,
    /// A UDP datagram longer than we read (no DNS query is that long), dropped.
    Oversized,
    /// AXFR asked by a client outside `--allow-transfer` (REFUSED).
    TransferRefused,
    /// A UDP reply withheld by response rate limiting.
    RateLimited,
    /// A UDP reply sent truncated by response rate limiting (the client retries over TCP).
    Slipped,
    /// An idle TCP connection closed to admit a new one (`--tcp-max-clients` reached).
    TcpEvicted,
    /// A TCP connection closed at once: every slot busy mid-request.
    TcpRefused,
    /// A TCP connection closed because it went idle, or a message did not arrive in time.
    TcpTimedOut,
    /// A TCP connection closed because its client sent something that is not a DNS message.
    TcpGarbage,
    /// A DNS-over-TLS connection whose TLS handshake failed.
    TlsHandshakeFailed,
}

/// The `event` label of each [`ClientEvent`], in order.
pub const CLIENT_EVENTS: [&str; 10] = [
    "malformed",
    "oversized",
    "transfer_refused",
    "rate_limited",
    "slipped",
    "tcp_evicted",
    "tcp_refused",
    "tcp_timed_out",
    "tcp_garbage",
    "tls_handshake_failed",
];
