//! Each live zone's SOA serial on the writer's side: the etcd revision of the zone's last
//! change, kept from going backwards when etcd's revision does.

use std::sync::Arc;

use super::ZoneView;
use crate::wire::{wire_name, WireName};
use crate::zone::{serial, serial_offset_after, Apex, ZoneConfig};

/// One zone as the writer tracks it.
pub(super) struct ZoneSerial {
    /// The zone's lowercase wire name.
    pub(super) name: WireName,
    /// Its number of labels (a SkyDNS key spells them out).
    pub(super) labels: usize,
    apex: Arc<Apex>,
    /// The etcd revision of the zone's last change (or of the last full read).
    revision: i64,
    /// What the SOA serial adds to the revision (see [`serial_offset_after`]).
    offset: u32,
}

impl ZoneSerial {
    pub(super) fn new(config: &ZoneConfig) -> Self {
        Self {
            name: wire_name(&config.zone),
            labels: config.zone.num_labels() as usize,
            apex: Arc::new(Apex::new(config)),
            revision: 0,
            offset: 0,
        }
    }

    /// The zone changed at `revision`.
    pub(super) fn advance(&mut self, revision: i64) {
        self.revision = self.revision.max(revision);
    }

    /// Keeps the serial from going backwards after a table that published `previous` with
    /// `offset`.
    pub(super) fn continue_after(&mut self, previous: u32, offset: u32) {
        self.offset = serial_offset_after(previous, self.revision, offset);
    }

    /// The zone as a snapshot serves it.
    pub(super) fn view(&self) -> ZoneView {
        ZoneView::new(
            self.apex.clone(),
            self.revision,
            serial(self.revision, self.offset),
        )
    }
}
