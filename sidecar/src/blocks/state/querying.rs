//! The state block's query (Dapr's alpha1 query API): the body parsed ([`super::query`]), the
//! store asked for this app's keys only (its key prefix), keys returned without the prefix, and
//! the next page's token.

use super::query::parse_query;
use super::{StateBlock, lookup_error};
use crate::blocks::error::{BlockError, Code};
use crate::components::state::query::QueryError;
use bytes::Bytes;
use std::time::Instant;

/// One row of an answer, its key as the app knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    pub key: String,
    /// The stored value (JSON).
    pub data: Bytes,
    pub etag: Option<String>,
}

/// An answer: the rows, and the token of the next page when the query has a `limit` (as in
/// Dapr's stores, also after the last page; the page after it is empty).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueryPage {
    pub results: Vec<QueryResult>,
    pub token: Option<String>,
}

impl StateBlock<'_> {
    /// Runs the query `body` (Dapr's JSON query language) against `store`.
    pub async fn query(&self, store: &str, body: &[u8]) -> Result<QueryPage, BlockError> {
        let registry = self.sidecar.registry();
        let handle = registry.state(store).map_err(|w| lookup_error(store, w))?;
        let query = parse_query(body)?;
        // `appid||` (or the component's other prefix): only this app's keys are visible.
        let prefix = handle
            .key_prefix
            .apply(
                "",
                self.sidecar.app_id(),
                handle.name,
                self.sidecar.namespace(),
            )
            .map_err(|e| BlockError::new(Code::StateIllegalKey, e.to_string()))?;
        let started = Instant::now();
        let result = handle.store.query(&prefix, &query).await;
        self.record(handle.name, "query", started, &result);
        let items = result.map_err(|e| match e {
            QueryError::NotSupported => BlockError::new(
                Code::StateQueryNotSupported,
                "state store does not support querying",
            ),
            QueryError::Backend(e) => BlockError::new(
                Code::StateQuery,
                format!("state store {store} query failed: {e}"),
            ),
        })?;
        let next = query.offset + u64::try_from(items.len()).unwrap_or(u64::MAX);
        let token = (query.limit.is_some() && !items.is_empty()).then(|| next.to_string());
        let results = items
            .into_iter()
            .map(|item| QueryResult {
                key: item
                    .key
                    .strip_prefix(prefix.as_str())
                    .map_or_else(|| item.key.clone(), str::to_owned),
                data: item.data,
                etag: item.etag,
            })
            .collect();
        Ok(QueryPage { results, token })
    }
}
