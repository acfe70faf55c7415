//! etcd puts and deletes through the parsers, the records builder and the registry, checked
//! against a model of what the table must then hold, and every RRset of the result asked
//! through the router.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock};

use super::table::{check_lookups, check_table};
use super::zones::live_config;
use super::{ensure, valid_wire_name, Violation};
use crate::key::ServiceKey;
use crate::records::{instance_names, Placement, Roles};
use crate::service::{parse_entry, Invalid, Registration};
use crate::sources::Live;
use crate::table::{Applied, Node, Registry, Snapshot};
use crate::wire::{wire_name, zone_offset};

/// At most this many operations per input: longer inputs only slow the fuzzer down.
const MAX_OPS: usize = 64;

/// One etcd event.
enum Op<'a> {
    Put(&'a [u8], &'a [u8]),
    Delete(&'a [u8]),
}

/// The events of an input: lines, where `-KEY` deletes KEY and any other line is a key whose
/// value is the next line (`services/web/n1` then `{"IP":"10.0.0.1"}`).
fn ops(input: &[u8]) -> Vec<Op<'_>> {
    let mut lines = input.split(|b| *b == b'\n');
    let mut out = Vec::new();
    while let (Some(line), true) = (lines.next(), out.len() < MAX_OPS) {
        out.push(match line.strip_prefix(b"-") {
            Some(key) => Op::Delete(key),
            None => Op::Put(line, lines.next().unwrap_or_default()),
        });
    }
    out
}

/// What the table must hold: the valid registrations and the rejected keys, by key text.
#[derive(Default)]
pub(super) struct Model {
    /// Valid registrations by key.
    pub(super) live: BTreeMap<String, Registration>,
    /// Rejected keys and why.
    pub(super) rejected: BTreeMap<String, Invalid>,
}

/// Applies `input`'s events (see [`ops`]) to a registry of the live zone, checking after each
/// that the registry agrees with `parse_entry` and that the names of every accepted key are
/// valid; then that every name of the table is a valid name whose RRsets answer through the
/// router as stored, that every registration can be looked up, and that deleting every key
/// leaves exactly the zone file's names.
pub fn key_value(input: &[u8]) -> Result<(), Violation> {
    let config = Arc::new(live_config());
    let zone = wire_name(&config.zone);
    // Two localities, so that values with a "zone" build local sets too.
    let live = Live {
        localities: vec!["a".into(), "b".into()],
        ..Live::native((*config).clone())
    };
    let mut registry = Registry::for_live(Arc::new(live));
    let mut model = Model::default();
    for op in ops(input) {
        match op {
            Op::Put(key, value) => {
                let text = String::from_utf8_lossy(key).into_owned();
                let expected =
                    parse_entry(crate::sources::DEFAULT_PREFIX, &config.zone, key, value);
                match (expected, registry.put(key, value)) {
                    (Ok((parsed, registration)), Applied::Registered) => {
                        check_names(&zone, &text, parsed, &registration)?;
                        model.rejected.remove(&text);
                        model.live.insert(text, registration);
                    }
                    (Err(why), Applied::Rejected(reason)) if why == reason => {
                        model.live.remove(&text);
                        model.rejected.insert(text, why);
                    }
                    (expected, applied) => {
                        return Err(Violation(format!(
                            "{text:?}: parse_entry says {expected:?}, the registry {applied:?}"
                        )))
                    }
                }
            }
            Op::Delete(key) => {
                registry.delete(key);
                let text = String::from_utf8_lossy(key);
                model.live.remove(&*text);
                model.rejected.remove(&*text);
            }
        }
        let snapshot = registry.snapshot();
        ensure(snapshot.instances == model.live.len(), || {
            format!(
                "{} instances, {} expected",
                snapshot.instances,
                model.live.len()
            )
        })?;
        let rejected: BTreeMap<String, Invalid> = snapshot
            .rejected
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        ensure(rejected == model.rejected, || {
            format!("rejected {rejected:?}, expected {:?}", model.rejected)
        })?;
    }
    let snapshot = registry.snapshot();
    check_table(&config, &snapshot)?;
    check_lookups(&zone, &snapshot, &model)?;
    for key in model.live.keys().chain(model.rejected.keys()) {
        registry.delete(key.as_bytes());
    }
    let emptied = registry.snapshot();
    ensure(nodes(&emptied) == *ZONE_FILE_NODES, || {
        "deleting every key does not leave the zone file's names alone".into()
    })?;
    ensure(
        emptied.instances == 0 && emptied.rejected.is_empty(),
        || "deleting every key leaves instances or rejected keys".into(),
    )
}

/// The names of a registry that holds only the zone file (built once: a registry costs
/// thousands of allocations).
static ZONE_FILE_NODES: LazyLock<HashMap<Vec<u8>, Node>> =
    LazyLock::new(|| nodes(&Registry::new(Arc::new(live_config())).snapshot()));

/// The nodes of `snapshot` by name.
fn nodes(snapshot: &Snapshot) -> HashMap<Vec<u8>, Node> {
    snapshot
        .names
        .iter()
        .map(|n| (n.name().to_vec(), n.clone()))
        .collect()
}

/// The names an accepted key implies: valid wire names, in the zone (the reverse name aside),
/// and derived again the same way from the key text alone (as the registry does on removal).
fn check_names(
    zone: &[u8],
    text: &str,
    parsed: ServiceKey<'_>,
    registration: &Registration,
) -> Result<(), Violation> {
    ensure(
        ServiceKey::split(crate::sources::DEFAULT_PREFIX, text) == parsed,
        || format!("{text:?} splits unlike it parsed"),
    )?;
    for (name, roles) in instance_names(&Placement::from(parsed), registration, zone) {
        ensure(valid_wire_name(&name), || {
            format!("{text:?} implies the invalid wire name {name:?}")
        })?;
        ensure(
            roles.has(Roles::PTR) || zone_offset(&name, zone).is_some(),
            || format!("{text:?} implies {name:?} outside the zone"),
        )?;
    }
    Ok(())
}
