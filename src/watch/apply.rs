//! Watch responses into the registry: which registry a response belongs to, and its events.

use etcd_client::{EventType, WatchResponse};

use super::WatchError;
use crate::table::Registry;

/// Which registry each watch of the session's stream follows. etcd numbers the watches of a
/// stream as it creates them, in the order they were asked for, and confirms each with a
/// `created` response first: the n-th confirmation names registry n.
pub(super) struct Watches {
    /// Watch ids, by registry.
    ids: Vec<i64>,
    /// Number of registries.
    sources: usize,
}

impl Watches {
    pub(super) fn new(sources: usize) -> Self {
        Self {
            ids: Vec::with_capacity(sources),
            sources,
        }
    }

    /// The registry the events of `response` belong to.
    fn source(&mut self, response: &WatchResponse) -> Result<usize, WatchError> {
        let id = response.watch_id();
        if response.created() && self.ids.len() < self.sources && !self.ids.contains(&id) {
            self.ids.push(id);
        }
        if self.sources == 1 {
            return Ok(0);
        }
        self.ids
            .iter()
            .position(|&known| known == id)
            .ok_or(WatchError::UnknownWatch(id))
    }
}

/// Applies one watch response; true when it carried events.
pub(super) fn apply(
    registry: &mut Registry,
    watches: &mut Watches,
    response: &WatchResponse,
) -> Result<bool, WatchError> {
    if response.canceled() {
        return Err(WatchError::Cancelled {
            compact: response.compact_revision(),
            reason: response.cancel_reason().to_string(),
        });
    }
    if response.events().is_empty() {
        // Confirmations and progress notifications carry no events.
        if response.created() {
            watches.source(response)?;
        }
        return Ok(false);
    }
    let source = watches.source(response)?;
    for event in response.events() {
        let Some(kv) = event.kv() else { continue };
        match event.event_type() {
            EventType::Put => registry.put_from(source, kv.key(), kv.value()),
            EventType::Delete => registry.delete_from(source, kv.key()),
        };
        registry.advance(source, kv.mod_revision());
    }
    Ok(true)
}
