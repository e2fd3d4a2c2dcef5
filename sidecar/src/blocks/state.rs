//! The state building block: save, get, delete, bulk get and transactions over the configured
//! stores, with Dapr's semantics (key prefixes, ETags, first-write, TTL) and its error codes.
//! Front ends translate their wire shapes into [`SaveItem`]/[`DeleteItem`]/[`TxRequest`] and
//! call these methods; nothing here knows HTTP or gRPC.

mod query;
mod querying;
mod request;

pub use querying::{QueryPage, QueryResult};
pub use request::{DeleteItem, SaveItem, TxRequest};

use super::Sidecar;
use super::error::{BlockError, Code};
use crate::components::registry::{Lookup, StateHandle};
use crate::components::state::{Feature, KeyPrefix, StoreError, StoredItem};
use futures_util::StreamExt;
use request::{
    KeyScope, check_consistency, to_delete, to_set, to_transaction, with_request_metadata,
};
use std::collections::BTreeMap;
use std::time::Instant;

/// One answer of a bulk get: the key as asked, and its item, nothing, or the store's error.
#[derive(Debug)]
pub struct BulkItem {
    pub key: String,
    pub result: Result<Option<StoredItem>, String>,
}

/// The state block of one sidecar.
pub struct StateBlock<'a> {
    sidecar: &'a Sidecar,
}

impl Sidecar {
    pub fn state(&self) -> StateBlock<'_> {
        StateBlock { sidecar: self }
    }
}

fn lookup_error(store: &str, why: Lookup) -> BlockError {
    match why {
        Lookup::NoneConfigured => BlockError::new(
            Code::StateStoreNotConfigured,
            "state store is not configured",
        ),
        Lookup::NotFound => BlockError::new(
            Code::StateStoreNotFound,
            format!("state store {store} is not found"),
        ),
        Lookup::NotReady(status) => BlockError::new(
            Code::StateStoreNotConfigured,
            format!("state store {store} is not ready: {status:?}"),
        ),
    }
}

/// Dapr's reading of a store error on save/delete: etag mismatch, bad etag, or the store's fault.
fn store_error(codes: [Code; 3], verb: &str, store: &str, err: StoreError) -> BlockError {
    let [mismatch, invalid, backend] = codes;
    let code = match err {
        StoreError::EtagMismatch(_) => mismatch,
        StoreError::EtagInvalid(_) => invalid,
        StoreError::Backend(_) | StoreError::Unsupported(_) => backend,
    };
    BlockError::new(
        code,
        format!("failed {verb} state with key in state store {store}: {err}"),
    )
}

const SAVE_CODES: [Code; 3] = [
    Code::StateSaveEtagMismatch,
    Code::StateSaveEtagInvalid,
    Code::StateSave,
];
const DELETE_CODES: [Code; 3] = [
    Code::StateDeleteEtagMismatch,
    Code::StateDeleteEtagInvalid,
    Code::StateDelete,
];

impl StateBlock<'_> {
    fn scope<'h>(&'h self, handle: &'h StateHandle<'h>) -> KeyScope<'h> {
        KeyScope {
            prefix: handle.key_prefix,
            app_id: self.sidecar.app_id(),
            store: handle.name,
            namespace: self.sidecar.namespace(),
        }
    }

    fn record<T, E>(&self, store: &str, op: &str, started: Instant, r: &Result<T, E>) {
        self.sidecar
            .metrics()
            .components()
            .state(store, op, r.is_ok(), started.elapsed());
    }

    /// Saves every item; all are attempted, the first failure is returned.
    pub async fn save(
        &self,
        store: &str,
        items: Vec<SaveItem>,
        request_md: &BTreeMap<String, String>,
    ) -> Result<(), BlockError> {
        let registry = self.sidecar.registry();
        let handle = registry.state(store).map_err(|w| lookup_error(store, w))?;
        let scope = self.scope(&handle);
        let requests = items
            .into_iter()
            .map(|item| to_set(with_request_metadata(item, request_md), &scope, request_md))
            .collect::<Result<Vec<_>, _>>()?;
        let mut first_error = None;
        for req in requests {
            let started = Instant::now();
            let result = handle.store.set(req).await;
            self.record(handle.name, "set", started, &result);
            if let Err(e) = result {
                first_error.get_or_insert(store_error(SAVE_CODES, "saving", store, e));
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// The item under `key`, if any.
    pub async fn get(
        &self,
        store: &str,
        key: &str,
        consistency: Option<&str>,
    ) -> Result<Option<StoredItem>, BlockError> {
        let registry = self.sidecar.registry();
        let handle = registry.state(store).map_err(|w| lookup_error(store, w))?;
        check_consistency(consistency)?;
        let stored_key = self.scope(&handle).key(key)?;
        let started = Instant::now();
        let result = handle.store.get(&stored_key).await;
        self.record(handle.name, "get", started, &result);
        result.map_err(|e| {
            BlockError::new(
                Code::StateGet,
                format!("fail to get {key} from state store {store}: {e}"),
            )
        })
    }

    pub async fn delete(&self, store: &str, item: DeleteItem) -> Result<(), BlockError> {
        let registry = self.sidecar.registry();
        let handle = registry.state(store).map_err(|w| lookup_error(store, w))?;
        let consistency = item.consistency.clone();
        let req = to_delete(item, &self.scope(&handle))?;
        check_consistency(consistency.as_deref())?;
        let started = Instant::now();
        let result = handle.store.delete(req).await;
        self.record(handle.name, "delete", started, &result);
        result.map_err(|e| store_error(DELETE_CODES, "deleting", store, e))
    }

    /// Deletes every item (gRPC `DeleteBulkState`); all are attempted, the first failure is
    /// returned. Every key is checked before anything is deleted.
    pub async fn bulk_delete(&self, store: &str, items: Vec<DeleteItem>) -> Result<(), BlockError> {
        let registry = self.sidecar.registry();
        let handle = registry.state(store).map_err(|w| lookup_error(store, w))?;
        let scope = self.scope(&handle);
        let requests = items
            .into_iter()
            .map(|item| {
                check_consistency(item.consistency.as_deref())?;
                to_delete(item, &scope)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut first_error = None;
        for req in requests {
            let started = Instant::now();
            let result = handle.store.delete(req).await;
            self.record(handle.name, "delete", started, &result);
            if let Err(e) = result {
                first_error.get_or_insert(store_error(DELETE_CODES, "deleting", store, e));
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Reads `keys`, `parallelism` at a time (default 100, at most 1000); a key's failure is
    /// its own answer, not the request's.
    pub async fn bulk_get(
        &self,
        store: &str,
        keys: &[String],
        parallelism: Option<usize>,
    ) -> Result<Vec<BulkItem>, BlockError> {
        let registry = self.sidecar.registry();
        let handle = registry.state(store).map_err(|w| lookup_error(store, w))?;
        let scope = self.scope(&handle);
        let keys = keys
            .iter()
            .map(|k| scope.key(k))
            .collect::<Result<Vec<_>, _>>()?;
        let parallelism = parallelism.unwrap_or(100).clamp(1, 1000);
        let store_ref = handle.store;
        Ok(futures_util::stream::iter(keys)
            .map(|stored| async move {
                let key = KeyPrefix::original(&stored).to_owned();
                let result = store_ref.get(&stored).await.map_err(|e| e.to_string());
                BulkItem { key, result }
            })
            .buffered(parallelism)
            .collect()
            .await)
    }

    /// Applies every operation or none.
    pub async fn transact(
        &self,
        store: &str,
        ops: Vec<TxRequest>,
        request_md: &BTreeMap<String, String>,
    ) -> Result<(), BlockError> {
        let registry = self.sidecar.registry();
        let handle = registry.state(store).map_err(|w| lookup_error(store, w))?;
        if !handle.store.features().contains(&Feature::Transactional) {
            return Err(BlockError::new(
                Code::StateTransactionsNotSupported,
                format!("state store {store} doesn't support transactions"),
            ));
        }
        let ops = to_transaction(ops, &self.scope(&handle), request_md)?;
        if ops.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let result = handle.store.transact(ops).await;
        self.record(handle.name, "transaction", started, &result);
        result.map_err(|e| {
            BlockError::new(
                Code::StateTransaction,
                format!("error while executing state transaction: {e}"),
            )
        })
    }
}
