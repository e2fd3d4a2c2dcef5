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

/// What to do with the running workers, given what is wanted and the current brokers.
#[derive(Debug, PartialEq)]
pub struct Changes {
    /// Indexes of running workers to stop.
    pub stop: Vec<usize>,
    /// Indexes of wanted subscriptions to start.
    pub start: Vec<usize>,
}

/// Pure decision: a worker is kept when the same subscription is still wanted on the same broker
/// instance (pointer identity); everything else running is stopped and everything else wanted
/// is started.
pub fn changes(
    running: &[(&SubscriptionJson, usize)],
    wanted: &[(&SubscriptionJson, Option<usize>)],
) -> Changes {
    let mut kept = vec![false; running.len()];
    let mut start = Vec::new();
    for (index, (json, broker)) in wanted.iter().enumerate() {
        let same = running
            .iter()
            .enumerate()
            .find(|(i, (r, b))| !kept[*i] && r == json && Some(*b) == *broker);
        match same {
            Some((i, _)) => kept[i] = true,
            None => start.push(index),
        }
    }
    let stop = (0..running.len()).filter(|i| !kept[*i]).collect();
    Changes { stop, start }
}

fn broker_id(broker: &Arc<dyn PubSub>) -> usize {
    Arc::as_ptr(broker).cast::<()>() as usize
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
        .map(|w| (&w.wanted, broker_id(&w.broker)))
        .collect();
    let wanted_ids: Vec<(&SubscriptionJson, Option<usize>)> = wanted
        .iter()
        .zip(&brokers)
        .map(|(json, broker)| (json, broker.as_ref().map(broker_id)))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(topic: &str) -> SubscriptionJson {
        SubscriptionJson {
            pubsubname: "pubsub".into(),
            topic: topic.into(),
            route: Some(format!("/{topic}")),
            routes: None,
            metadata: None,
            dead_letter_topic: None,
        }
    }

    #[test]
    fn the_same_subscription_on_the_same_broker_keeps_running() {
        let (a, b) = (sub("a"), sub("b"));
        let changes = changes(&[(&a, 1), (&b, 1)], &[(&a, Some(1)), (&b, Some(1))]);
        assert_eq!(
            changes,
            Changes {
                stop: vec![],
                start: vec![]
            }
        );
    }

    #[test]
    fn a_replaced_broker_restarts_its_subscriptions_only() {
        let (a, b) = (sub("a"), sub("b"));
        let changes = changes(&[(&a, 1), (&b, 2)], &[(&a, Some(1)), (&b, Some(3))]);
        assert_eq!(
            changes,
            Changes {
                stop: vec![1],
                start: vec![1]
            }
        );
    }

    #[test]
    fn removed_and_added_and_edited_subscriptions() {
        let (a, b, c) = (sub("a"), sub("b"), sub("c"));
        let mut a_edited = sub("a");
        a_edited.route = Some("/elsewhere".into());
        let changes = changes(&[(&a, 1), (&b, 1)], &[(&a_edited, Some(1)), (&c, Some(1))]);
        assert_eq!(
            changes,
            Changes {
                stop: vec![0, 1],
                start: vec![0, 1]
            }
        );
    }

    #[test]
    fn a_wanted_subscription_without_its_pubsub_is_tried_and_nothing_is_kept_for_it() {
        let a = sub("a");
        let changes = changes(&[(&a, 1)], &[(&a, None)]);
        assert_eq!(
            changes,
            Changes {
                stop: vec![0],
                start: vec![0]
            }
        );
    }
}
