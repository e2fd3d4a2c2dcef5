//! The task behind an [`MqttClient`](super::client::MqttClient): connect, poll the event loop
//! continuously, hand incoming messages to their topic's subscriber, and on failure back off and
//! start over with a fresh event loop (a new [`Session`]), subscribing again to every topic.
//!
//! Back-pressure cannot reach this loop the way it reaches a Redis reader: the event loop must
//! keep being polled (pings, acks, publishes of the same connection), so it never waits for a
//! subscriber. Messages are bounded by the broker instead. They are acked manually, only once the
//! runtime is done with them, and a broker sends a client at most its in-flight window of
//! unacknowledged QoS 1/2 messages (mosquitto's `max_inflight_messages`, 20 by default; MQTT
//! 3.1.1 has no receive maximum for the client to ask for one, and rumqttc's `inflight` bounds
//! only our own publishes). So a slow app stops the flow at the broker, and a topic's route
//! ([`ROUTE_BUFFER`] deep) never fills. If it does (a broker with an unlimited window, or QoS 0),
//! the message is left unacknowledged, as for a topic nobody has subscribed to: the broker sends
//! it again on the next connection of a persistent session (QoS 0 promises nothing).

use super::client::{Inbound, Receipt};
use super::topic_filter::subscription_for;
use super::tracker::Tracker;
use crate::resiliency::Backoff;
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, Publish, QoS};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Requests queued to the event loop before `publish` waits.
const REQUEST_CAPACITY: usize = 1024;
const CONNECT_TIMEOUT_SECS: u64 = 5;
/// The pause before reconnecting.
const RECONNECT: Backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
/// A connection that lasted this long resets the reconnect back-off.
const STABLE: Duration = Duration::from_secs(5);
pub(super) const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Messages kept for topics nobody has subscribed to yet (a resumed session delivers those
/// before `subscribe` is called); beyond this they are left unacknowledged.
const HELD_MAX: usize = 1000;
/// Messages a topic's route holds for its subscriber; beyond this they are left unacknowledged.
/// As deep as the held messages, which a new route takes over at once.
pub(super) const ROUTE_BUFFER: usize = HELD_MAX;

/// One connection: a fresh rumqttc client and event loop, and the waiters on it.
pub(super) struct Session {
    pub(super) generation: u64,
    pub(super) client: AsyncClient,
    pub(super) tracker: Mutex<Tracker>,
}

impl Session {
    pub(super) fn tracker(&self) -> MutexGuard<'_, Tracker> {
        self.tracker.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The messages of one subscribed topic.
type Route = mpsc::Sender<Inbound>;

/// Where incoming messages go, by the topic (or topic filter) subscribed; messages nobody has
/// subscribed to yet are held by their concrete topic.
#[derive(Default)]
pub(super) struct Routes {
    pub(super) subscribers: HashMap<String, Route>,
    pub(super) held: HashMap<String, Vec<Inbound>>,
}

/// What the client and its task share.
pub(super) struct Inner {
    /// `mqtt broker at host:port as <client id>`, for messages.
    pub(super) label: String,
    pub(super) qos: QoS,
    pub(super) current: watch::Sender<Option<Arc<Session>>>,
    /// The newest generation whose CONNACK did not resume the session: the broker will not
    /// send again what older generations received.
    pub(super) fresh_generation: AtomicU64,
    pub(super) routes: Mutex<Routes>,
    pub(super) stop: CancellationToken,
}

impl Inner {
    pub(super) fn routes(&self) -> MutexGuard<'_, Routes> {
        self.routes.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn current_generation(&self) -> Option<u64> {
        self.current.borrow().as_ref().map(|s| s.generation)
    }

    /// Connects, runs, and reconnects until stopped. The outcome of the first attempt goes to
    /// `first`; a first attempt that fails ends the task.
    pub(super) async fn supervise(
        self: Arc<Self>,
        options: MqttOptions,
        first: oneshot::Sender<Result<(), String>>,
    ) {
        let mut first = Some(first);
        let mut backoff = RECONNECT;
        for generation in 1.. {
            let (client, mut events) = AsyncClient::new(options.clone(), REQUEST_CAPACITY);
            let mut network = events.network_options();
            network.set_connection_timeout(CONNECT_TIMEOUT_SECS);
            events.set_network_options(network);
            let connack = tokio::select! {
                _ = self.stop.cancelled() => return,
                c = events.poll() => c,
            };
            let resumed = match connack {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => ack.session_present,
                other => {
                    let why = match other {
                        Err(e) => format!("connecting to {}: {e}", self.label),
                        Ok(event) => format!("{}: expected CONNACK, got {event:?}", self.label),
                    };
                    if let Some(first) = first.take() {
                        let _ = first.send(Err(why));
                        return;
                    }
                    tracing::warn!(error = %why, "mqtt reconnect failed");
                    if !backoff.sleep(&self.stop).await {
                        return;
                    }
                    continue;
                }
            };
            let connected_at = Instant::now();
            let session = Arc::new(Session {
                generation,
                client,
                tracker: Mutex::default(),
            });
            if !resumed {
                self.fresh_generation.store(generation, Ordering::SeqCst);
            }
            self.subscribe_all(&session);
            self.current.send_replace(Some(session.clone()));
            tracing::info!(resumed, generation, "connected to {}", self.label);
            if let Some(first) = first.take() {
                let _ = first.send(Ok(()));
            }
            let lost = self.run(&session, &mut events).await;
            self.current.send_replace(None);
            match lost {
                None => {
                    let _ = session.client.try_disconnect();
                    let _ = tokio::time::timeout(DISCONNECT_TIMEOUT, async {
                        while let Ok(event) = events.poll().await {
                            if event == Event::Outgoing(Outgoing::Disconnect) {
                                break;
                            }
                        }
                    })
                    .await;
                    session.tracker().close("the connection was closed");
                    return;
                }
                Some(why) => {
                    tracing::warn!(error = %why, "lost the connection to {}; reconnecting", self.label);
                    session
                        .tracker()
                        .close(&format!("the connection was lost ({why})"));
                }
            }
            if connected_at.elapsed() >= STABLE {
                backoff.reset();
            }
            if !backoff.sleep(&self.stop).await {
                return;
            }
        }
    }

    /// Polls one connection until it fails (`Some(why)`) or the client is closed (`None`).
    async fn run(
        self: &Arc<Self>,
        session: &Arc<Session>,
        events: &mut EventLoop,
    ) -> Option<String> {
        loop {
            let event = tokio::select! {
                _ = self.stop.cancelled() => return None,
                e = events.poll() => match e {
                    Ok(event) => event,
                    Err(e) => return Some(e.to_string()),
                },
            };
            session.tracker().on_event(&event);
            if let Event::Incoming(Packet::Publish(publish)) = event {
                self.route(publish, session);
            }
        }
    }

    /// Queues a SUBSCRIBE for every routed topic on a new session.
    fn subscribe_all(&self, session: &Session) {
        let topics: Vec<String> = self.routes().subscribers.keys().cloned().collect();
        let mut tracker = session.tracker();
        for topic in topics {
            match session.client.try_subscribe(topic.as_str(), self.qos) {
                Ok(()) => tracker.queued_subscribe(None),
                Err(e) => tracing::warn!(%topic, error = %e, "mqtt re-subscribe not queued"),
            }
        }
    }

    /// Hands a message to its topic's subscriber, or holds it until there is one.
    fn route(self: &Arc<Self>, publish: Publish, session: &Arc<Session>) {
        let inbound = Inbound {
            topic: publish.topic.clone(),
            payload: publish.payload.clone(),
            retained: publish.retain,
            receipt: Receipt::new(publish, session.clone(), Arc::downgrade(self)),
        };
        let mut routes = self.routes();
        let topic = inbound.topic.clone();
        let filter = subscription_for(routes.subscribers.keys(), &topic).cloned();
        let route = filter.and_then(|f| routes.subscribers.get(&f).map(|r| (f, r)));
        let inbound = match route {
            Some((filter, route)) => match route.try_send(inbound) {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::warn!(%topic, "mqtt subscriber {ROUTE_BUFFER} messages behind; message left unacknowledged");
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(inbound)) => {
                    routes.subscribers.remove(&filter);
                    inbound
                }
            },
            None => inbound,
        };
        let held: usize = routes.held.values().map(Vec::len).sum();
        if held >= HELD_MAX {
            tracing::warn!(%topic, "mqtt message for a topic without subscriber left unacknowledged");
            return;
        }
        routes.held.entry(topic).or_default().push(inbound);
    }
}
