//! `bindings.postgresql` (alias `bindings.postgres`): an output binding that runs the SQL in
//! request metadata `sql`, with the JSON array in `params` bound to `$1`, `$2`, …, as Dapr's
//! does. `exec` answers `rows-affected`; `query` answers the rows as a JSON array of arrays
//! of column values; both add `operation`, `sql`, `start-time`, `end-time` and `duration`.
//! `close` closes the pool, after which other operations fail.
//!
//! As with pgx, an `exec` without parameters goes through the simple query protocol, so it may
//! hold several statements (`rows-affected` is the last one's count); everything else is one
//! prepared statement. The connection settings and pool are shared with `state.postgresql`.

#[cfg(test)]
mod tests;
mod values;

use super::{BindingError, InvokeRequest, InvokeResponse, OutputBinding, go_time};
use crate::components::bindings::Binding;
use crate::components::factory::{Instance, Settings};
use crate::components::metadata::{Metadata, MetadataError};
use crate::components::postgres_connection::PostgresConnection;
use async_trait::async_trait;
use bytes::Bytes;
use chrono::Utc;
use deadpool_postgres::Pool;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tokio_postgres::SimpleQueryMessage;
use tokio_postgres::types::ToSql;
use values::{Param, row_json};

const OPERATIONS: &[&str] = &["exec", "query", "close"];

/// The binding: a pool, until `close`.
pub struct PostgresBinding {
    pool: Pool,
    closed: AtomicBool,
}

impl std::fmt::Debug for PostgresBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresBinding")
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

/// A failed statement as pgx reports it: `ERROR: … (SQLSTATE 42P01)`.
fn failed(e: &tokio_postgres::Error) -> BindingError {
    let text = match e.as_db_error() {
        Some(db) => format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        ),
        None => e.to_string(),
    };
    BindingError::backend(format!("error executing query: {text}"))
}

/// Request metadata `params`: a JSON array, or nothing.
fn params(metadata: &BTreeMap<String, String>) -> Result<Vec<Param>, BindingError> {
    match metadata.get("params").filter(|p| !p.is_empty()) {
        None => Ok(Vec::new()),
        Some(text) => serde_json::from_str::<Vec<Value>>(text)
            .map(|values| values.into_iter().map(Param).collect())
            .map_err(|e| {
                BindingError::BadRequest(format!(
                    "invalid metadata property params: failed to unserialize into an array: {e}"
                ))
            }),
    }
}

impl PostgresBinding {
    /// Builds the pool and connects once, so init fails (and is retried) while PostgreSQL is
    /// unreachable.
    pub async fn connect(connection: &PostgresConnection) -> Result<Self, String> {
        let pool = connection.pool()?;
        let ping = async {
            let client = pool
                .get()
                .await
                .map_err(|e| format!("connecting to postgres: {e}"))?;
            client
                .simple_query("SELECT 1")
                .await
                .map_err(|e| format!("postgres: {e}"))
        };
        tokio::time::timeout(connection.timeout, ping)
            .await
            .map_err(|_| format!("postgres: no answer within {:?}", connection.timeout))??;
        Ok(PostgresBinding {
            pool,
            closed: AtomicBool::new(false),
        })
    }

    /// Runs the statement: `Some(rows)` for a query, else the rows affected.
    async fn run(
        &self,
        op: &str,
        sql: &str,
        params: &[Param],
    ) -> Result<(Option<String>, u64), BindingError> {
        let client = self
            .pool
            .get()
            .await
            .map_err(|e| BindingError::backend(format!("postgres connection: {e}")))?;
        if op == "exec" && params.is_empty() {
            let messages = client.simple_query(sql).await.map_err(|e| failed(&e))?;
            let affected = messages.iter().rev().find_map(|m| match m {
                SimpleQueryMessage::CommandComplete(n) => Some(*n),
                _ => None,
            });
            return Ok((None, affected.unwrap_or(0)));
        }
        let statement = client.prepare(sql).await.map_err(|e| failed(&e))?;
        let refs: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        if op == "exec" {
            let affected = client
                .execute(&statement, &refs)
                .await
                .map_err(|e| failed(&e))?;
            return Ok((None, affected));
        }
        let rows = client
            .query(&statement, &refs)
            .await
            .map_err(|e| failed(&e))?;
        let rows = rows
            .iter()
            .map(row_json)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| BindingError::backend(format!("error reading result: {e}")))?;
        Ok((Some(format!("[{}]", rows.join(","))), 0))
    }
}

#[async_trait]
impl OutputBinding for PostgresBinding {
    fn operations(&self) -> &'static [&'static str] {
        OPERATIONS
    }

    async fn invoke(&self, request: InvokeRequest) -> Result<InvokeResponse, BindingError> {
        let op = request.operation.as_str();
        if !OPERATIONS.contains(&op) {
            return Err(BindingError::unsupported(op, OPERATIONS));
        }
        // Closing twice is fine, as in Dapr.
        if op == "close" {
            self.closed.store(true, Ordering::SeqCst);
            self.pool.close();
            return Ok(InvokeResponse::default());
        }
        if self.closed.load(Ordering::SeqCst) {
            return Err(BindingError::backend("component is closed"));
        }
        let sql = request
            .metadata
            .get("sql")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| BindingError::BadRequest("required metadata not set: sql".to_owned()))?;
        let params = params(&request.metadata)?;

        let (start, clock) = (Utc::now(), Instant::now());
        let (rows, affected) = self.run(op, sql, &params).await?;
        let elapsed = clock.elapsed();
        let end = start + chrono::Duration::from_std(elapsed).unwrap_or_default();

        let mut metadata = BTreeMap::from([
            ("operation".to_owned(), op.to_owned()),
            ("sql".to_owned(), sql.clone()),
            ("start-time".to_owned(), go_time::rfc3339_nano(start)),
            ("end-time".to_owned(), go_time::rfc3339_nano(end)),
            ("duration".to_owned(), go_time::duration(elapsed)),
        ]);
        if op == "exec" {
            metadata.insert("rows-affected".to_owned(), affected.to_string());
        }
        Ok(InvokeResponse {
            data: rows.map(Bytes::from),
            metadata,
        })
    }
}

/// `bindings.postgresql`'s settings: a PostgreSQL connection.
#[derive(Debug)]
pub struct PostgresBindingSettings(PostgresConnection);

#[async_trait]
impl Settings for PostgresBindingSettings {
    async fn init(&self) -> Result<Instance, String> {
        let binding = PostgresBinding::connect(&self.0).await?;
        Ok(Instance::Binding(Binding::output(Arc::new(binding))))
    }
}

pub fn settings(md: &Metadata, _: &Path) -> Result<Arc<dyn Settings>, MetadataError> {
    Ok(Arc::new(PostgresBindingSettings(
        PostgresConnection::from_metadata(md)?,
    )))
}
