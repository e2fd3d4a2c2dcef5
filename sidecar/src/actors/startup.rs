//! The actor runtime's background work: read the app's configuration (retried while the app
//! is not ready to say, unlike Dapr's single attempt, #6427), then run placement rounds,
//! hand-offs, the reminder scheduler and idle deactivation for the types the app hosts.

use super::config::ActorsConfig;
use super::metrics::{ShardChange, StatusReport};
use super::placement::{self, now_ms, records::HostRecord};
use super::{actor_store, calls, reminders};
use crate::blocks::Sidecar;
use crate::resiliency::Backoff;
use bytes::Bytes;
use http::{HeaderMap, Method};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CONFIG_BACKOFF: Backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
/// A 404 for `/dapr/config` is retried this long (routes still registering), then it means "no
/// actors"; other failures are retried this long before giving up.
const NOT_FOUND_GRACE: Duration = Duration::from_secs(3);
const FAILURE_GRACE: Duration = Duration::from_secs(30);
/// One request for the configuration gets this long.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);

/// Asks the app for its actor configuration until it answers.
async fn fetch_config(sc: &Sidecar) -> ActorsConfig {
    let started = Instant::now();
    let mut attempt = 0;
    let mut backoff = CONFIG_BACKOFF;
    loop {
        let answer = tokio::time::timeout(
            ATTEMPT_TIMEOUT,
            calls::to_app(
                sc,
                Method::GET,
                "/dapr/config",
                HeaderMap::new(),
                Bytes::new(),
            ),
        )
        .await;
        let grace = match &answer {
            Ok(Ok(a)) if a.status.is_success() => match ActorsConfig::parse(&a.body) {
                Ok(config) => return config,
                Err(e) => {
                    tracing::error!(error = %e, "the app's actor configuration is invalid; no actors are hosted");
                    return ActorsConfig::default();
                }
            },
            Ok(Ok(a)) if a.status == http::StatusCode::NOT_FOUND => NOT_FOUND_GRACE,
            _ => FAILURE_GRACE,
        };
        if attempt == 0 {
            // Readiness waits for the first answer only: most apps host no actors, and an app
            // that is slow to say keeps being asked in the background.
            sc.actor_runtime().mark_settled();
        }
        if started.elapsed() >= grace {
            return ActorsConfig::default();
        }
        if !backoff.sleep(sc.shutdown()).await {
            return ActorsConfig::default();
        }
        attempt += 1;
    }
}

pub async fn run(sc: Arc<Sidecar>) {
    if !crate::workers::wait_for_app(&sc).await {
        sc.actor_runtime().mark_settled();
        return;
    }
    let config = fetch_config(&sc).await;
    let types: Vec<String> = config.types.keys().cloned().collect();
    sc.actor_runtime().set_hosted(config);
    if types.is_empty() {
        sc.actor_runtime().mark_settled();
        return;
    }
    let store = match actor_store(&sc) {
        Ok(store) => store,
        Err(e) => {
            tracing::error!(error = %e.message, ?types, "the app hosts actors but there is no actor state store");
            sc.actor_runtime().mark_settled();
            return;
        }
    };
    tracing::info!(?types, address = %sc.actor_runtime().address(), "hosting actors");
    for actor_type in &types {
        sc.metrics().actors().hosting(actor_type);
    }
    tokio::spawn(reminders::run_scheduler(sc.clone()));
    tokio::spawn(deactivate_idle(sc.clone()));
    let me = HostRecord {
        address: sc.actor_runtime().address().to_owned(),
        app_id: sc.app_id().to_owned(),
        types: types.clone(),
        heartbeat_ms: 0,
    };
    let mut first = true;
    let mut app_health = sc.app_health();
    loop {
        // A host whose app fails its health checks takes no part in placement: no heartbeat and
        // no lease renewal, so its shards expire and go to healthy hosts (it stops using them
        // before they expire); it rejoins when the app is healthy again (dapr/dapr#1070).
        if !*app_health.borrow_and_update() {
            tracing::warn!("the app is unhealthy: not hosting actors until it recovers");
            tokio::select! {
                () = sc.shutdown().cancelled() => break,
                changed = app_health.changed() => if changed.is_err() { break },
            }
            continue;
        }
        let beat = HostRecord {
            heartbeat_ms: now_ms(),
            ..me.clone()
        };
        let round = sc.actor_runtime().rounds.lock().await;
        if sc.shutdown().is_cancelled() {
            break; // [`stop`] hands the shards off
        }
        let done = one_round(&sc, store.as_ref(), &beat, &types).await;
        drop(round);
        match done {
            Ok(()) if first => {
                first = false;
                sc.actor_runtime().mark_settled();
            }
            Ok(()) => {}
            Err(e) => tracing::warn!(error = %e, "placement round failed; retrying"),
        }
        if !placement::tick(sc.shutdown()).await {
            break;
        }
    }
}

async fn one_round(
    sc: &Arc<Sidecar>,
    store: &dyn crate::components::state::StateStore,
    me: &HostRecord,
    types: &[String],
) -> Result<(), crate::components::state::StoreError> {
    let metrics = sc.metrics().actors();
    let beat = placement::heartbeat(store, me).await;
    metrics.status_report(StatusReport::Heartbeat, beat.is_ok());
    beat?;
    let hosts = placement::hosts(store).await?;
    let rt = sc.actor_runtime();
    for actor_type in types {
        let outcome =
            placement::round(rt.placement(), store, &me.address, actor_type, &hosts).await;
        metrics.status_report(StatusReport::Leases, outcome.is_ok());
        let outcome = outcome?;
        let changes = outcome.acquired.len() + outcome.to_release.len() + outcome.lost.len();
        if changes > 0 {
            metrics.table_operation(actor_type);
            metrics.shards_changed(actor_type, ShardChange::Acquired, outcome.acquired.len());
            metrics.shards_changed(actor_type, ShardChange::Releasing, outcome.to_release.len());
            metrics.shards_changed(actor_type, ShardChange::Lost, outcome.lost.len());
            tracing::info!(actor_type = %actor_type, acquired = outcome.acquired.len(), releasing = outcome.to_release.len(), lost = outcome.lost.len(), "placement changed");
        }
        for shard in outcome.acquired {
            if let Err(e) = reminders::load_shard(sc, store, actor_type, shard).await {
                tracing::warn!(error = %e, shard, "cannot load the shard's reminders");
            }
        }
        for shard in outcome.lost {
            drop_shard(sc, actor_type, shard).await;
        }
        for shard in outcome.to_release {
            let (sc, actor_type) = (sc.clone(), actor_type.clone());
            tokio::spawn(async move {
                drop_shard(&sc, &actor_type, shard).await;
                if let Ok(store) = actor_store(&sc)
                    && let Err(e) = placement::release(
                        sc.actor_runtime().placement(),
                        store.as_ref(),
                        &actor_type,
                        shard,
                    )
                    .await
                {
                    tracing::warn!(error = %e, shard, "cannot release the shard; it expires instead");
                }
            });
        }
    }
    Ok(())
}

/// Stops everything of a shard here: its reminders, and its actors once their turns end.
async fn drop_shard(sc: &Arc<Sidecar>, actor_type: &str, shard: u32) {
    reminders::unload_shard(sc, actor_type, shard);
    let rt = sc.actor_runtime();
    let slots = rt
        .table()
        .select(|s| s.actor.actor_type == actor_type && s.actor.shard() == shard);
    let drain = rt
        .hosted()
        .and_then(|c| c.type_config(actor_type))
        .map(|c| c.drain_timeout)
        .unwrap_or(Duration::from_secs(60));
    let all = futures_util::future::join_all(slots.iter().map(|slot| async {
        calls::deactivate(sc, slot).await;
        sc.metrics().actors().rebalanced(actor_type);
    }));
    if tokio::time::timeout(drain, all).await.is_err() {
        tracing::warn!(
            actor_type,
            shard,
            "turns still running after drainOngoingCallTimeout; handing the shard off"
        );
    }
}

/// Deactivates actors idle for longer than their type's `actorIdleTimeout`.
async fn deactivate_idle(sc: Arc<Sidecar>) {
    loop {
        tokio::select! {
            _ = sc.shutdown().cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
        let rt = sc.actor_runtime();
        let Some(config) = rt.hosted() else { continue };
        let idle = rt.table().select(|s| {
            config
                .type_config(&s.actor.actor_type)
                .is_some_and(|c| s.idle_since().elapsed() > c.idle_timeout)
        });
        for slot in idle {
            let sc = sc.clone();
            tokio::spawn(async move { calls::deactivate(&sc, &slot).await });
        }
    }
}

/// At shutdown, while the API still serves (turns in progress call it): drain and deactivate
/// what is active and hand every shard back, so the next holders need not wait for the leases
/// to expire.
pub async fn stop(sc: &Arc<Sidecar>) {
    let Some(types) = sc
        .actor_runtime()
        .hosted()
        .map(|c| c.types.keys().cloned().collect::<Vec<_>>())
    else {
        return;
    };
    let Ok(store) = actor_store(sc) else { return };
    let store = store.as_ref();
    let _rounds = sc.actor_runtime().rounds.lock().await;
    let held: Vec<(String, u32)> = types
        .iter()
        .flat_map(|t| {
            sc.actor_runtime()
                .placement()
                .held(t)
                .into_iter()
                .map(move |s| (t.clone(), s))
        })
        .collect();
    for (actor_type, shard) in &held {
        sc.actor_runtime()
            .placement()
            .mark_draining(actor_type, *shard);
    }
    futures_util::future::join_all(held.iter().map(|(actor_type, shard)| async move {
        drop_shard(sc, actor_type, *shard).await;
        let _ = placement::release(sc.actor_runtime().placement(), store, actor_type, *shard).await;
    }))
    .await;
    let _ = store
        .delete(crate::components::state::DeleteRequest {
            key: super::keys::host_key(sc.actor_runtime().address()),
            etag: None,
            concurrency: crate::components::state::Concurrency::LastWrite,
        })
        .await;
}
