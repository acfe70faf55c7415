//! The local sets of a name: its A, AAAA and SRV records kept apart for each zone locality
//! tells apart (`--locality`), when they come from instances of several.

use hickory_proto::rr::RecordType;

use super::{address_set, srv_set, RRset, RecordsBuilder, SrvKey, NO_ZONE};

impl RecordsBuilder<'_> {
    /// The local sets ([`RecordsBuilder::finish_local`]), by zone id, each zone's A, AAAA and
    /// SRV in that order.
    pub(super) fn local_sets(&self) -> Vec<(u16, RRset)> {
        let mut zones: Vec<u16> = (self.v4.len() > 1)
            .then(|| self.v4.values().map(|a| a.2))
            .into_iter()
            .flatten()
            .chain(
                (self.v6.len() > 1)
                    .then(|| self.v6.values().map(|a| a.2))
                    .into_iter()
                    .flatten(),
            )
            .chain(
                (self.srv.len() > 1)
                    .then(|| self.srv.values().map(|s| s.1))
                    .into_iter()
                    .flatten(),
            )
            .filter(|z| *z != NO_ZONE)
            .collect();
        if zones.is_empty() {
            return Vec::new();
        }
        zones.sort_unstable();
        zones.dedup();
        let mut local = Vec::new();
        for zone in zones {
            let v4 = self
                .v4
                .iter()
                .filter(|(_, a)| a.2 == zone && self.v4.len() > 1)
                .map(|(ip, a)| (ip.octets().to_vec(), *a));
            local.extend(address_set(RecordType::A, v4.collect()).map(|s| (zone, s)));
            let v6 = self
                .v6
                .iter()
                .filter(|(_, a)| a.2 == zone && self.v6.len() > 1)
                .map(|(ip, a)| (ip.octets().to_vec(), *a));
            local.extend(address_set(RecordType::AAAA, v6.collect()).map(|s| (zone, s)));
            let srv = self
                .srv
                .iter()
                .filter(|(_, s)| s.1 == zone && self.srv.len() > 1)
                .map(|(key, (ttl, _))| (srv_rdata(key), *ttl))
                .collect();
            local.extend(srv_set(srv, &self.additionals).map(|s| (zone, s)));
        }
        local
    }
}

/// The RDATA of SRV `(priority, weight, port, target)`.
pub(super) fn srv_rdata((priority, weight, port, target): &SrvKey) -> Vec<u8> {
    let mut rdata = Vec::with_capacity(6 + target.len());
    for field in [priority, weight, port] {
        rdata.extend_from_slice(&field.to_be_bytes());
    }
    rdata.extend_from_slice(target);
    rdata
}
