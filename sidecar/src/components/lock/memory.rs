//! `lock.in-memory`: locks held in the sidecar's memory, for one sidecar (tests, a single
//! replica). Expired holds are dropped when their key is next touched, and swept now and then.

use super::{LockResult, LockStore, UnlockStatus};
use crate::components::factory::{Instance, Settings};
use crate::components::metadata::{Metadata, MetadataError};
use async_trait::async_trait;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Who holds a lock, and until when.
#[derive(Debug)]
struct Hold {
    owner: String,
    until: Instant,
}

/// Sweep expired holds once this many locks were taken.
const SWEEP_EVERY: u64 = 1024;

/// The in-memory lock store. The mutex is never held across an await.
#[derive(Debug, Default)]
pub struct MemoryLockStore {
    holds: Mutex<HashMap<String, Hold>>,
    taken: std::sync::atomic::AtomicU64,
}

impl MemoryLockStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn holds(&self) -> MutexGuard<'_, HashMap<String, Hold>> {
        // Every change is one insert or remove, so a poisoned map is still consistent.
        self.holds.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `try_lock` as of `now` (tests pass a clock of their own).
    fn try_lock_at(&self, key: &str, owner: &str, ttl: Duration, now: Instant) -> bool {
        let mut holds = self.holds();
        if holds.get(key).is_some_and(|h| h.until > now) {
            return false;
        }
        holds.insert(
            key.to_owned(),
            Hold {
                owner: owner.to_owned(),
                until: now + ttl,
            },
        );
        let taken = self
            .taken
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if taken % SWEEP_EVERY == SWEEP_EVERY - 1 {
            holds.retain(|_, h| h.until > now);
        }
        true
    }

    /// `unlock` as of `now`.
    fn unlock_at(&self, key: &str, owner: &str, now: Instant) -> UnlockStatus {
        let mut holds = self.holds();
        match holds.get(key) {
            Some(h) if h.until <= now => {
                holds.remove(key);
                UnlockStatus::LockDoesNotExist
            }
            None => UnlockStatus::LockDoesNotExist,
            Some(h) if h.owner != owner => UnlockStatus::LockBelongsToOthers,
            Some(_) => {
                holds.remove(key);
                UnlockStatus::Success
            }
        }
    }
}

#[async_trait]
impl LockStore for MemoryLockStore {
    async fn try_lock(&self, key: &str, owner: &str, ttl: Duration) -> LockResult<bool> {
        Ok(self.try_lock_at(key, owner, ttl, Instant::now()))
    }

    async fn unlock(&self, key: &str, owner: &str) -> LockResult<UnlockStatus> {
        Ok(self.unlock_at(key, owner, Instant::now()))
    }
}

/// `lock.in-memory` has no settings.
#[derive(Debug)]
pub struct MemoryLockSettings;

#[async_trait]
impl Settings for MemoryLockSettings {
    async fn init(&self) -> Result<Instance, String> {
        Ok(Instance::Lock(Arc::new(MemoryLockStore::new())))
    }
}

pub fn settings(_: &Metadata, _: &Path) -> Result<Arc<dyn Settings>, MetadataError> {
    Ok(Arc::new(MemoryLockSettings))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(10);

    #[test]
    fn one_owner_at_a_time_and_no_reentry() {
        let store = MemoryLockStore::new();
        let t0 = Instant::now();
        assert!(store.try_lock_at("k", "a", TTL, t0));
        assert!(!store.try_lock_at("k", "b", TTL, t0), "held by a");
        assert!(!store.try_lock_at("k", "a", TTL, t0), "not reentrant");
        assert!(store.try_lock_at("other", "b", TTL, t0), "keys are apart");
    }

    #[test]
    fn only_the_owner_unlocks() {
        let store = MemoryLockStore::new();
        let t0 = Instant::now();
        assert_eq!(
            store.unlock_at("k", "a", t0),
            UnlockStatus::LockDoesNotExist
        );
        assert!(store.try_lock_at("k", "a", TTL, t0));
        assert_eq!(
            store.unlock_at("k", "b", t0),
            UnlockStatus::LockBelongsToOthers
        );
        assert!(!store.try_lock_at("k", "b", TTL, t0), "a still holds it");
        assert_eq!(store.unlock_at("k", "a", t0), UnlockStatus::Success);
        assert_eq!(
            store.unlock_at("k", "a", t0),
            UnlockStatus::LockDoesNotExist
        );
        assert!(store.try_lock_at("k", "b", TTL, t0), "free again");
    }

    #[test]
    fn a_hold_lapses_at_its_expiry() {
        let store = MemoryLockStore::new();
        let t0 = Instant::now();
        assert!(store.try_lock_at("k", "a", Duration::from_secs(1), t0));
        let before = t0 + Duration::from_millis(999);
        let at = t0 + Duration::from_secs(1);
        assert!(!store.try_lock_at("k", "b", TTL, before));
        assert!(store.try_lock_at("k", "b", TTL, at), "expired at 1 s");
        assert_eq!(
            store.unlock_at("k", "a", at),
            UnlockStatus::LockBelongsToOthers,
            "the old owner lost it"
        );
        assert_eq!(store.unlock_at("k", "b", at), UnlockStatus::Success);
    }

    #[test]
    fn an_expired_hold_does_not_exist_for_its_owner() {
        let store = MemoryLockStore::new();
        let t0 = Instant::now();
        assert!(store.try_lock_at("k", "a", Duration::from_secs(1), t0));
        let later = t0 + Duration::from_secs(2);
        assert_eq!(
            store.unlock_at("k", "a", later),
            UnlockStatus::LockDoesNotExist
        );
    }

    #[test]
    fn expired_holds_are_swept() {
        let store = MemoryLockStore::new();
        let t0 = Instant::now();
        for i in 0..SWEEP_EVERY {
            assert!(store.try_lock_at(&format!("old{i}"), "a", Duration::from_secs(1), t0));
        }
        let later = t0 + Duration::from_secs(2);
        for i in 0..SWEEP_EVERY {
            assert!(store.try_lock_at(&format!("new{i}"), "b", TTL, later));
        }
        // The sweep at the 2048th lock dropped every expired hold and kept the live ones.
        let holds = store.holds();
        assert_eq!(holds.len(), SWEEP_EVERY as usize);
        assert!(holds.values().all(|h| h.owner == "b"));
    }

    #[tokio::test]
    async fn the_trait_uses_the_real_clock() {
        let store: Arc<dyn LockStore> = Arc::new(MemoryLockStore::new());
        assert!(store.try_lock("k", "a", TTL).await.expect("answer"));
        assert_eq!(
            store.unlock("k", "a").await.expect("answer"),
            UnlockStatus::Success
        );
    }
}
