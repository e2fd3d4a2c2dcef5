//! `state.in-memory`: a map in the sidecar's memory, with ETags, transactions and TTL.

use super::query::eval::{Candidate, evaluate};
use super::query::{QueryError, QueryItem, StateQuery};
use super::*;
use crate::components::factory::{Instance, Settings};
use crate::components::metadata::{Metadata, MetadataError};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

#[derive(Debug)]
struct Entry {
    data: Bytes,
    version: i64,
    expires_at: Option<SystemTime>,
}

impl Entry {
    fn live(&self, now: SystemTime) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }
}

/// The in-memory store. The lock is never held across an await.
#[derive(Debug, Default)]
pub struct MemoryStore {
    entries: Mutex<HashMap<String, Entry>>,
    next_version: std::sync::atomic::AtomicI64,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // A panic while holding the lock cannot leave an entry half-written, so a poisoned map
        // is still consistent.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn version(&self) -> i64 {
        self.next_version
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1
    }

    /// Checks one operation against the map without changing it.
    fn check(map: &HashMap<String, Entry>, op: &TxOperation, now: SystemTime) -> StoreResult<()> {
        let (key, etag, concurrency, is_set) = match op {
            TxOperation::Upsert(r) => (&r.key, &r.etag, r.concurrency, true),
            TxOperation::Delete(r) => (&r.key, &r.etag, r.concurrency, false),
            TxOperation::Check(r) => {
                let want = parse_etag(&r.etag)?;
                return match map.get(&r.key).filter(|e| e.live(now)) {
                    Some(e) if e.version == want => Ok(()),
                    _ => Err(StoreError::EtagMismatch(format!("key {}", r.key))),
                };
            }
        };
        let current = map.get(key).filter(|e| e.live(now));
        match etag {
            Some(etag) => {
                let want = parse_etag(etag)?;
                match current {
                    Some(e) if e.version == want => Ok(()),
                    _ => Err(StoreError::EtagMismatch(format!("key {key}"))),
                }
            }
            None if is_set && concurrency == Concurrency::FirstWrite && current.is_some() => Err(
                StoreError::EtagMismatch(format!("key {key} already exists")),
            ),
            None => Ok(()),
        }
    }

    fn apply(&self, map: &mut HashMap<String, Entry>, op: TxOperation, now: SystemTime) {
        match op {
            TxOperation::Upsert(r) => {
                let expires_at =
                    expiry_seconds(r.ttl).map(|s| now + Duration::from_secs(s.unsigned_abs()));
                let version = self.version();
                map.insert(
                    r.key,
                    Entry {
                        data: r.value,
                        version,
                        expires_at,
                    },
                );
            }
            TxOperation::Delete(r) => {
                map.remove(&r.key);
            }
            TxOperation::Check(_) => {}
        }
    }

    fn run(&self, ops: Vec<TxOperation>) -> StoreResult<()> {
        let now = SystemTime::now();
        let mut map = self.lock();
        for op in &ops {
            Self::check(&map, op, now)?;
        }
        for op in ops {
            self.apply(&mut map, op, now);
        }
        // Expired keys nobody reads again are swept now and then, not on every write.
        if self.next_version.load(std::sync::atomic::Ordering::Relaxed) % 4096 == 0 {
            map.retain(|_, e| e.live(now));
        }
        Ok(())
    }
}

#[async_trait]
impl StateStore for MemoryStore {
    fn features(&self) -> &'static [Feature] {
        &[Feature::Etag, Feature::Transactional, Feature::Ttl]
    }

    async fn query(&self, prefix: &str, query: &StateQuery) -> Result<Vec<QueryItem>, QueryError> {
        let now = SystemTime::now();
        // Copy out under the lock (the values are reference-counted), parse outside it.
        let rows: Vec<(String, Bytes, i64)> = self
            .lock()
            .iter()
            .filter(|(k, e)| k.starts_with(prefix) && e.live(now))
            .map(|(k, e)| (k.clone(), e.data.clone(), e.version))
            .collect();
        let candidates = rows
            .into_iter()
            .filter_map(|(key, data, version)| {
                let doc = serde_json::from_slice(&data).ok()?;
                Some(Candidate {
                    key,
                    doc,
                    data,
                    etag: Some(version.to_string()),
                })
            })
            .collect();
        Ok(evaluate(query, candidates))
    }

    async fn get(&self, key: &str) -> StoreResult<Option<StoredItem>> {
        let now = SystemTime::now();
        Ok(self
            .lock()
            .get(key)
            .filter(|e| e.live(now))
            .map(|e| StoredItem {
                data: e.data.clone(),
                etag: Some(e.version.to_string()),
                expires_at: e.expires_at,
            }))
    }

    async fn set(&self, req: SetRequest) -> StoreResult<()> {
        self.run(vec![TxOperation::Upsert(req)])
    }

    async fn delete(&self, req: DeleteRequest) -> StoreResult<()> {
        self.run(vec![TxOperation::Delete(req)])
    }

    async fn transact(&self, ops: Vec<TxOperation>) -> StoreResult<()> {
        self.run(ops)
    }

    async fn scan_prefix(
        &self,
        prefix: &str,
        cursor: Option<String>,
        limit: usize,
    ) -> StoreResult<ScanPage> {
        let now = SystemTime::now();
        let after = cursor.unwrap_or_default();
        let mut items: Vec<(String, StoredItem)> = self
            .lock()
            .iter()
            .filter(|(k, e)| k.starts_with(prefix) && k.as_str() > after.as_str() && e.live(now))
            .map(|(k, e)| {
                (
                    k.clone(),
                    StoredItem {
                        data: e.data.clone(),
                        etag: Some(e.version.to_string()),
                        expires_at: e.expires_at,
                    },
                )
            })
            .collect();
        items.sort_by(|a, b| a.0.cmp(&b.0));
        let limit = limit.max(1);
        let next = (items.len() > limit).then(|| items[limit - 1].0.clone());
        items.truncate(limit);
        Ok(ScanPage { items, next })
    }
}

/// `state.in-memory` has no settings.
#[derive(Debug)]
pub struct MemorySettings;

#[async_trait::async_trait]
impl Settings for MemorySettings {
    async fn init(&self) -> Result<Instance, String> {
        Ok(Instance::State(Arc::new(MemoryStore::new())))
    }
}

pub fn settings(_: &Metadata, _: &Path) -> Result<Arc<dyn Settings>, MetadataError> {
    Ok(Arc::new(MemorySettings))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn conforms() {
        super::super::conformance::run(
            &MemoryStore::new(),
            "mem",
            super::super::conformance::EtagOnMissingKey::Conflicts,
        )
        .await;
    }

    #[tokio::test]
    async fn contended_increments_are_exact() {
        let store: std::sync::Arc<dyn StateStore> = std::sync::Arc::new(MemoryStore::new());
        super::super::conformance::contended_increments(store, "counter", 8, 200).await;
    }
}
