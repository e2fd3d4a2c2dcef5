//! `state.postgresql` v1: Dapr's v1 table layout, so a Tandem app and a Dapr app can share a
//! table. Values that are JSON are stored as `jsonb` (normalised by PostgreSQL, as with Dapr);
//! anything else as the base64 of the bytes in a JSON string with `isbinary` set. The ETag is
//! the row's `xmin`, which every write changes. Single writes are one conditional statement;
//! transactions lock the rows they touch, check every condition, then apply every operation.

mod config;
mod query;
mod rows;

#[cfg(test)]
mod tests;

pub use config::PostgresConfig;

use super::*;
use crate::components::factory::{Instance, Settings};
use crate::components::metadata::{Metadata, MetadataError};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use deadpool_postgres::{GenericClient, Pool};
use rows::{Op, Sql, Write, compact_json, xmin};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio_postgres::types::ToSql;

fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

fn pg(what: &str, key: &str) -> impl FnOnce(tokio_postgres::Error) -> StoreError {
    let context = format!("postgres {what} {key:?}");
    move |e| StoreError::Backend(format!("{context}: {}", describe(&e)))
}

/// The store: a connection pool and the background sweep of expired rows.
pub struct PostgresStore {
    pool: Pool,
    /// The table (queries build their statement around it).
    table: String,
    sql: Sql,
    timeout: Duration,
    sweeper: Option<tokio::task::AbortHandle>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Creates the table (Dapr's v1 layout) if missing. The advisory lock keeps sidecars starting
/// together from racing on `CREATE TABLE`.
async fn migrate(pool: &Pool, table: &str) -> Result<(), String> {
    let mut client = pool
        .get()
        .await
        .map_err(|e| format!("connecting to postgres: {e}"))?;
    let tx = client.transaction().await.map_err(|e| describe(&e))?;
    tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&table])
        .await
        .map_err(|e| describe(&e))?;
    let ddl = format!(
        "CREATE TABLE IF NOT EXISTS {table} (
            key text NOT NULL PRIMARY KEY, value jsonb NOT NULL, isbinary boolean NOT NULL,
            insertdate TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
            updatedate TIMESTAMP WITH TIME ZONE NULL, expiredate TIMESTAMP WITH TIME ZONE NULL);
         ALTER TABLE {table} ADD COLUMN IF NOT EXISTS expiredate TIMESTAMP WITH TIME ZONE NULL;"
    );
    tx.batch_execute(&ddl)
        .await
        .map_err(|e| format!("creating table {table}: {}", describe(&e)))?;
    tx.commit().await.map_err(|e| describe(&e))
}

/// Deletes expired rows every `every` until aborted. Reads filter expired rows anyway; this only
/// keeps the table from growing.
async fn sweep(pool: Pool, sql: String, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let result = match pool.get().await {
            Ok(client) => client.execute(&sql, &[]).await.map_err(|e| describe(&e)),
            Err(e) => Err(e.to_string()),
        };
        match result {
            Ok(0) => {}
            Ok(rows) => tracing::debug!(rows, "deleted expired state rows"),
            Err(error) => tracing::warn!(%error, "deleting expired state rows failed"),
        }
    }
}

impl PostgresStore {
    /// Builds the pool, connects once (so init retries see failures) and creates the table.
    pub async fn connect(cfg: &PostgresConfig) -> Result<Self, String> {
        let timeout = cfg.connection.timeout;
        let pool = cfg.connection.pool()?;
        tokio::time::timeout(timeout, migrate(&pool, &cfg.table))
            .await
            .map_err(|_| format!("postgres: no answer within {timeout:?}"))??;
        let sql = Sql::new(&cfg.table);
        let sweeper = cfg.cleanup_interval.map(|every| {
            tokio::spawn(sweep(pool.clone(), sql.sweep.clone(), every)).abort_handle()
        });
        Ok(PostgresStore {
            pool,
            table: cfg.table.clone(),
            sql,
            timeout,
            sweeper,
        })
    }

    async fn timed<T>(
        &self,
        what: &str,
        op: impl Future<Output = StoreResult<T>>,
    ) -> StoreResult<T> {
        tokio::time::timeout(self.timeout, op).await.map_err(|_| {
            StoreError::Backend(format!(
                "postgres {what}: no answer within {:?}",
                self.timeout
            ))
        })?
    }

    async fn client(&self) -> StoreResult<deadpool_postgres::Client> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::Backend(format!("postgres connection: {e}")))
    }

    /// Runs one write. `checked` puts its ETag / first-write condition into the statement;
    /// returns whether a row was written.
    async fn write(
        &self,
        db: &impl GenericClient,
        w: &Write<'_>,
        checked: bool,
    ) -> StoreResult<bool> {
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&w.key, &w.value, &w.binary, &w.ttl];
        let sql = match &w.etag {
            Some(etag) if checked => {
                params.push(etag);
                &self.sql.update_if
            }
            None if checked && w.first_write => &self.sql.insert_new,
            _ => &self.sql.upsert,
        };
        let stmt = db
            .prepare_cached(sql)
            .await
            .map_err(pg("prepare set", w.key))?;
        Ok(db.execute(&stmt, &params).await.map_err(pg("set", w.key))? > 0)
    }

    async fn remove(
        &self,
        db: &impl GenericClient,
        key: &str,
        etag: Option<&String>,
    ) -> StoreResult<bool> {
        let (sql, params): (_, Vec<&(dyn ToSql + Sync)>) = match etag {
            Some(etag) => (&self.sql.delete_if, vec![&key, etag]),
            None => (&self.sql.delete, vec![&key]),
        };
        let stmt = db
            .prepare_cached(sql)
            .await
            .map_err(pg("prepare delete", key))?;
        Ok(db
            .execute(&stmt, &params)
            .await
            .map_err(pg("delete", key))?
            > 0)
    }

    /// Locks the live rows of every key, checks every condition against them, then applies
    /// every operation; any failure rolls the whole transaction back.
    async fn run_tx(&self, ops: &[Op<'_>]) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg("begin", ""))?;
        let keys: Vec<&str> = ops.iter().map(Op::key).collect();
        let first = keys.first().copied().unwrap_or_default();
        let lock = tx
            .prepare_cached(&self.sql.lock)
            .await
            .map_err(pg("prepare lock", ""))?;
        let mut current = HashMap::new();
        for row in tx.query(&lock, &[&keys]).await.map_err(pg("lock", first))? {
            let key: String = row.try_get(0).map_err(pg("read", first))?;
            current.insert(key, row.try_get::<_, String>(1).map_err(pg("read", first))?);
        }
        for op in ops {
            let key = op.key();
            if let Some(etag) = op.etag() {
                if current.get(key) != Some(etag) {
                    return Err(StoreError::EtagMismatch(format!("key {key}")));
                }
            } else if matches!(op, Op::Set(w) if w.first_write) && current.contains_key(key) {
                return Err(StoreError::EtagMismatch(format!(
                    "key {key} already exists"
                )));
            }
        }
        let mut touched = HashSet::new();
        for op in ops {
            match op {
                // A key absent at the check is not locked: its first write stays conditional,
                // so a concurrent insert still makes this transaction fail.
                Op::Set(w) => {
                    if !self
                        .write(&tx, w, w.first_write && !touched.contains(w.key))
                        .await?
                    {
                        return Err(StoreError::EtagMismatch(format!(
                            "key {} already exists",
                            w.key
                        )));
                    }
                }
                Op::Delete { key, .. } => {
                    self.remove(&tx, key, None).await?;
                }
                Op::Check { .. } => {}
            }
            touched.insert(op.key());
        }
        tx.commit().await.map_err(pg("commit", ""))
    }
}

/// A row of `get` or `scan` (value text, isbinary, xmin, expiredate, ...) as a stored item.
fn item_from_row(row: &tokio_postgres::Row, key: &str) -> StoreResult<StoredItem> {
    let read = pg("read", key);
    let (text, binary, etag, expires_at): (String, bool, String, Option<SystemTime>) = match (
        row.try_get(0),
        row.try_get(1),
        row.try_get(2),
        row.try_get(3),
    ) {
        (Ok(a), Ok(b), Ok(c), Ok(d)) => (a, b, c, d),
        (Err(e), ..) | (_, Err(e), ..) | (_, _, Err(e), _) | (.., Err(e)) => {
            return Err(read(e));
        }
    };
    let data = if binary {
        BASE64.decode(text.as_bytes()).map_err(|e| {
            StoreError::Backend(format!(
                "postgres get {key:?}: bad base64 in a binary row: {e}"
            ))
        })?
    } else {
        compact_json(&text)
    };
    Ok(StoredItem {
        data: Bytes::from(data),
        etag: Some(etag),
        expires_at,
    })
}

#[async_trait]
impl StateStore for PostgresStore {
    fn features(&self) -> &'static [Feature] {
        &[Feature::Etag, Feature::Transactional, Feature::Ttl]
    }

    async fn query(
        &self,
        prefix: &str,
        query: &super::query::StateQuery,
    ) -> Result<Vec<super::query::QueryItem>, super::query::QueryError> {
        let select = query::select(&self.table, prefix, query);
        self.timed("query", self.run_query(&select))
            .await
            .map_err(|e| super::query::QueryError::Backend(e.to_string()))
    }

    async fn get(&self, key: &str) -> StoreResult<Option<StoredItem>> {
        self.timed("get", async {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(&self.sql.get)
                .await
                .map_err(pg("prepare get", key))?;
            let Some(row) = client
                .query_opt(&stmt, &[&key])
                .await
                .map_err(pg("get", key))?
            else {
                return Ok(None);
            };
            item_from_row(&row, key).map(Some)
        })
        .await
    }

    async fn set(&self, req: SetRequest) -> StoreResult<()> {
        let w = Write::new(&req)?;
        self.timed("set", async {
            if self.write(&self.client().await?, &w, true).await? {
                return Ok(());
            }
            match w.etag {
                Some(_) => Err(StoreError::EtagMismatch(format!("key {}", w.key))),
                None => Err(StoreError::EtagMismatch(format!(
                    "key {} already exists",
                    w.key
                ))),
            }
        })
        .await
    }

    async fn delete(&self, req: DeleteRequest) -> StoreResult<()> {
        let etag = req.etag.as_deref().map(xmin).transpose()?;
        self.timed("delete", async {
            let deleted = self
                .remove(&self.client().await?, &req.key, etag.as_ref())
                .await?;
            if etag.is_some() && !deleted {
                return Err(StoreError::EtagMismatch(format!("key {}", req.key)));
            }
            Ok(())
        })
        .await
    }

    async fn transact(&self, ops: Vec<TxOperation>) -> StoreResult<()> {
        let ops = ops.iter().map(Op::new).collect::<StoreResult<Vec<_>>>()?;
        if ops.is_empty() {
            return Ok(());
        }
        self.timed("transaction", self.run_tx(&ops)).await
    }

    async fn scan_prefix(
        &self,
        prefix: &str,
        cursor: Option<String>,
        limit: usize,
    ) -> StoreResult<ScanPage> {
        let after = cursor.unwrap_or_default();
        let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&self.sql.scan)
            .await
            .map_err(pg("prepare scan", prefix))?;
        let rows = client
            .query(&stmt, &[&prefix, &after, &limit])
            .await
            .map_err(pg("scan", prefix))?;
        let mut items = Vec::with_capacity(rows.len());
        for row in &rows {
            let key: String = row.try_get(4).map_err(pg("read", prefix))?;
            let item = item_from_row(row, &key)?;
            items.push((key, item));
        }
        let full = i64::try_from(items.len()).unwrap_or(i64::MAX) >= limit;
        let next = full.then(|| items.last().map(|(k, _)| k.clone())).flatten();
        Ok(ScanPage { items, next })
    }

    async fn close(&self) {
        if let Some(sweeper) = &self.sweeper {
            sweeper.abort();
        }
        self.pool.close();
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        if let Some(sweeper) = &self.sweeper {
            sweeper.abort();
        }
    }
}

#[async_trait::async_trait]
impl Settings for PostgresConfig {
    async fn init(&self) -> Result<Instance, String> {
        Ok(Instance::State(Arc::new(
            PostgresStore::connect(self).await?,
        )))
    }
}

pub fn settings(md: &Metadata, _: &Path) -> Result<Arc<dyn Settings>, MetadataError> {
    Ok(Arc::new(PostgresConfig::from_metadata(md)?))
}
