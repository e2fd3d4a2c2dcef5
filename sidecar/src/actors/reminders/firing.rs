//! Firing: the scheduler takes due reminders from the index, calls the app inside the actor's
//! turn, and moves each record to its next due time (or deletes it), conditional on the record's
//! ETag and the shard's fence. Shards taken or given up load or drop their reminders here.

use super::{ReminderRecord, ms_to_time, time_to_ms};
use crate::actors::callback::{self, Callback};
use crate::actors::placement::now_ms;
use crate::actors::table::ActorRef;
use crate::actors::{actor_store, keys};
use crate::blocks::Sidecar;
use crate::components::state::{
    CheckRequest, Concurrency, DeleteRequest, SetRequest, StateStore, StoreError, TxOperation,
};
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;

/// Loads the reminders of a shard this host just took into the index.
pub async fn load_shard(
    sc: &Sidecar,
    store: &dyn StateStore,
    actor_type: &str,
    shard: u32,
) -> Result<usize, StoreError> {
    let items =
        crate::actors::placement::scan_all(store, &keys::reminder_shard_prefix(actor_type, shard))
            .await?;
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

/// Fires due reminders until the sidecar stops. At most `PARALLEL` callbacks run at once, and
/// the scheduler takes from the index only as many as can start: the rest wait there, not as
/// parked tasks (100 000 due at once are 64 tasks, not 100 000).
pub async fn run_scheduler(sc: Arc<Sidecar>) {
    const PARALLEL: usize = 64;
    let permits = Arc::new(tokio::sync::Semaphore::new(PARALLEL));
    loop {
        let first = tokio::select! {
            _ = sc.shutdown().cancelled() => return,
            permit = permits.clone().acquire_owned() => permit,
        };
        let Ok(first) = first else { return };
        let mut slots = vec![first];
        while let Ok(permit) = permits.clone().try_acquire_owned() {
            slots.push(permit);
        }
        let (due, wait) = sc
            .actor_runtime()
            .reminders()
            .take_due(now_ms(), slots.len());
        let all_slots_used = due.len() == slots.len();
        for (key, permit) in due.into_iter().zip(slots.drain(..)) {
            let sc = sc.clone();
            tokio::spawn(async move {
                fire(&sc, key).await;
                drop(permit);
            });
        }
        drop(slots); // the ones not needed go back
        if all_slots_used && wait == Some(0) {
            continue; // more are due: take them as callbacks finish
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
    let answer = callback::call_app(
        sc,
        &actor,
        Callback::Reminder,
        &record.name,
        Bytes::from(body.to_string()),
    )
    .await;
    sc.metrics().actors().reminder_fired(
        &actor.actor_type,
        matches!(&answer, Ok(a) if a.status.is_success()),
    );
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
