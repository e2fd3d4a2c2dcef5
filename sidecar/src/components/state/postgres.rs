//! `state.postgres` (placeholder: being implemented).

use super::*;
use crate::components::metadata::{Metadata, MetadataError};

/// Validated settings of a `state.postgres` component.
#[derive(Debug, Clone, PartialEq)]
pub struct PostgresConfig {}

impl PostgresConfig {
    pub fn from_metadata(_md: &Metadata) -> Result<Self, MetadataError> {
        Ok(PostgresConfig {})
    }
}

/// The store.
#[derive(Debug)]
pub struct PostgresStore {}

impl PostgresStore {
    pub async fn connect(_cfg: &PostgresConfig) -> Result<Self, String> {
        Err("not implemented yet".to_owned())
    }
}

#[async_trait]
impl StateStore for PostgresStore {
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
