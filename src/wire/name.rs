//! Names in wire form: the lowercase names the live table is indexed by, zone membership,
//! reverse names.

use std::net::IpAddr;

use hickory_proto::rr::Name;

/// Lowercase wire form of an absolute name: how the live table indexes names.
pub type WireName = Box<[u8]>;

/// The lowercase wire form of `name`.
pub fn wire_name(name: &Name) -> WireName {
    let mut wire = Vec::with_capacity(name.len() + 2);
    for label in name.iter() {
        wire.push(label.len() as u8);
        wire.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    wire.push(0);
    wire.into_boxed_slice()
}

/// The name a wire name stands for.
pub fn name_from_wire(name: &[u8]) -> Option<Name> {
    let mut labels = Vec::new();
    let mut at = 0;
    while let Some(&len) = name.get(at) {
        if len == 0 {
            return Name::from_labels(labels).ok();
        }
        labels.push(name.get(at + 1..at + 1 + len as usize)?);
        at += 1 + len as usize;
    }
    None
}

/// Offsets at which `name`'s labels start, the root's terminating zero included.
fn label_starts(name: &[u8]) -> impl Iterator<Item = usize> + '_ {
    let mut at = Some(0usize);
    std::iter::from_fn(move || {
        let here = at?;
        let len = *name.get(here)? as usize;
        at = (len != 0).then_some(here + 1 + len);
        Some(here)
    })
}

/// Where `zone` begins inside `name` when `name` is `zone` or a name below it.
pub fn zone_offset(name: &[u8], zone: &[u8]) -> Option<usize> {
    if name.len() < zone.len() {
        return None;
    }
    let at = name.len() - zone.len();
    (name[at..] == *zone && label_starts(name).any(|s| s == at)).then_some(at)
}

/// The lowercase wire form of the reverse name of `ip` (`d.c.b.a.in-addr.arpa.` or the 32
/// nibbles under `ip6.arpa.`), built without going through text.
pub fn reverse_name(ip: IpAddr) -> WireName {
    // Sized exactly (the longest IPv4 name, every IPv6 one): no shrinking copy into the box.
    let capacity = match ip {
        IpAddr::V4(_) => 4 * 4 + b"\x07in-addr\x04arpa\x00".len(),
        IpAddr::V6(_) => 32 * 2 + b"\x03ip6\x04arpa\x00".len(),
    };
    let mut name = Vec::with_capacity(capacity);
    match ip {
        IpAddr::V4(ip) => {
            for octet in ip.octets().iter().rev() {
                let digits = itoa_u8(*octet);
                let text = digits.text();
                name.push(text.len() as u8);
                name.extend_from_slice(text);
            }
            name.extend_from_slice(b"\x07in-addr\x04arpa\x00");
        }
        IpAddr::V6(ip) => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            for byte in ip.octets().iter().rev() {
                name.extend_from_slice(&[
                    1,
                    HEX[(byte & 0xf) as usize],
                    1,
                    HEX[(byte >> 4) as usize],
                ]);
            }
            name.extend_from_slice(b"\x03ip6\x04arpa\x00");
        }
    }
    name.into_boxed_slice()
}

/// Decimal digits of a byte, without allocating.
struct Digits {
    buf: [u8; 3],
    start: usize,
}

impl Digits {
    fn text(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

fn itoa_u8(mut n: u8) -> Digits {
    let mut buf = [0u8; 3];
    let mut start = 3;
    loop {
        start -= 1;
        buf[start] = b'0' + n % 10;
        n /= 10;
        if n == 0 {
            return Digits { buf, start };
        }
    }
}

/// Wire form of `name` keeping its case (for owners of additional records).
pub fn wire_name_cased(name: &Name) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 2);
    for label in name.iter() {
        out.push(label.len() as u8);
        out.extend_from_slice(label);
    }
    out.push(0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testing::name;

    #[test]
    fn reverse_names_match_hickorys() {
        for ip in [
            "192.168.1.26",
            "0.0.0.0",
            "10.0.100.255",
            "2001:db8::1",
            "::",
            "fe80::ab:cdef",
        ] {
            let ip: std::net::IpAddr = ip.parse().expect("address");
            assert_eq!(reverse_name(ip), wire_name(&Name::from(ip)), "{ip}");
        }
    }

    #[test]
    fn wire_names_are_lowercase() {
        let wire = wire_name(&name("S-Test.Services.LOCAL."));
        assert_eq!(&*wire, b"\x06s-test\x08services\x05local\x00");
        assert_eq!(
            name_from_wire(&wire).expect("name").to_ascii(),
            "s-test.services.local."
        );
        let zone = wire_name(&name("services.local."));
        assert_eq!(zone_offset(&wire, &zone), Some(7));
        assert_eq!(zone_offset(&zone, &zone), Some(0));
        // A suffix that is not at a label boundary is not the zone.
        let other = wire_name(&name("xservices.local."));
        assert_eq!(zone_offset(&other, &zone), None);
        assert_eq!(zone_offset(&wire_name(&name("example.com.")), &zone), None);
    }
}
