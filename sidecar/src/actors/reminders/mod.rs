//! Reminders: one record per reminder in the actor state store, under its actor's shard, fired
//! by the host that holds the shard. Each host keeps in memory only an index of the reminders of
//! the shards it holds (record key → next due time); payloads are read when a reminder fires.
//! Every record update is conditional on the record's ETag and on the shard's fence.

mod firing;
mod index;

pub use firing::{load_shard, run_scheduler, unload_shard};
pub use index::ReminderIndex;

use super::placement::now_ms;
use super::schedule::{Schedule, parse_schedule};
use super::table::ActorRef;
use super::{actor_store, keys};
use crate::blocks::Sidecar;
use crate::blocks::error::{BlockError, Code};
use crate::components::state::{
    CheckRequest, Concurrency, DeleteRequest, SetRequest, StoreError, TxOperation,
};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;
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

/// The record prefixes that hold an actor type's reminders, or one actor's.
fn prefixes(actor_type: &str, actor_id: Option<&str>) -> Vec<String> {
    match actor_id {
        Some(id) => vec![keys::reminder_actor_prefix(actor_type, id)],
        None => (0..keys::SHARDS)
            .map(|shard| keys::reminder_shard_prefix(actor_type, shard))
            .collect(),
    }
}

/// Every reminder of an actor type, or of one actor of it (any host), with its record key.
pub async fn list(
    sc: &Sidecar,
    actor_type: &str,
    actor_id: Option<&str>,
) -> Result<Vec<(String, ReminderRecord)>, BlockError> {
    super::check_name("actor type", actor_type)?;
    if let Some(id) = actor_id {
        super::check_name("actor id", id)?;
    }
    let store = actor_store(sc)?;
    let mut out = Vec::new();
    for prefix in prefixes(actor_type, actor_id) {
        let items = super::placement::scan_all(store.as_ref(), &prefix)
            .await
            .map_err(|e| {
                BlockError::new(
                    Code::ActorReminderGet,
                    format!("error listing actor reminders: {e}"),
                )
            })?;
        out.extend(items.into_iter().filter_map(|(key, item)| {
            serde_json::from_slice::<ReminderRecord>(&item.data)
                .ok()
                .map(|record| (key, record))
        }));
    }
    out.sort_by(|a, b| (&a.1.actor_id, &a.1.name).cmp(&(&b.1.actor_id, &b.1.name)));
    Ok(out)
}

/// Deletes every reminder of an actor type, or of one actor of it (any host); how many.
pub async fn delete_all(
    sc: &Sidecar,
    actor_type: &str,
    actor_id: Option<&str>,
) -> Result<usize, BlockError> {
    let records = list(sc, actor_type, actor_id).await?;
    for (_, record) in &records {
        delete(
            sc,
            &ActorRef::new(&record.actor_type, &record.actor_id),
            &record.name,
        )
        .await?;
    }
    Ok(records.len())
}
