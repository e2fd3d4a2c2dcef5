//! Reminders: one record per reminder in the actor state store, under its actor's shard, fired
//! by the host that holds the shard. Each host keeps in memory only an index of the reminders of
//! the shards it holds (record key → next due time); payloads are read when a reminder fires.
//! Every record update is conditional on the record's ETag and on the shard's fence.

use super::calls::{self, AppAnswer};
use super::placement::now_ms;
use super::schedule::{Schedule, parse_schedule};
use super::table::ActorRef;
use super::{actor_store, keys};
use crate::blocks::Sidecar;
use crate::blocks::error::{BlockError, Code};
use crate::components::state::{
    CheckRequest, Concurrency, DeleteRequest, SetRequest, StateStore, StoreError, TxOperation,
};
use bytes::Bytes;
use http::{HeaderMap, Method};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The body of `PUT /v1.0/actors/{type}/{id}/reminders/{name}`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CreateReminder {
    pub due_time: String,
    pub period: String,
    pub ttl: String,
    pub data: Option<Value>,
    pub overwrite: Option<bool>,
}

/// A reminder as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReminderRecord {
    pub actor_type: String,
    pub actor_id: String,
    pub name: String,
    #[serde(default)]
    pub data: Option<Value>,
    pub due_time: String,
    pub period: String,
    pub ttl: String,
    pub registered_ms: u64,
    pub next_ms: u64,
    pub fired: u32,
}

fn ms_to_time(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

fn time_to_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl ReminderRecord {
    pub fn schedule(&self) -> Option<Schedule> {
        parse_schedule(
            &self.due_time,
            &self.period,
            &self.ttl,
            ms_to_time(self.registered_ms),
        )
        .ok()
    }

    /// Dapr's answer to `GET .../reminders/{name}` (empty fields left out).
    pub fn to_json(&self) -> Value {
        let mut out = serde_json::Map::new();
        out.insert("actorID".into(), self.actor_id.clone().into());
        out.insert("actorType".into(), self.actor_type.clone().into());
        if let Some(data) = &self.data {
            out.insert("data".into(), data.clone());
        }
        for (k, v) in [
            ("dueTime", &self.due_time),
            ("period", &self.period),
            ("ttl", &self.ttl),
        ] {
            if !v.is_empty() {
                out.insert(k.into(), v.clone().into());
            }
        }
        Value::Object(out)
    }
}

/// The index of the reminders this host fires: due time per record key.
#[derive(Debug, Default)]
pub struct ReminderIndex {
    inner: Mutex<IndexInner>,
    wake: tokio::sync::Notify,
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
    fn take_due(&self, now: u64, max: usize) -> (Vec<String>, Option<u64>) {
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

fn create_error(e: impl std::fmt::Display) -> BlockError {
    BlockError::new(
        Code::ActorReminderCreate,
        format!("error creating actor reminder: {e}"),
    )
}

/// Registers a reminder; runs on the host of the actor's shard.
pub async fn create_here(
    sc: &Sidecar,
    actor: &ActorRef,
    name: &str,
    body: CreateReminder,
) -> Result<(), BlockError> {
    super::check_name("reminder name", name)?;
    let store = actor_store(sc)?;
    let now = now_ms();
    let schedule = parse_schedule(&body.due_time, &body.period, &body.ttl, ms_to_time(now))
        .map_err(|e| {
            BlockError::new(
                Code::ActorBadRequest,
                format!("error creating actor reminder: {e}"),
            )
        })?;
    let record = ReminderRecord {
        actor_type: actor.actor_type.clone(),
        actor_id: actor.actor_id.clone(),
        name: name.to_owned(),
        data: body.data,
        due_time: body.due_time,
        period: body.period,
        ttl: body.ttl,
        registered_ms: now,
        next_ms: time_to_ms(schedule.first),
        fired: 0,
    };
    let key = keys::reminder_key(&actor.actor_type, &actor.actor_id, name);
    let rt = sc.actor_runtime();
    let Some((fence_key, fence_etag)) =
        rt.placement()
            .fence(rt.address(), &actor.actor_type, actor.shard())
    else {
        return Err(BlockError::new(Code::ActorMoved, "the actor's shard moved"));
    };
    let concurrency = match body.overwrite {
        Some(false) => Concurrency::FirstWrite,
        _ => Concurrency::LastWrite,
    };
    let value = serde_json::to_vec(&record).map_err(create_error)?;
    let written = store
        .transact(vec![
            TxOperation::Upsert(SetRequest {
                key: key.clone(),
                value: Bytes::from(value),
                etag: None,
                concurrency,
                ttl: None,
            }),
            TxOperation::Check(CheckRequest {
                key: fence_key,
                etag: fence_etag,
            }),
        ])
        .await;
    match written {
        Ok(()) => {}
        Err(StoreError::EtagMismatch(_)) if concurrency == Concurrency::FirstWrite => {
            let exists = store.get(&key).await.map_err(create_error)?.is_some();
            return Err(if exists {
                BlockError::new(
                    Code::ActorReminderAlreadyExists,
                    format!("reminder {name} already exists"),
                )
            } else {
                BlockError::new(Code::ActorMoved, "the actor's shard moved")
            });
        }
        Err(StoreError::EtagMismatch(_)) => {
            return Err(BlockError::new(Code::ActorMoved, "the actor's shard moved"));
        }
        Err(e) => return Err(create_error(e)),
    }
    if rt.reminders().schedule(key, record.next_ms) {
        sc.metrics()
            .actors()
            .reminders_scheduled(&actor.actor_type, 1);
    }
    Ok(())
}

/// Reads a reminder (any host).
pub async fn get(sc: &Sidecar, actor: &ActorRef, name: &str) -> Result<ReminderRecord, BlockError> {
    let store = actor_store(sc)?;
    let key = keys::reminder_key(&actor.actor_type, &actor.actor_id, name);
    let item = store.get(&key).await.map_err(|e| {
        BlockError::new(
            Code::ActorReminderGet,
            format!("error getting actor reminder: {e}"),
        )
    })?;
    item.and_then(|i| serde_json::from_slice(&i.data).ok())
        .ok_or_else(|| {
            BlockError::new(
                Code::ActorReminderNotFound,
                format!(
                    "reminder {name} not found for actor {}/{}",
                    actor.actor_type, actor.actor_id
                ),
            )
        })
}

/// Deletes a reminder (any host: the holder of the shard finds it gone when it is due).
pub async fn delete(sc: &Sidecar, actor: &ActorRef, name: &str) -> Result<(), BlockError> {
    let store = actor_store(sc)?;
    let key = keys::reminder_key(&actor.actor_type, &actor.actor_id, name);
    store
        .delete(DeleteRequest {
            key: key.clone(),
            etag: None,
            concurrency: Concurrency::LastWrite,
        })
        .await
        .map_err(|e| {
            BlockError::new(
                Code::ActorReminderDelete,
                format!("error deleting actor reminder: {e}"),
            )
        })?;
    let rt = sc.actor_runtime();
    if rt.reminders().unschedule(&key) {
        sc.metrics()
            .actors()
            .reminders_scheduled(&actor.actor_type, -1);
    }
    Ok(())
}

/// Loads the reminders of a shard this host just took into the index.
pub async fn load_shard(
    sc: &Sidecar,
    store: &dyn StateStore,
    actor_type: &str,
    shard: u32,
) -> Result<usize, StoreError> {
    let items =
        super::placement::scan_all(store, &keys::reminder_shard_prefix(actor_type, shard)).await?;
    let rt = sc.actor_runtime();
    let mut loaded = 0;
    for (key, item) in items {
        if let Ok(record) = serde_json::from_slice::<ReminderRecord>(&item.data) {
            rt.reminders().schedule(key, record.next_ms);
            loaded += 1;
        }
    }
    sc.metrics()
        .actors()
        .reminders_scheduled(actor_type, i64::try_from(loaded).unwrap_or(0));
    Ok(loaded)
}

/// Forgets the reminders of a shard this host gave up.
pub fn unload_shard(sc: &Sidecar, actor_type: &str, shard: u32) {
    let gone = sc
        .actor_runtime()
        .reminders()
        .unschedule_prefix(&keys::reminder_shard_prefix(actor_type, shard));
    sc.metrics()
        .actors()
        .reminders_scheduled(actor_type, -i64::try_from(gone).unwrap_or(0));
}

/// Fires due reminders until the sidecar stops. At most `PARALLEL` callbacks run at once.
pub async fn run_scheduler(sc: Arc<Sidecar>) {
    const PARALLEL: usize = 64;
    let permits = Arc::new(tokio::sync::Semaphore::new(PARALLEL));
    loop {
        let (due, wait) = sc.actor_runtime().reminders().take_due(now_ms(), PARALLEL);
        for key in due {
            let (sc, permits) = (sc.clone(), permits.clone());
            tokio::spawn(async move {
                let Ok(_permit) = permits.acquire_owned().await else {
                    return;
                };
                fire(&sc, key).await;
            });
        }
        let wait = Duration::from_millis(wait.unwrap_or(1_000).clamp(1, 1_000));
        tokio::select! {
            _ = sc.shutdown().cancelled() => return,
            _ = sc.actor_runtime().reminders().wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Fires one reminder: reads it, calls the app inside the actor's turn, then moves the record
/// to its next due time (or deletes it), conditional on the record and the shard's fence.
async fn fire(sc: &Sidecar, key: String) {
    let Ok(store) = actor_store(sc) else { return };
    let Ok(Some(item)) = store.get(&key).await else {
        return; // deleted meanwhile
    };
    let Ok(record) = serde_json::from_slice::<ReminderRecord>(&item.data) else {
        return;
    };
    let rt = sc.actor_runtime();
    let actor = ActorRef::new(&record.actor_type, &record.actor_id);
    if rt
        .placement()
        .fence(rt.address(), &actor.actor_type, actor.shard())
        .is_none()
    {
        return; // the shard moved; its new holder loaded the reminder
    }
    let now = now_ms();
    if record.next_ms > now + 20 {
        rt.reminders().schedule(key, record.next_ms); // overwritten with a later time
        return;
    }
    let body = serde_json::json!({"data": record.data, "dueTime": record.due_time, "period": record.period});
    let path = format!(
        "/actors/{}/{}/method/remind/{}",
        actor.actor_type, actor.actor_id, record.name
    );
    let answer: Result<AppAnswer, BlockError> = async {
        let turn = calls::turn(sc, &actor, None).await?;
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        let answer = calls::to_app(
            sc,
            Method::PUT,
            &path,
            headers,
            Bytes::from(body.to_string()),
        )
        .await;
        drop(turn);
        answer
    }
    .await;
    sc.metrics().actors().reminder_fired(&actor.actor_type);
    let cancel = matches!(&answer, Ok(a) if a.headers.get("x-daprremindercancel").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true")));
    let next = match &answer {
        Ok(a) if a.status.is_success() && !cancel => record
            .schedule()
            .and_then(|s| s.next(ms_to_time(record.next_ms), record.fired + 1))
            .map(time_to_ms),
        Ok(_) if cancel => None,
        // The app failed or could not be reached: try again shortly (at-least-once).
        _ => {
            tracing::warn!(reminder = %key, "the reminder callback failed; retrying in 1 s");
            rt.reminders().schedule(key, now_ms() + 1_000);
            return;
        }
    };
    let Some((fence_key, fence_etag)) =
        rt.placement()
            .fence(rt.address(), &actor.actor_type, actor.shard())
    else {
        return;
    };
    let check = TxOperation::Check(CheckRequest {
        key: fence_key,
        etag: fence_etag,
    });
    let update = match next {
        Some(next_ms) => {
            let updated = ReminderRecord {
                next_ms,
                fired: record.fired + 1,
                ..record.clone()
            };
            let Ok(value) = serde_json::to_vec(&updated) else {
                return;
            };
            TxOperation::Upsert(SetRequest {
                key: key.clone(),
                value: Bytes::from(value),
                etag: item.etag.clone(),
                concurrency: Concurrency::LastWrite,
                ttl: None,
            })
        }
        None => TxOperation::Delete(DeleteRequest {
            key: key.clone(),
            etag: item.etag.clone(),
            concurrency: Concurrency::LastWrite,
        }),
    };
    match store.transact(vec![update, check]).await {
        Ok(()) => match next {
            Some(next_ms) => {
                rt.reminders().schedule(key, next_ms);
            }
            None => sc
                .metrics()
                .actors()
                .reminders_scheduled(&actor.actor_type, -1),
        },
        // Changed meanwhile (re-registered, deleted) or the shard moved: read it again.
        Err(StoreError::EtagMismatch(_)) => {
            rt.reminders().schedule(key, now_ms());
        }
        Err(e) => {
            tracing::warn!(reminder = %key, error = %e, "cannot record the reminder's firing; retrying");
            rt.reminders().schedule(key, now_ms() + 1_000);
        }
    }
}
