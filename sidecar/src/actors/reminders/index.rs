//! The index of the reminders this host fires: record key → next due time, for the shards it
//! holds. Payloads stay in the store; the scheduler takes what is due from here.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

/// The index of the reminders this host fires: due time per record key.
#[derive(Debug, Default)]
pub struct ReminderIndex {
    inner: Mutex<IndexInner>,
    pub(super) wake: tokio::sync::Notify,
}

#[derive(Debug, Default)]
struct IndexInner {
    due: BTreeSet<(u64, String)>,
    by_key: HashMap<String, u64>,
}

impl ReminderIndex {
    fn lock(&self) -> std::sync::MutexGuard<'_, IndexInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Puts a reminder at `due_ms`; true when the index did not hold it.
    pub fn schedule(&self, key: String, due_ms: u64) -> bool {
        let mut inner = self.lock();
        let old = inner.by_key.insert(key.clone(), due_ms);
        if let Some(old) = old {
            inner.due.remove(&(old, key.clone()));
        }
        inner.due.insert((due_ms, key));
        drop(inner);
        self.wake.notify_one();
        old.is_none()
    }

    /// Takes a reminder out; true when the index held it.
    pub fn unschedule(&self, key: &str) -> bool {
        let mut inner = self.lock();
        let old = inner.by_key.remove(key);
        if let Some(old) = old {
            inner.due.remove(&(old, key.to_owned()));
        }
        old.is_some()
    }

    /// Drops every reminder under `prefix` (a shard that moved away).
    pub fn unschedule_prefix(&self, prefix: &str) -> usize {
        let mut inner = self.lock();
        let gone: Vec<String> = inner
            .by_key
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect();
        for key in &gone {
            if let Some(due) = inner.by_key.remove(key) {
                inner.due.remove(&(due, key.clone()));
            }
        }
        gone.len()
    }

    pub fn len(&self) -> usize {
        self.lock().by_key.len()
    }

    /// Takes the reminders due at `now`, or says how long until the next one.
    pub(super) fn take_due(&self, now: u64, max: usize) -> (Vec<String>, Option<u64>) {
        let mut inner = self.lock();
        let mut out = Vec::new();
        while out.len() < max {
            let Some((due, key)) = inner.due.first().cloned() else {
                break;
            };
            if due > now {
                return (out, Some(due - now));
            }
            inner.due.pop_first();
            inner.by_key.remove(&key);
            out.push(key);
        }
        let wait = inner.due.first().map(|(due, _)| due.saturating_sub(now));
        (out, wait)
    }
}
