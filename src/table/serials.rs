//! Each live zone's SOA serial on the writer's side: the etcd revision of the zone's last
//! change, kept from going backwards when etcd's revision does.

use std::sync::Arc;

use super::journal::{Change, History, SharedHistory};
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
    /// Its recent changes, for IXFR.
    pub(super) history: SharedHistory,
    /// The serial of the last snapshot, once there was one.
    pub(super) last_serial: Option<u32>,
    /// What changed since the last snapshot: records removed and added (owner, then type to
    /// RDATA), while the journal is on.
    pub(super) removed: Vec<u8>,
    pub(super) added: Vec<u8>,
}

impl ZoneSerial {
    pub(super) fn new(config: &ZoneConfig) -> Self {
        Self {
            name: wire_name(&config.zone),
            labels: config.zone.num_labels() as usize,
            apex: Arc::new(Apex::new(config)),
            revision: 0,
            offset: 0,
            history: SharedHistory::default(),
            last_serial: None,
            removed: Vec::new(),
            added: Vec::new(),
        }
    }

    /// The serial a snapshot would serve now.
    pub(super) fn serial(&self) -> u32 {
        serial(self.revision, self.offset)
    }

    /// Ends the change since the last snapshot: into the history (at most `max` changes) when
    /// the serial moved and `journal` is on; the serial is remembered either way.
    pub(super) fn close_change(&mut self, journal: bool, max: usize) {
        let serial = self.serial();
        let (removed, added) = (
            std::mem::take(&mut self.removed),
            std::mem::take(&mut self.added),
        );
        if let (true, Some(from)) = (journal, self.last_serial) {
            let mut history = self.history.write().unwrap_or_else(|e| e.into_inner());
            if from != serial {
                let change = Change {
                    from,
                    to: serial,
                    removed,
                    added,
                };
                history.push(change, max);
            } else if !removed.is_empty() || !added.is_empty() {
                // Records changed under one serial: no secondary could be told; start anew.
                *history = History::default();
            }
        }
        self.last_serial = Some(serial);
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
            self.history.clone(),
        )
    }
}
