//! `state.redis` (placeholder: being implemented).

use super::*;
use crate::components::metadata::{Metadata, MetadataError};

/// Validated settings of a `state.redis` component.
#[derive(Debug, Clone, PartialEq)]
pub struct RedisConfig {}

impl RedisConfig {
    pub fn from_metadata(_md: &Metadata) -> Result<Self, MetadataError> {
        Ok(RedisConfig {})
    }
}

/// The store.
#[derive(Debug)]
pub struct RedisStore {}

impl RedisStore {
    pub async fn connect(_cfg: &RedisConfig) -> Result<Self, String> {
        Err("not implemented yet".to_owned())
    }
}

#[async_trait]
impl StateStore for RedisStore {
    fn features(&self) -> &'static [Feature] {
        &[]
    }
    async fn get(&self, _key: &str) -> StoreResult<Option<StoredItem>> {
        Err(StoreError::backend("not implemented"))
    }
    async fn set(&self, _req: SetRequest) -> StoreResult<()> {
        Err(StoreError::backend("not implemented"))
    }
    async fn delete(&self, _req: DeleteRequest) -> StoreResult<()> {
        Err(StoreError::backend("not implemented"))
    }
    async fn transact(&self, _ops: Vec<TxOperation>) -> StoreResult<()> {
        Err(StoreError::backend("not implemented"))
    }
}
