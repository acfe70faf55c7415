//! The etcd side of one lease: claiming the key with it and revoking it.

use etcd_client::{Client, Compare, CompareOp, PutOptions, Txn, TxnOp, TxnOpResponse};
use tracing::warn;

use super::{RegisterError, RegisterSpec};
use crate::etcd::EtcdConfig;

/// Puts the key with `lease` unless another live lease holds it. Returns the put's revision.
pub(super) async fn claim(
    client: &mut Client,
    etcd: &EtcdConfig,
    spec: &RegisterSpec,
    lease: i64,
    ours: &[i64],
) -> Result<i64, RegisterError> {
    let key = spec.key();
    let put = TxnOp::put(
        key.as_str(),
        spec.value(),
        Some(PutOptions::new().with_lease(lease)),
    );
    let txn = Txn::new()
        .when([Compare::create_revision(key.as_str(), CompareOp::Equal, 0)])
        .and_then([put.clone()])
        .or_else([TxnOp::get(key.as_str(), None)]);
    let response = etcd.timed(client.txn(txn)).await?;
    let revision =
        |r: &etcd_client::TxnResponse| r.header().map(|h| h.revision()).unwrap_or_default();
    if response.succeeded() {
        return Ok(revision(&response));
    }
    let existing = response.op_responses().into_iter().find_map(|op| match op {
        TxnOpResponse::Get(get) => get.kvs().first().map(|kv| (kv.lease(), kv.mod_revision())),
        _ => None,
    });
    let Some((holder, mod_revision)) = existing else {
        return Err(RegisterError::Raced(key));
    };
    if holder != 0 && !ours.contains(&holder) {
        let left = etcd
            .timed(client.lease_time_to_live(holder, None))
            .await?
            .ttl();
        if left > 0 {
            return Err(RegisterError::Conflict {
                key,
                lease: holder,
                ttl: left,
            });
        }
    }
    // The key is unleased, ours, or its lease just died: take it, unless it changes meanwhile.
    let txn = Txn::new()
        .when([Compare::mod_revision(
            key.as_str(),
            CompareOp::Equal,
            mod_revision,
        )])
        .and_then([put]);
    let response = etcd.timed(client.txn(txn)).await?;
    if response.succeeded() {
        Ok(revision(&response))
    } else {
        Err(RegisterError::Raced(key))
    }
}

/// Revokes `lease`, which deletes every key bound to it. Returns whether etcd confirmed it.
pub(super) async fn revoke(client: &mut Client, etcd: &EtcdConfig, lease: i64) -> bool {
    match etcd.timed(client.lease_revoke(lease)).await {
        Ok(_) => true,
        Err(error) => {
            // Not fatal: an unrevoked lease still expires after its TTL.
            warn!(lease = format!("{lease:x}"), %error, "could not revoke lease");
            false
        }
    }
}
