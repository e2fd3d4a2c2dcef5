//! Running the five controllers side by side until shutdown: readiness once every controller's
//! cache has synced, a graceful stop (in-flight reconciles finish) when `shutdown` is cancelled,
//! and an error if any controller stops on its own.

use super::{
    Context, Labelled, Reconciles, Scope, component, configuration, describe, subscription,
    validated, workload,
};
use crate::admin::Readiness;
use crate::cache::{Caches, Shared, ready, trim_service};
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use futures_util::future::{BoxFuture, FutureExt, join_all, select_all};
use futures_util::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Service;
use kube::runtime::controller::{self, Action};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use tandem_crds::{Component, Configuration, Subscription};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Reconciles in flight per controller: enough to keep the API server busy, few enough that a burst
/// (the first list of a large cluster) neither piles up memory nor delays a graceful stop.
const CONCURRENCY: u16 = 16;

/// Runs every controller over `scope` until `shutdown` is cancelled (then returns `Ok` once
/// in-flight reconciles have finished) or one of them stops by itself (an error). The dapr.io
/// kinds come from `caches` (kept current by their owner); the labelled Services and the workloads
/// are watched here, for as long as the controllers run.
pub async fn run(
    client: Client,
    scope: Scope,
    caches: &Caches,
    metrics: Arc<Metrics>,
    readiness: Readiness,
    reconciles: Reconciles,
    shutdown: CancellationToken,
) -> Result<()> {
    let (services_cache, services_feed) = Shared::start(
        scope.api::<Service>(&client),
        workload::labelled_services(),
        trim_service,
        None,
    );
    let services = services_cache.store();
    let ctx = Context::new(client.clone(), metrics)
        .with_reconciles(reconciles)
        .with_services(services.clone());
    let ctx = Arc::new(ctx);
    let services_feed =
        tokio::spawn(services_feed.instrument(tracing::info_span!("services_cache")));
    let components = component::controller(&client, &scope, &caches.components);
    let subscriptions = subscription::controller(&caches.subscriptions, &caches.components);
    let configurations = configuration::controller(&caches.configurations);
    let deployments = workload::controller::<Deployment>(&client, &scope, &services_cache);
    let statefulsets = workload::controller::<StatefulSet>(&client, &scope, &services_cache);

    let synced = {
        let stores = (
            components.store(),
            subscriptions.store(),
            configurations.store(),
            deployments.store(),
            statefulsets.store(),
        );
        async move {
            let (a, b, c, d, e, f) = tokio::join!(
                ready(&services),
                ready(&stores.0),
                ready(&stores.1),
                ready(&stores.2),
                ready(&stores.3),
                ready(&stores.4),
            );
            if a && b && c && d && e && f {
                tracing::info!("caches synced; ready");
                readiness.set_ready();
            }
        }
    };
    let synced = tokio::spawn(synced.instrument(tracing::info_span!("readiness")));

    let running: Vec<(&'static str, BoxFuture<'static, ()>)> = vec![
        drive(
            components,
            validated::reconcile::<Component>,
            &ctx,
            &shutdown,
        ),
        drive(
            subscriptions,
            validated::reconcile::<Subscription>,
            &ctx,
            &shutdown,
        ),
        drive(
            configurations,
            validated::reconcile::<Configuration>,
            &ctx,
            &shutdown,
        ),
        drive(
            deployments,
            workload::reconcile::<Deployment>,
            &ctx,
            &shutdown,
        ),
        drive(
            statefulsets,
            workload::reconcile::<StatefulSet>,
            &ctx,
            &shutdown,
        ),
    ];
    let (labels, futures): (Vec<_>, Vec<_>) = running.into_iter().unzip();
    let ((), first, others) = select_all(futures).await;
    let unexpected = !shutdown.is_cancelled();
    shutdown.cancel();
    join_all(others).await;
    synced.abort();
    services_feed.abort();
    if unexpected {
        return Err(Error::ControllerStopped(labels[first]));
    }
    tracing::info!("controllers stopped");
    Ok(())
}

/// A controller's run loop as one future, labelled by the reconciled kind.
fn drive<K, F, Fut>(
    controller: Controller<K>,
    reconcile: F,
    ctx: &Arc<Context>,
    shutdown: &CancellationToken,
) -> (&'static str, BoxFuture<'static, ()>)
where
    K: Labelled
        + Resource<DynamicType = ()>
        + Clone
        + Debug
        + DeserializeOwned
        + Send
        + Sync
        + 'static,
    F: FnMut(Arc<K>, Arc<Context>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Action>> + Send + 'static,
{
    let store = controller.store();
    let outcomes = controller
        .with_config(controller::Config::default().concurrency(CONCURRENCY))
        .graceful_shutdown_on(shutdown.clone().cancelled_owned())
        .run(reconcile, error_policy::<K>, Arc::clone(ctx));
    // kube-runtime holds a controller's reconciles until its cache has synced, and a graceful
    // stop before then waits for a sync that its stopped watch no longer feeds. Nothing can be in
    // flight yet, so such a stop drops the controller at once.
    let shutdown = shutdown.clone();
    let stopped_unsynced = async move {
        shutdown.cancelled().await;
        if matches!(store.wait_until_ready().now_or_never(), Some(Ok(()))) {
            std::future::pending::<()>().await;
        }
    };
    let running = async move {
        tokio::select! {
            () = log_outcomes(outcomes) => {}
            () = stopped_unsynced => tracing::debug!(kind = K::LABEL, "stopped before its cache synced"),
        }
    };
    (K::LABEL, running.boxed())
}

type Outcome<K> =
    std::result::Result<(ObjectRef<K>, Action), controller::Error<Error, watcher::Error>>;

async fn log_outcomes<K: Labelled + Resource>(outcomes: impl Stream<Item = Outcome<K>>) {
    outcomes
        .for_each(|outcome| {
            match outcome {
                Ok((object, _)) => tracing::trace!(kind = K::LABEL, %object, "reconciled"),
                // Counted and logged by `error_policy`.
                Err(controller::Error::ReconcilerFailed(..)) => {}
                Err(controller::Error::ObjectNotFound(object)) => {
                    tracing::debug!(kind = K::LABEL, %object, "gone before its reconcile")
                }
                Err(error) => tracing::warn!(kind = K::LABEL, %error, "watch error"),
            }
            std::future::ready(())
        })
        .await;
}

/// Retries a failed object after its own backoff and counts the error by kind.
fn error_policy<K: Labelled + Resource<DynamicType = ()>>(
    object: Arc<K>,
    error: &Error,
    ctx: Arc<Context>,
) -> Action {
    ctx.metrics.reconcile_failed(K::LABEL, error.kind());
    let delay = ctx.backoff.failed(&describe(object.as_ref()));
    tracing::warn!(object = %describe(object.as_ref()), %error, ?delay, "reconcile failed");
    Action::requeue(delay)
}

impl Context {
    /// Runs one reconcile of `object` (a `label` kind): counts and times it, and forgets the
    /// object's earlier failures when it succeeds. Every reconciler goes through here.
    pub(crate) async fn reconcile_measured<K: Resource<DynamicType = ()>>(
        &self,
        label: &str,
        object: &K,
        work: impl std::future::Future<Output = Result<Action>>,
    ) -> Result<Action> {
        let timer = self.metrics.reconcile_started(label);
        if self.reconciles == Reconciles::Noop {
            // `work` is never polled, so it reads and writes nothing.
            timer.observe_duration();
            return Ok(Action::await_change());
        }
        let result = work.await;
        timer.observe_duration();
        if result.is_ok() {
            self.backoff.succeeded(&describe(object));
        }
        result
    }
}
