//! The running subscriptions, kept in line with what is wanted: the declarative Subscriptions of
//! the current component registry plus the app's programmatic ones (read once from
//! `GET /dapr/subscribe`). A subscription runs against one pubsub instance; when the wanted set
//! changes, or a pubsub component is replaced (Kubernetes mode: the operator sent a change), the
//! subscriptions that differ are stopped and started again on the current instance, the others
//! keep running untouched. Dapr reloads declarative subscriptions only with its hot-reload
//! preview feature; here it is always on.

use super::delivery;
use super::subscriptions::{Subscription, SubscriptionJson};
use crate::components::pubsub::PubSub;
use crate::live_workers::{Changes, changes, instance_id};
use crate::runtime::SharedRuntime;
use std::sync::{Arc, OnceLock};
use tokio_util::sync::CancellationToken;

/// One running subscription.
struct Worker {
    wanted: SubscriptionJson,
    broker: Arc<dyn PubSub>,
    subscription: Arc<Subscription>,
    stop: CancellationToken,
}

/// The sidecar's subscription workers and the app's programmatic subscriptions.
#[derive(Default)]
pub struct Subscribers {
    programmatic: OnceLock<Vec<SubscriptionJson>>,
    workers: tokio::sync::Mutex<Vec<Worker>>,
}

impl Subscribers {
    /// Records the app's own subscriptions (once, when the app is first reachable); until then
    /// [`reconcile`] starts nothing, so nothing is delivered to an app that is not ready.
    pub fn set_programmatic(&self, subscriptions: Vec<SubscriptionJson>) {
        let _ = self.programmatic.set(subscriptions);
    }
}

/// Stops what is no longer wanted (or runs on a replaced pubsub) and starts what is new.
pub async fn reconcile(rt: &SharedRuntime) {
    let Some(programmatic) = rt.subscribers.programmatic.get() else {
        return;
    };
    let mut workers = rt.subscribers.workers.lock().await;
    let registry = rt.registry();
    let mut wanted: Vec<SubscriptionJson> = registry
        .declared_subscriptions()
        .iter()
        .map(SubscriptionJson::from)
        .collect();
    wanted.extend(programmatic.iter().cloned());
    let brokers: Vec<Option<Arc<dyn PubSub>>> = wanted
        .iter()
        .map(|json| {
            registry
                .pubsub(&json.pubsubname)
                .ok()
                .map(|(_, b)| b.clone())
        })
        .collect();
    let running: Vec<(&SubscriptionJson, usize)> = workers
        .iter()
        .map(|w| (&w.wanted, instance_id(&w.broker)))
        .collect();
    let wanted_ids: Vec<(&SubscriptionJson, Option<usize>)> = wanted
        .iter()
        .zip(&brokers)
        .map(|(json, broker)| (json, broker.as_ref().map(instance_id)))
        .collect();
    let Changes { stop, start } = changes(&running, &wanted_ids);
    for index in stop.iter().rev() {
        let worker = workers.remove(*index);
        worker.stop.cancel();
        tracing::info!(pubsub = %worker.subscription.pubsub, topic = %worker.subscription.topic, "unsubscribed");
    }
    for index in start {
        let (json, broker) = (wanted[index].clone(), brokers[index].clone());
        let Some(broker) = broker else {
            tracing::error!(pubsub = %json.pubsubname, topic = %json.topic, "subscription not started: pubsub unavailable");
            continue;
        };
        let subscription = match Subscription::try_from(json.clone()) {
            Ok(subscription) => subscription,
            Err(e) => {
                tracing::error!(error = %e, "subscription refused");
                continue;
            }
        };
        // Listed only once the broker has the subscription: what is published after the app
        // sees it in /v1.0/metadata reaches it.
        let Some(deliveries) = delivery::subscribe(rt, &subscription).await else {
            continue;
        };
        let subscription = Arc::new(subscription);
        let stop = rt.shutdown.child_token();
        tokio::spawn(delivery::run(
            rt.clone(),
            subscription.clone(),
            deliveries,
            stop.clone(),
        ));
        workers.push(Worker {
            wanted: json,
            broker,
            subscription,
            stop,
        });
    }
    let listed = workers.iter().map(|w| w.subscription.clone()).collect();
    *rt.subscriptions.write().unwrap_or_else(|p| p.into_inner()) = listed;
}
