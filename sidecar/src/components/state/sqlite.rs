//! `state.sqlite`: an embedded SQLite file; the default `statestore` when no resources path is
//! given. Every statement runs on the blocking pool, never on the async runtime.

mod query;
mod worker;

use super::*;
use crate::components::factory::{Instance, Settings};
use crate::components::metadata::{Metadata, MetadataError};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The SQLite store: one connection behind the queue of [`worker::ConnectionQueue`], which runs
/// calls on the blocking pool in rounds and commits the transactions of a round together.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    conn: Arc<worker::ConnectionQueue>,
}

/// The statements on the store's table, built once so the connection's cache reuses their
/// compiled forms.
#[derive(Debug)]
struct Statements {
    table: String,
    get: String,
    select_etag: String,
    upsert: String,
    delete: String,
}

impl Statements {
    fn new(table: &str) -> Self {
        Statements {
            table: table.to_owned(),
            get: format!(
                "SELECT value, etag, expire_at FROM {table}
                 WHERE key = ?1 AND (expire_at IS NULL OR expire_at > ?2)"
            ),
            select_etag: format!(
                "SELECT etag FROM {table} WHERE key = ?1 AND (expire_at IS NULL OR expire_at > ?2)"
            ),
            upsert: format!(
                "INSERT INTO {table} (key, value, etag, expire_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(key) DO UPDATE SET value = ?2, etag = ?3, expire_at = ?4"
            ),
            delete: format!("DELETE FROM {table} WHERE key = ?1"),
        }
    }
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
            conn: Arc::new(worker::ConnectionQueue::new(conn, Statements::new(table))),
        })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection, &str) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        self.conn.read(move |conn, sql| f(conn, &sql.table)).await
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
        self.conn
            .read(move |conn, sql| {
                let mut stmt = conn.prepare_cached(&sql.get).map_err(StoreError::backend)?;
                stmt.query_row(params![key, now_millis()], |row| {
                    let data: Vec<u8> = row.get(0)?;
                    let etag: i64 = row.get(1)?;
                    let expire_at: Option<i64> = row.get(2)?;
                    Ok(StoredItem {
                        data: Bytes::from(data),
                        etag: Some(etag.to_string()),
                        expires_at: expire_at
                            .map(|ms| UNIX_EPOCH + Duration::from_millis(ms.max(0).unsigned_abs())),
                    })
                })
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
        self.conn.transact(ops).await
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

    fn set_request(key: &str, value: &str, etag: Option<&str>) -> SetRequest {
        SetRequest {
            key: key.into(),
            value: Bytes::from(value.to_owned()),
            etag: etag.map(str::to_owned),
            concurrency: Concurrency::LastWrite,
            ttl: None,
        }
    }

    fn upsert(key: &str, value: &str, etag: Option<&str>) -> TxOperation {
        TxOperation::Upsert(set_request(key, value, etag))
    }

    async fn value(store: &SqliteStore, key: &str) -> Option<Bytes> {
        store.get(key).await.expect("get").map(|i| i.data)
    }

    async fn open_temp(dir: &tempfile::TempDir) -> SqliteStore {
        let path = dir.path().join("state.sqlite");
        SqliteStore::open(&path.to_string_lossy(), "state", Duration::from_secs(5))
            .await
            .expect("open")
    }

    /// Two transactions in one group: the second's ETag went stale when the first committed, so
    /// it fails alone and none of its writes stay; the first's all do.
    #[tokio::test]
    async fn group_commit_rolls_back_only_the_stale_transaction() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open_temp(&dir).await;
        store.set(set_request("k1", "v0", None)).await.expect("set");
        let etag = store.get("k1").await.expect("get").and_then(|i| i.etag);
        let etag = etag.as_deref();
        let first = vec![upsert("k1", "a", etag), upsert("k2", "a2", None)];
        let stale = vec![upsert("k3", "b3", None), upsert("k1", "b", etag)];
        let outcomes = {
            let (mut conn, sql) = store.conn.lock_for_test();
            worker::write_group(&mut conn, sql, &[first, stale])
        };
        assert!(outcomes[0].is_ok(), "{:?}", outcomes[0]);
        assert!(
            matches!(outcomes[1], Err(StoreError::EtagMismatch(_))),
            "{:?}",
            outcomes[1]
        );
        assert_eq!(value(&store, "k1").await.as_deref(), Some(&b"a"[..]));
        assert_eq!(value(&store, "k2").await.as_deref(), Some(&b"a2"[..]));
        assert_eq!(value(&store, "k3").await, None);
    }

    /// Many concurrent callers through `transact`: each gets its own outcome, the one with a
    /// stale ETag gets `EtagMismatch` and leaves nothing behind, every other one is written.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_transactions_commit_or_fail_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open_temp(&dir).await;
        let mut calls = tokio::task::JoinSet::new();
        for i in 0..64 {
            let store = store.clone();
            calls.spawn(async move {
                let ops = match i {
                    13 => vec![upsert("stale-a", "x", None), upsert("k13", "x", Some("1"))],
                    _ => vec![
                        upsert(&format!("k{i}"), "v", None),
                        upsert(&format!("j{i}"), "w", None),
                    ],
                };
                (i, store.transact(ops).await)
            });
        }
        let mut answered = 0;
        while let Some(joined) = calls.join_next().await {
            let (i, outcome) = joined.expect("join");
            answered += 1;
            match i {
                13 => assert!(
                    matches!(outcome, Err(StoreError::EtagMismatch(_))),
                    "{outcome:?}"
                ),
                _ => assert!(outcome.is_ok(), "{i}: {outcome:?}"),
            }
        }
        assert_eq!(answered, 64);
        assert_eq!(value(&store, "stale-a").await, None);
        assert_eq!(value(&store, "k13").await, None);
        for i in (0..64).filter(|i| *i != 13) {
            assert_eq!(
                value(&store, &format!("k{i}")).await.as_deref(),
                Some(&b"v"[..])
            );
            assert_eq!(
                value(&store, &format!("j{i}")).await.as_deref(),
                Some(&b"w"[..])
            );
        }
    }

    #[tokio::test]
    async fn refuses_unsafe_table_names() {
        let err = SqliteStore::open(":memory:", "state; DROP", Duration::from_secs(1)).await;
        assert!(err.is_err());
    }
}
