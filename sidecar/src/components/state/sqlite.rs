//! `state.sqlite`: an embedded SQLite file; the default `statestore` when no resources path is
//! given. Every statement runs on the blocking pool, never on the async runtime.

mod query;

use super::*;
use crate::components::factory::{Instance, Settings};
use crate::components::metadata::{Metadata, MetadataError};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The SQLite store: one connection, serialised by a mutex that is only taken inside
/// `spawn_blocking`.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    table: Arc<str>,
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn new_etag() -> i64 {
    // Random, not per-key counters: a key deleted and written again never repeats an old etag.
    (rand::random::<u64>() >> 2) as i64 + 1
}

fn valid_table(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl SqliteStore {
    /// Opens (creating when needed) the database at `path` (a path or a `file:` URI).
    pub async fn open(path: &str, table: &str, busy_timeout: Duration) -> Result<Self, String> {
        if !valid_table(table) {
            return Err(format!(
                "tableName {table:?} must be letters, digits and underscores"
            ));
        }
        let (path, table_name) = (path.to_owned(), table.to_owned());
        let conn = tokio::task::spawn_blocking(move || -> rusqlite::Result<Connection> {
            if let Some(dir) = Path::new(&path)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                && !path.starts_with("file:")
            {
                let _ = std::fs::create_dir_all(dir);
            }
            let conn = Connection::open(&path)?;
            conn.busy_timeout(busy_timeout)?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            conn.execute_batch(&format!(
                "CREATE TABLE IF NOT EXISTS {table_name} (
                    key TEXT NOT NULL PRIMARY KEY,
                    value BLOB NOT NULL,
                    etag INTEGER NOT NULL,
                    expire_at INTEGER
                )"
            ))?;
            Ok(conn)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            table: table.into(),
        })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection, &str) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let (conn, table) = (self.conn.clone(), self.table.clone());
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut conn, &table)
        })
        .await
        .map_err(StoreError::backend)?
    }

    fn current_etag(tx: &Connection, table: &str, key: &str, now: i64) -> StoreResult<Option<i64>> {
        tx.query_row(
            &format!(
                "SELECT etag FROM {table} WHERE key = ?1 AND (expire_at IS NULL OR expire_at > ?2)"
            ),
            params![key, now],
            |row| row.get(0),
        )
        .optional()
        .map_err(StoreError::backend)
    }

    /// Checks one operation's etag / first-write condition against the current row.
    fn check(tx: &Connection, table: &str, op: &TxOperation, now: i64) -> StoreResult<()> {
        let (key, etag, first_write) = match op {
            TxOperation::Upsert(r) => (&r.key, &r.etag, r.concurrency == Concurrency::FirstWrite),
            TxOperation::Delete(r) => (&r.key, &r.etag, false),
            TxOperation::Check(r) => {
                let current = Self::current_etag(tx, table, &r.key, now)?;
                return match current == Some(parse_etag(&r.etag)?) {
                    true => Ok(()),
                    false => Err(StoreError::EtagMismatch(format!("key {}", r.key))),
                };
            }
        };
        let current = Self::current_etag(tx, table, key, now)?;
        match etag {
            Some(etag) if current != Some(parse_etag(etag)?) => {
                Err(StoreError::EtagMismatch(format!("key {key}")))
            }
            None if first_write && current.is_some() => Err(StoreError::EtagMismatch(format!(
                "key {key} already exists"
            ))),
            _ => Ok(()),
        }
    }

    fn apply(tx: &Connection, table: &str, op: &TxOperation, now: i64) -> StoreResult<()> {
        match op {
            TxOperation::Upsert(r) => {
                let expire_at =
                    expiry_seconds(r.ttl).map(|s| now.saturating_add(s.saturating_mul(1000)));
                tx.execute(
                    &format!(
                        "INSERT INTO {table} (key, value, etag, expire_at) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT(key) DO UPDATE SET value = ?2, etag = ?3, expire_at = ?4"
                    ),
                    params![r.key, r.value.as_ref(), new_etag(), expire_at],
                )
                .map_err(StoreError::backend)?;
            }
            TxOperation::Delete(r) => {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE key = ?1"),
                    params![r.key],
                )
                .map_err(StoreError::backend)?;
            }
            TxOperation::Check(_) => {}
        }
        Ok(())
    }

    fn run(conn: &mut Connection, table: &str, ops: &[TxOperation]) -> StoreResult<()> {
        let now = now_millis();
        // IMMEDIATE takes the write lock up front, so two processes sharing the file cannot both
        // read an etag and then both write.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::backend)?;
        // Every condition is checked against the state before the transaction, then all apply.
        for op in ops {
            Self::check(&tx, table, op, now)?;
        }
        for op in ops {
            Self::apply(&tx, table, op, now)?;
        }
        tx.commit().map_err(StoreError::backend)
    }
}

#[async_trait]
impl StateStore for SqliteStore {
    fn features(&self) -> &'static [Feature] {
        &[Feature::Etag, Feature::Transactional, Feature::Ttl]
    }

    async fn query(
        &self,
        prefix: &str,
        query: &super::query::StateQuery,
    ) -> Result<Vec<super::query::QueryItem>, super::query::QueryError> {
        let (prefix, wanted) = (prefix.to_owned(), query.clone());
        self.blocking(move |conn, table| {
            query::run(conn, &query::select(table, &prefix, now_millis(), &wanted))
        })
        .await
        .map_err(|e| super::query::QueryError::Backend(e.to_string()))
    }

    async fn get(&self, key: &str) -> StoreResult<Option<StoredItem>> {
        let key = key.to_owned();
        self.blocking(move |conn, table| {
            conn.query_row(
                &format!(
                    "SELECT value, etag, expire_at FROM {table}
                     WHERE key = ?1 AND (expire_at IS NULL OR expire_at > ?2)"
                ),
                params![key, now_millis()],
                |row| {
                    let data: Vec<u8> = row.get(0)?;
                    let etag: i64 = row.get(1)?;
                    let expire_at: Option<i64> = row.get(2)?;
                    Ok(StoredItem {
                        data: Bytes::from(data),
                        etag: Some(etag.to_string()),
                        expires_at: expire_at
                            .map(|ms| UNIX_EPOCH + Duration::from_millis(ms.max(0).unsigned_abs())),
                    })
                },
            )
            .optional()
            .map_err(StoreError::backend)
        })
        .await
    }

    async fn set(&self, req: SetRequest) -> StoreResult<()> {
        self.transact(vec![TxOperation::Upsert(req)]).await
    }

    async fn delete(&self, req: DeleteRequest) -> StoreResult<()> {
        self.transact(vec![TxOperation::Delete(req)]).await
    }

    async fn transact(&self, ops: Vec<TxOperation>) -> StoreResult<()> {
        self.blocking(move |conn, table| Self::run(conn, table, &ops))
            .await
    }

    async fn scan_prefix(
        &self,
        prefix: &str,
        cursor: Option<String>,
        limit: usize,
    ) -> StoreResult<ScanPage> {
        // Keys sort bytewise; every key with the prefix lies below prefix + U+10FFFF.
        let lower = cursor.unwrap_or_default();
        let (prefix, upper) = (prefix.to_owned(), format!("{prefix}\u{10FFFF}"));
        let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        self.blocking(move |conn, table| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT key, value, etag, expire_at FROM {table}
                     WHERE key >= ?1 AND key < ?2 AND key > ?3
                       AND (expire_at IS NULL OR expire_at > ?4)
                     ORDER BY key LIMIT ?5"
                ))
                .map_err(StoreError::backend)?;
            let rows = stmt
                .query_map(params![prefix, upper, lower, now_millis(), limit], |row| {
                    let key: String = row.get(0)?;
                    let data: Vec<u8> = row.get(1)?;
                    let etag: i64 = row.get(2)?;
                    let expire_at: Option<i64> = row.get(3)?;
                    Ok((
                        key,
                        StoredItem {
                            data: Bytes::from(data),
                            etag: Some(etag.to_string()),
                            expires_at: expire_at.map(|ms| {
                                UNIX_EPOCH + Duration::from_millis(ms.max(0).unsigned_abs())
                            }),
                        },
                    ))
                })
                .map_err(StoreError::backend)?;
            let items = rows
                .collect::<Result<Vec<_>, _>>()
                .map_err(StoreError::backend)?;
            let full = i64::try_from(items.len()).unwrap_or(i64::MAX) >= limit;
            let next = full.then(|| items.last().map(|(k, _)| k.clone())).flatten();
            Ok(ScanPage { items, next })
        })
        .await
    }
}

/// `state.sqlite`'s settings.
#[derive(Debug)]
pub struct SqliteSettings {
    pub path: String,
    pub table: String,
    pub busy_timeout: Duration,
}

#[async_trait::async_trait]
impl Settings for SqliteSettings {
    async fn init(&self) -> Result<Instance, String> {
        let store = SqliteStore::open(&self.path, &self.table, self.busy_timeout).await?;
        Ok(Instance::State(Arc::new(store)))
    }
}

pub fn settings(md: &Metadata, _: &Path) -> Result<Arc<dyn Settings>, MetadataError> {
    Ok(Arc::new(SqliteSettings {
        path: md.require("connectionString")?.to_owned(),
        table: md.get("tableName").unwrap_or("state").to_owned(),
        busy_timeout: md
            .duration("busyTimeout")?
            .unwrap_or(Duration::from_secs(5)),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn conforms() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.sqlite");
        let store = SqliteStore::open(&path.to_string_lossy(), "state", Duration::from_secs(5))
            .await
            .expect("open");
        super::super::conformance::run(
            &store,
            "sqlite",
            super::super::conformance::EtagOnMissingKey::Conflicts,
        )
        .await;
    }

    #[tokio::test]
    async fn refuses_unsafe_table_names() {
        let err = SqliteStore::open(":memory:", "state; DROP", Duration::from_secs(1)).await;
        assert!(err.is_err());
    }
}
