//! The state RPCs over [`crate::blocks::state`]: Dapr's protobuf messages in, the block called,
//! protobuf answers out. Values are bytes on this transport and are stored as they come, so what
//! gRPC writes, HTTP reads back byte for byte, and the reverse.

use super::Shared;
use crate::blocks::state::{BulkItem, DeleteItem, SaveItem, TxRequest};
use crate::components::state::StoredItem;
use bytes::Bytes;
use common::state_options::{StateConcurrency, StateConsistency};
use dapr::dapr::proto::common::v1 as common;
use dapr::dapr::proto::runtime::v1 as runtime;
use std::collections::{BTreeMap, HashMap};
use tonic::{Request, Response, Status};

/// Dapr's option names, as the block reads them.
fn concurrency(options: Option<&common::StateOptions>) -> Option<String> {
    match options?.concurrency() {
        StateConcurrency::ConcurrencyFirstWrite => Some("first-write".to_owned()),
        StateConcurrency::ConcurrencyLastWrite => Some("last-write".to_owned()),
        StateConcurrency::ConcurrencyUnspecified => None,
    }
}

fn consistency(value: StateConsistency) -> Option<String> {
    match value {
        StateConsistency::ConsistencyStrong => Some("strong".to_owned()),
        StateConsistency::ConsistencyEventual => Some("eventual".to_owned()),
        StateConsistency::ConsistencyUnspecified => None,
    }
}

fn options_consistency(options: Option<&common::StateOptions>) -> Option<String> {
    consistency(options?.consistency())
}

/// A `StateItem` to save (or a transaction's upsert). A present `Etag` message counts as an
/// ETag even when its value is empty, as in daprd.
pub fn save_item(item: common::StateItem) -> SaveItem {
    SaveItem {
        concurrency: concurrency(item.options.as_ref()),
        consistency: options_consistency(item.options.as_ref()),
        key: item.key,
        value: Bytes::from(item.value),
        etag: item.etag.map(|e| e.value),
        metadata: item.metadata.into_iter().collect(),
    }
}

/// A `StateItem` to delete.
pub fn delete_item(item: common::StateItem) -> DeleteItem {
    DeleteItem {
        concurrency: concurrency(item.options.as_ref()),
        consistency: options_consistency(item.options.as_ref()),
        key: item.key,
        etag: item.etag.map(|e| e.value),
    }
}

/// The metadata a read answers with: when the key expires, for stores with TTLs.
fn item_metadata(item: &StoredItem) -> HashMap<String, String> {
    let expires = item.expires_at.and_then(|at| {
        time::OffsetDateTime::from(at)
            .format(&time::format_description::well_known::Rfc3339)
            .ok()
    });
    expires
        .map(|at| ("ttlExpireTime".to_owned(), at))
        .into_iter()
        .collect()
}

pub async fn get(
    sc: &Shared,
    request: Request<runtime::GetStateRequest>,
) -> Result<Response<runtime::GetStateResponse>, Status> {
    let req = request.into_inner();
    let wanted = consistency(req.consistency());
    let item = sc
        .state()
        .get(&req.store_name, &req.key, wanted.as_deref())
        .await?;
    let answer = match item {
        Some(item) => runtime::GetStateResponse {
            metadata: item_metadata(&item),
            data: item.data.to_vec(),
            etag: item.etag.unwrap_or_default(),
        },
        None => runtime::GetStateResponse::default(),
    };
    Ok(Response::new(answer))
}

fn bulk_answer(item: BulkItem) -> runtime::BulkStateItem {
    match item.result {
        Ok(Some(stored)) => runtime::BulkStateItem {
            metadata: item_metadata(&stored),
            key: item.key,
            data: stored.data.to_vec(),
            etag: stored.etag.unwrap_or_default(),
            ..Default::default()
        },
        Ok(None) => runtime::BulkStateItem {
            key: item.key,
            ..Default::default()
        },
        Err(error) => runtime::BulkStateItem {
            key: item.key,
            error,
            ..Default::default()
        },
    }
}

pub async fn get_bulk(
    sc: &Shared,
    request: Request<runtime::GetBulkStateRequest>,
) -> Result<Response<runtime::GetBulkStateResponse>, Status> {
    let req = request.into_inner();
    let parallelism = usize::try_from(req.parallelism).ok().filter(|&p| p > 0);
    let items = sc
        .state()
        .bulk_get(&req.store_name, &req.keys, parallelism)
        .await?;
    let items = items.into_iter().map(bulk_answer).collect();
    Ok(Response::new(runtime::GetBulkStateResponse { items }))
}

pub async fn save(
    sc: &Shared,
    request: Request<runtime::SaveStateRequest>,
) -> Result<Response<()>, Status> {
    let req = request.into_inner();
    let items = req.states.into_iter().map(save_item).collect();
    sc.state()
        .save(&req.store_name, items, &BTreeMap::new())
        .await?;
    Ok(Response::new(()))
}

pub async fn delete(
    sc: &Shared,
    request: Request<runtime::DeleteStateRequest>,
) -> Result<Response<()>, Status> {
    let req = request.into_inner();
    let item = DeleteItem {
        concurrency: concurrency(req.options.as_ref()),
        consistency: options_consistency(req.options.as_ref()),
        key: req.key,
        etag: req.etag.map(|e| e.value),
    };
    sc.state().delete(&req.store_name, item).await?;
    Ok(Response::new(()))
}

pub async fn delete_bulk(
    sc: &Shared,
    request: Request<runtime::DeleteBulkStateRequest>,
) -> Result<Response<()>, Status> {
    let req = request.into_inner();
    let items = req.states.into_iter().map(delete_item).collect();
    sc.state().bulk_delete(&req.store_name, items).await?;
    Ok(Response::new(()))
}

pub async fn transaction(
    sc: &Shared,
    request: Request<runtime::ExecuteStateTransactionRequest>,
) -> Result<Response<()>, Status> {
    let req = request.into_inner();
    let ops = req
        .operations
        .into_iter()
        .map(|op| TxRequest {
            operation: op.operation_type,
            item: save_item(op.request.unwrap_or_default()),
        })
        .collect();
    let metadata = req.metadata.into_iter().collect();
    sc.state().transact(&req.store_name, ops, &metadata).await?;
    Ok(Response::new(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(
        concurrency: StateConcurrency,
        consistency: StateConsistency,
    ) -> common::StateOptions {
        common::StateOptions {
            concurrency: concurrency as i32,
            consistency: consistency as i32,
        }
    }

    #[test]
    fn state_items_read_as_the_block_expects() {
        let item = common::StateItem {
            key: "k".into(),
            value: b"\x00raw".to_vec(),
            etag: Some(common::Etag { value: "7".into() }),
            metadata: HashMap::from([("ttlInSeconds".to_owned(), "10".to_owned())]),
            options: Some(options(
                StateConcurrency::ConcurrencyFirstWrite,
                StateConsistency::ConsistencyStrong,
            )),
        };
        let save = save_item(item.clone());
        assert_eq!(save.key, "k");
        assert_eq!(&save.value[..], b"\x00raw");
        assert_eq!(save.etag.as_deref(), Some("7"));
        assert_eq!(save.metadata["ttlInSeconds"], "10");
        assert_eq!(save.concurrency.as_deref(), Some("first-write"));
        assert_eq!(save.consistency.as_deref(), Some("strong"));
        let delete = delete_item(item);
        assert_eq!(delete.etag.as_deref(), Some("7"));
        assert_eq!(delete.concurrency.as_deref(), Some("first-write"));
    }

    #[test]
    fn absent_options_and_etags_stay_absent_but_an_empty_etag_is_present() {
        let bare = save_item(common::StateItem {
            key: "k".into(),
            ..Default::default()
        });
        assert_eq!(bare.etag, None);
        assert_eq!(bare.concurrency, None);
        assert_eq!(bare.consistency, None);
        let unspecified = save_item(common::StateItem {
            key: "k".into(),
            etag: Some(common::Etag::default()),
            options: Some(options(
                StateConcurrency::ConcurrencyLastWrite,
                StateConsistency::ConsistencyUnspecified,
            )),
            ..Default::default()
        });
        assert_eq!(unspecified.etag.as_deref(), Some(""));
        assert_eq!(unspecified.concurrency.as_deref(), Some("last-write"));
        assert_eq!(unspecified.consistency, None);
    }

    #[test]
    fn bulk_answers_carry_data_absence_or_error() {
        let found = bulk_answer(BulkItem {
            key: "a".into(),
            result: Ok(Some(StoredItem {
                data: Bytes::from_static(b"1"),
                etag: Some("3".into()),
                expires_at: None,
            })),
        });
        assert_eq!(
            (found.data.as_slice(), found.etag.as_str()),
            (&b"1"[..], "3")
        );
        let missing = bulk_answer(BulkItem {
            key: "b".into(),
            result: Ok(None),
        });
        assert!(missing.data.is_empty() && missing.error.is_empty());
        let failed = bulk_answer(BulkItem {
            key: "c".into(),
            result: Err("boom".into()),
        });
        assert_eq!(failed.error, "boom");
    }
}
