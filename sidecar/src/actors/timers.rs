//! Timers: in memory on the host of the actor, stopped at deactivation, each callback inside the
//! actor's turn (`PUT /actors/{type}/{id}/method/timer/{name}`).

use super::callback::{self, Callback};
use super::schedule::parse_schedule;
use super::table::ActorRef;
use crate::blocks::Sidecar;
use crate::blocks::error::{BlockError, Code};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The body of `PUT /v1.0/actors/{type}/{id}/timers/{name}`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CreateTimer {
    pub due_time: String,
    pub period: String,
    pub ttl: String,
    pub callback: String,
    pub data: Option<Value>,
}

/// Starts (or replaces) a timer; runs on the host of the actor's shard.
pub fn create_here(
    sc: &Arc<Sidecar>,
    actor: &ActorRef,
    name: &str,
    body: CreateTimer,
) -> Result<(), BlockError> {
    super::check_name("timer name", name)?;
    let now = SystemTime::now();
    let schedule = parse_schedule(&body.due_time, &body.period, &body.ttl, now).map_err(|e| {
        BlockError::new(
            Code::ActorBadRequest,
            format!("error creating actor timer: {e}"),
        )
    })?;
    let rt = sc.actor_runtime();
    if rt
        .placement()
        .fence(rt.address(), &actor.actor_type, actor.shard())
        .is_none()
    {
        return Err(BlockError::new(Code::ActorMoved, "the actor's shard moved"));
    }
    let (slot, new) = rt.table().activate(actor);
    if new {
        sc.metrics().actors().activated(&actor.actor_type);
    }
    let payload = serde_json::json!({
        "callback": body.callback, "data": body.data, "dueTime": body.due_time, "period": body.period,
    })
    .to_string();
    let (sc2, actor2, name2) = (sc.clone(), actor.clone(), name.to_owned());
    let task = tokio::spawn(async move {
        let metrics = sc2.metrics().actors().clone();
        // Counted down however the task ends (done, cancelled, or aborted by delete/deactivation).
        let _running = Running::new(metrics.clone(), actor2.actor_type.clone());
        let mut due = schedule.first;
        let mut fired = 0u32;
        loop {
            let wait = due
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO);
            tokio::select! {
                _ = sc2.shutdown().cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
            }
            let answer = callback::call_app(
                &sc2,
                &actor2,
                Callback::Timer,
                &name2,
                Bytes::from(payload.clone()),
            )
            .await;
            metrics.timer_fired(
                &actor2.actor_type,
                matches!(&answer, Ok(a) if a.status.is_success()),
            );
            fired += 1;
            let cancel = matches!(&answer, Ok(a) if a.headers.get("x-daprremindercancel").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true")));
            if matches!(&answer, Err(e) if e.code == Code::ActorMoved) || cancel {
                break;
            }
            match schedule.next(due, fired) {
                Some(next) => due = next,
                None => break,
            }
        }
    });
    slot.set_timer(name, task.abort_handle());
    Ok(())
}

/// The `dapr_runtime_actor_timers` gauge for one running timer.
struct Running(crate::actors::metrics::ActorMetrics, String);

impl Running {
    fn new(metrics: crate::actors::metrics::ActorMetrics, actor_type: String) -> Running {
        metrics.timers_running(&actor_type, 1);
        Running(metrics, actor_type)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.timers_running(&self.1, -1);
    }
}

/// Stops a timer (a missing timer is not an error, as in Dapr).
pub fn delete_here(sc: &Sidecar, actor: &ActorRef, name: &str) -> Result<(), BlockError> {
    super::check_name("timer name", name)?;
    if let Some(slot) = sc.actor_runtime().table().get(actor) {
        slot.remove_timer(name);
    }
    Ok(())
}
