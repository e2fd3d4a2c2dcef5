//! The standalone registry: one file per running sidecar in a shared directory,
//! `<app-id>.<pid>.json`, holding its internal address. The sidecar keeps an exclusive `flock` on
//! its file for as long as it lives; the kernel drops the lock when the process dies, however it
//! dies (`kill -9` included). A reader that can take the lock knows the owner is gone and removes
//! the file, so a dead sidecar's entry disappears at the next lookup.

use super::{ResolveError, Resolver};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::{File, TryLockError};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// What a registry file says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub app_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub address: SocketAddr,
    pub pid: u32,
}

/// This sidecar's own entry; removed (and unlocked) on drop.
#[derive(Debug)]
pub struct Registration {
    path: PathBuf,
    _lock: File,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Writes this sidecar's entry and holds its lock. The file is written and locked under a
/// temporary name and renamed into place, so no reader ever sees an unlocked live entry.
pub fn register(dir: &Path, entry: &Entry) -> std::io::Result<Registration> {
    std::fs::create_dir_all(dir)?;
    let name = format!("{}.{}.json", entry.app_id, entry.pid);
    let tmp = dir.join(format!(".{name}.tmp"));
    let file = File::create(&tmp)?;
    file.lock()?;
    serde_json::to_writer(&file, entry)?;
    file.sync_all()?;
    let path = dir.join(name);
    std::fs::rename(&tmp, &path)?;
    Ok(Registration { path, _lock: file })
}

/// Reads the live entries for an app id, removing the files of dead sidecars.
pub fn live_entries(dir: &Path, app_id: &str) -> std::io::Result<Vec<Entry>> {
    let prefix = format!("{app_id}.");
    let mut live = Vec::new();
    let listing = match std::fs::read_dir(dir) {
        Ok(listing) => listing,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(live),
        Err(e) => return Err(e),
    };
    for item in listing.flatten() {
        let name = item.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name.strip_prefix(&prefix) else {
            continue;
        };
        // `<pid>.json` only: an app id that merely starts with ours has more dots.
        let Some(pid) = rest.strip_suffix(".json") else {
            continue;
        };
        if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let path = item.path();
        let Ok(file) = File::open(&path) else {
            continue;
        };
        match file.try_lock_shared() {
            Ok(()) => {
                // Nobody holds the lock: the sidecar is gone.
                let _ = std::fs::remove_file(&path);
            }
            Err(TryLockError::WouldBlock) => {
                if let Ok(entry) = serde_json::from_reader::<_, Entry>(&file) {
                    live.push(entry);
                }
            }
            Err(TryLockError::Error(_)) => {}
        }
    }
    Ok(live)
}

/// How long a lookup is reused before the directory is read again.
const CACHE_TTL: Duration = Duration::from_secs(1);

/// The standalone resolver over a registry directory.
#[derive(Debug)]
pub struct LocalResolver {
    dir: PathBuf,
    own_namespace: Option<String>,
    cache: Mutex<HashMap<String, (Instant, Vec<SocketAddr>)>>,
    next: AtomicUsize,
}

impl LocalResolver {
    pub fn new(dir: PathBuf, own_namespace: Option<String>) -> Self {
        LocalResolver {
            dir,
            own_namespace,
            cache: Mutex::new(HashMap::new()),
            next: AtomicUsize::new(0),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Vec<SocketAddr>)>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn pick(&self, addrs: &[SocketAddr]) -> Option<SocketAddr> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        addrs.get(i % addrs.len().max(1)).copied()
    }
}

#[async_trait]
impl Resolver for LocalResolver {
    async fn resolve(
        &self,
        app_id: &str,
        namespace: Option<&str>,
    ) -> Result<SocketAddr, ResolveError> {
        let namespace = namespace
            .or(self.own_namespace.as_deref())
            .map(str::to_owned);
        let namespace_text = namespace.as_deref().unwrap_or("");
        let mut key = String::with_capacity(app_id.len() + 1 + namespace_text.len());
        key.push_str(app_id);
        key.push('.');
        key.push_str(namespace_text);
        let cached = self
            .cache()
            .get(&key)
            .filter(|(at, _)| at.elapsed() < CACHE_TTL)
            .and_then(|(_, addrs)| self.pick(addrs));
        if let Some(addr) = cached {
            return Ok(addr);
        }
        let (dir, id) = (self.dir.clone(), app_id.to_owned());
        let entries = tokio::task::spawn_blocking(move || live_entries(&dir, &id))
            .await
            .map_err(|e| ResolveError::Failed(e.to_string()))?
            .map_err(|e| ResolveError::Failed(e.to_string()))?;
        let addrs: Vec<SocketAddr> = entries
            .into_iter()
            .filter(|e| e.namespace == namespace)
            .map(|e| e.address)
            .collect();
        let picked = self
            .pick(&addrs)
            .ok_or_else(|| ResolveError::NotFound(app_id.to_owned()))?;
        self.cache().insert(key, (Instant::now(), addrs));
        Ok(picked)
    }

    fn forget(&self, app_id: &str, addr: SocketAddr) {
        let mut cache = self.cache();
        for (key, (_, addrs)) in cache.iter_mut() {
            if key.split('.').next() == Some(app_id) {
                addrs.retain(|a| *a != addr);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(app: &str, pid: u32, port: u16) -> Entry {
        Entry {
            app_id: app.into(),
            namespace: None,
            address: SocketAddr::from(([127, 0, 0, 1], port)),
            pid,
        }
    }

    #[test]
    fn live_entries_are_found_and_dropped_ones_vanish() {
        let dir = tempfile::tempdir().expect("tempdir");
        let reg = register(dir.path(), &entry("orders", 7, 5000)).expect("register");
        let _other = register(dir.path(), &entry("orders-v2", 8, 5001)).expect("register");
        let found = live_entries(dir.path(), "orders").expect("read");
        assert_eq!(found, vec![entry("orders", 7, 5000)]);
        drop(reg);
        assert!(live_entries(dir.path(), "orders").expect("read").is_empty());
    }

    #[test]
    fn an_unlocked_file_is_a_dead_sidecar_and_is_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ghost.42.json");
        std::fs::write(
            &path,
            serde_json::to_vec(&entry("ghost", 42, 1)).expect("json"),
        )
        .expect("write");
        assert!(live_entries(dir.path(), "ghost").expect("read").is_empty());
        assert!(!path.exists(), "stale entry must be removed");
    }

    #[tokio::test]
    async fn resolver_spreads_over_instances_and_forgets() {
        let dir = tempfile::tempdir().expect("tempdir");
        let _a = register(dir.path(), &entry("b", 1, 6001)).expect("register");
        let _b = register(dir.path(), &entry("b", 2, 6002)).expect("register");
        let r = LocalResolver::new(dir.path().to_path_buf(), None);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..4 {
            seen.insert(r.resolve("b", None).await.expect("resolves").port());
        }
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), vec![6001, 6002]);
        assert!(matches!(
            r.resolve("nobody", None).await,
            Err(ResolveError::NotFound(_))
        ));
    }
}
