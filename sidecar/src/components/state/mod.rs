//! State stores. The API layer validates requests and applies key prefixes; a store receives final
//! keys and must implement these semantics exactly (every store is tested against the same suite):
//!
//! - ETags are decimal version numbers. A request ETag that does not parse is `EtagInvalid` (400).
//! - `set` with an ETag succeeds only if the key exists with that ETag, else `EtagMismatch` (409).
//!   An ETag naming a key that does not exist is each Dapr store's own call, and Tandem's store of
//!   the same type makes the same one: `state.redis` writes (Dapr's script compares versions only
//!   when the key has one), the others conflict (`conformance::EtagOnMissingKey`).
//!   With no ETag and `FirstWrite`, it succeeds only if the key does not exist. Otherwise it
//!   overwrites. Every successful write gives the key a new ETag.
//! - `delete` with an ETag succeeds only if the key exists with that ETag; without one, deleting a
//!   missing key is not an error.
//! - `ttl`: `Some(n > 0)` expires the key after n seconds; `None` or `Some(-1)` keeps it forever
//!   (a later write without TTL removes an earlier TTL). Expired keys are never returned.
//! - `transact` applies every operation or none; any ETag failure aborts the whole transaction.
//!   Every operation's condition is checked against the state before the transaction.

mod keys;
pub mod memory;
pub mod postgres;
pub mod query;
pub mod redis;
pub mod sqlite;

pub use keys::KeyPrefix;

use async_trait::async_trait;
use bytes::Bytes;
use std::time::SystemTime;

/// What a store can do; shown in `/v1.0/metadata` as Dapr's capability names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    Etag,
    Transactional,
    Ttl,
    Actor,
}

impl Feature {
    pub fn as_str(self) -> &'static str {
        match self {
            Feature::Etag => "ETAG",
            Feature::Transactional => "TRANSACTIONAL",
            Feature::Ttl => "TTL",
            Feature::Actor => "ACTOR",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Concurrency {
    FirstWrite,
    #[default]
    LastWrite,
}

/// A write of one key.
#[derive(Debug, Clone, PartialEq)]
pub struct SetRequest {
    pub key: String,
    pub value: Bytes,
    pub etag: Option<String>,
    pub concurrency: Concurrency,
    /// Seconds to live; `None` or `Some(-1)` means forever.
    pub ttl: Option<i64>,
}

/// A delete of one key.
#[derive(Debug, Clone, PartialEq)]
pub struct DeleteRequest {
    pub key: String,
    pub etag: Option<String>,
    pub concurrency: Concurrency,
}

/// A condition on one key that writes nothing: the transaction applies only if the key exists
/// with this ETag. Actor ownership fences are checked this way (a zombie owner's writes fail).
#[derive(Debug, Clone, PartialEq)]
pub struct CheckRequest {
    pub key: String,
    pub etag: String,
}

/// One operation of a transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum TxOperation {
    Upsert(SetRequest),
    Delete(DeleteRequest),
    Check(CheckRequest),
}

impl TxOperation {
    pub fn key(&self) -> &str {
        match self {
            TxOperation::Upsert(r) => &r.key,
            TxOperation::Delete(r) => &r.key,
            TxOperation::Check(r) => &r.key,
        }
    }
}

/// One page of a key scan: items in the store's order, and the cursor of the next page.
#[derive(Debug, Default)]
pub struct ScanPage {
    pub items: Vec<(String, StoredItem)>,
    pub next: Option<String>,
}

/// A stored value.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredItem {
    pub data: Bytes,
    pub etag: Option<String>,
    /// When the key expires, for stores with TTL support.
    pub expires_at: Option<SystemTime>,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("possible etag mismatch. error from state store: {0}")]
    EtagMismatch(String),
    #[error("invalid etag value: {0}")]
    EtagInvalid(String),
    #[error("{0}")]
    Backend(String),
    #[error("the store cannot {0}")]
    Unsupported(&'static str),
}

impl StoreError {
    pub fn backend(err: impl std::fmt::Display) -> Self {
        StoreError::Backend(err.to_string())
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Parses a request ETag into the version number every store uses.
pub fn parse_etag(etag: &str) -> StoreResult<i64> {
    etag.trim()
        .parse::<i64>()
        .map_err(|_| StoreError::EtagInvalid(etag.to_owned()))
}

/// Whether a TTL asks for expiry: `Some(seconds)` when it does.
pub fn expiry_seconds(ttl: Option<i64>) -> Option<i64> {
    ttl.filter(|s| *s > 0)
}

/// A state store implementation.
#[async_trait]
pub trait StateStore: Send + Sync + 'static {
    fn features(&self) -> &'static [Feature];

    /// Runs `query` over the live keys starting with `prefix` whose value is JSON, with the
    /// semantics of [`query`]; rows carry their stored keys. Stores without query support keep
    /// this default.
    async fn query(
        &self,
        _prefix: &str,
        _query: &query::StateQuery,
    ) -> Result<Vec<query::QueryItem>, query::QueryError> {
        Err(query::QueryError::NotSupported)
    }

    async fn get(&self, key: &str) -> StoreResult<Option<StoredItem>>;

    async fn set(&self, req: SetRequest) -> StoreResult<()>;

    async fn delete(&self, req: DeleteRequest) -> StoreResult<()>;

    async fn transact(&self, ops: Vec<TxOperation>) -> StoreResult<()>;

    /// Live keys starting with `prefix`, at most about `limit` per page; `cursor` is the `next`
    /// of the previous page. Placement and reminders use it on the actor state store.
    async fn scan_prefix(
        &self,
        _prefix: &str,
        _cursor: Option<String>,
        _limit: usize,
    ) -> StoreResult<ScanPage> {
        Err(StoreError::Unsupported("list keys"))
    }

    /// Releases connections; called once at shutdown.
    async fn close(&self) {}
}

#[cfg(test)]
pub mod conformance;
