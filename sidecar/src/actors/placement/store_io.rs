//! The placement records' reads and writes in the actor state store: every page of a prefix, the
//! leases of a type, a lease written with compare-and-set, and a shard's fence moved forward.

use super::records::{LeaseRecord, SeenLease};
use crate::actors::keys;
use crate::components::state::{Concurrency, SetRequest, StateStore, StoreError, StoreResult};
use bytes::Bytes;
use std::collections::BTreeMap;

pub(super) fn encode<T: serde::Serialize>(value: &T) -> Bytes {
    Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

/// Reads every record under `prefix` (all pages).
pub async fn scan_all(
    store: &dyn StateStore,
    prefix: &str,
) -> StoreResult<Vec<(String, crate::components::state::StoredItem)>> {
    let (mut all, mut cursor) = (Vec::new(), None);
    loop {
        let page = store.scan_prefix(prefix, cursor, 500).await?;
        all.extend(page.items);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(all),
        }
    }
}

/// Reads the leases of `actor_type`, keyed by shard.
pub async fn read_leases(
    store: &dyn StateStore,
    actor_type: &str,
) -> StoreResult<BTreeMap<u32, SeenLease>> {
    let prefix = keys::lease_prefix(actor_type);
    let mut leases = BTreeMap::new();
    for (key, item) in scan_all(store, &prefix).await? {
        let Some(shard) = key
            .strip_prefix(&prefix)
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if let Ok(record) = serde_json::from_slice::<LeaseRecord>(&item.data) {
            leases.insert(
                shard,
                SeenLease {
                    record,
                    etag: item.etag,
                },
            );
        }
    }
    Ok(leases)
}

pub(super) async fn write_lease(
    store: &dyn StateStore,
    actor_type: &str,
    shard: u32,
    record: &LeaseRecord,
    etag: Option<String>,
) -> StoreResult<()> {
    let concurrency = if etag.is_none() {
        Concurrency::FirstWrite
    } else {
        Concurrency::LastWrite
    };
    store
        .set(SetRequest {
            key: keys::lease_key(actor_type, shard),
            value: encode(record),
            etag,
            concurrency,
            ttl: None,
        })
        .await
}

/// Moves the shard's fence to `epoch` (never backwards) and returns its ETag.
pub(super) async fn move_fence(
    store: &dyn StateStore,
    actor_type: &str,
    shard: u32,
    epoch: u64,
) -> StoreResult<String> {
    let key = keys::fence_key(actor_type, shard);
    for _ in 0..5 {
        let current = store.get(&key).await?;
        let at: u64 = current
            .as_ref()
            .and_then(|i| std::str::from_utf8(&i.data).ok()?.parse().ok())
            .unwrap_or(0);
        if at > epoch {
            return Err(StoreError::EtagMismatch(format!(
                "fence of {actor_type}/{shard} is at {at}, past {epoch}"
            )));
        }
        if at < epoch {
            let etag = current.and_then(|i| i.etag);
            let concurrency = if etag.is_none() {
                Concurrency::FirstWrite
            } else {
                Concurrency::LastWrite
            };
            let written = store
                .set(SetRequest {
                    key: key.clone(),
                    value: Bytes::from(epoch.to_string()),
                    etag,
                    concurrency,
                    ttl: None,
                })
                .await;
            match written {
                Ok(()) => {}
                Err(StoreError::EtagMismatch(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        if let Some(etag) = store.get(&key).await?.and_then(|i| i.etag) {
            return Ok(etag);
        }
    }
    Err(StoreError::EtagMismatch(format!(
        "fence of {actor_type}/{shard} kept changing"
    )))
}
