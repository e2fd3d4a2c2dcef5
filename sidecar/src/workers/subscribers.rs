//! The running subscriptions, kept in line with what is wanted: the declarative Subscriptions of
//! the current component registry plus the app's programmatic ones (read once from
//! `GET /dapr/subscribe`). A subscription runs against one pubsub instance; when the wanted set
//! changes, or a pubsub component is replaced (Kubernetes mode: the operator sent a change), the
//! subscriptions that differ are stopped and started again on the current instance, the others
//! keep running untouched. Dapr reloads declarative subscriptions only with its hot-reload
//! preview feature; here it is always on.

use super::changes::{Changes, changes, instance_id};
use crate::blocks::Sidecar;
use crate::components::pubsub::PubSub;
use crate::pubsub::delivery;
use crate::pubsub::sink::AppSink;
use crate::pubsub::subscriptions::{Subscription, SubscriptionJson};
use std::sync::{Arc, OnceLock};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// How long readiness waits for the app's list of subscriptions.
const LIST_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// One running subscription.
struct Worker {
    wanted: SubscriptionJson,
    broker: Arc<dyn PubSub>,
    subscription: Arc<Subscription>,
    stop: CancellationToken,
}

/// The sidecar's subscription workers and the app's programmatic subscriptions.
pub struct Subscribers {
    sidecar: Arc<Sidecar>,
    deliveries: TaskTracker,
    /// The app's own subscriptions, read once when the app is first reachable; until then
    /// [`Subscribers::reconcile`] starts nothing, so nothing is delivered to an app that is not
    /// ready.
    programmatic: OnceLock<Vec<SubscriptionJson>>,
    workers: tokio::sync::Mutex<Vec<Worker>>,
}

impl Subscribers {
    pub fn new(sidecar: Arc<Sidecar>, deliveries: TaskTracker) -> Subscribers {
        Subscribers {
            sidecar,
            deliveries,
            programmatic: OnceLock::new(),
            workers: tokio::sync::Mutex::default(),
        }
    }

    /// Once the app is reachable and components have settled: asks the app for its
    /// subscriptions and starts delivering for them and the declarative ones.
    pub async fn start(&self) {
        let Some(app) = self.sidecar.app() else {
            return;
        };
        if !super::wait_for_app(&self.sidecar).await {
            return;
        }
        // An app that does not answer at all must not keep the sidecar from reporting ready
        // forever: after a while it does, and the answer is still taken when it comes.
        let discovery = app.subscriptions();
        tokio::pin!(discovery);
        let answer = tokio::select! {
            answer = &mut discovery => answer,
            _ = tokio::time::sleep(LIST_WAIT) => {
                tracing::warn!(?LIST_WAIT, "the app has not answered GET /dapr/subscribe; reporting ready without its subscriptions until it does");
                self.sidecar.mark_subscribed();
                discovery.await
            }
        };
        let programmatic = match answer {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, "reading the app's subscriptions failed");
                Vec::new()
            }
        };
        let _ = self.programmatic.set(programmatic);
        self.reconcile().await;
        self.sidecar.mark_subscribed();
    }

    /// Stops what is no longer wanted (or runs on a replaced pubsub) and starts what is new.
    pub async fn reconcile(&self) {
        let Some(programmatic) = self.programmatic.get() else {
            return;
        };
        let sc = &self.sidecar;
        let mut workers = self.workers.lock().await;
        let registry = sc.registry();
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
            let Some(deliveries) = delivery::subscribe(sc, &subscription).await else {
                continue;
            };
            let subscription = Arc::new(subscription);
            let stop = sc.shutdown().child_token();
            let span = tracing::info_span!("subscription", pubsub = %subscription.pubsub, topic = %subscription.topic);
            let (sc, sub, in_flight) = (sc.clone(), subscription.clone(), self.deliveries.clone());
            match subscription.bulk {
                Some(bulk) => tokio::spawn(
                    crate::pubsub::bulk::run(sc, sub, bulk, deliveries, stop.clone(), in_flight)
                        .instrument(span),
                ),
                None => {
                    let sink = Arc::new(AppSink(sc.clone()));
                    tokio::spawn(
                        delivery::run(sc, sink, sub, deliveries, stop.clone(), in_flight)
                            .instrument(span),
                    )
                }
            };
            workers.push(Worker {
                wanted: json,
                broker,
                subscription,
                stop,
            });
        }
        let listed = workers.iter().map(|w| w.subscription.clone()).collect();
        *sc.subscriptions()
            .write()
            .unwrap_or_else(|p| p.into_inner()) = listed;
    }
}
