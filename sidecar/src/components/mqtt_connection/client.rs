//! A live MQTT connection that survives broker restarts.
//!
//! A task polls the rumqttc event loop continuously. When the connection fails it is not
//! re-polled: the task backs off and starts a fresh event loop (a new session generation),
//! subscribes again to every routed topic, and fails whatever waited on the old one. That way no
//! packet id of an old connection is ever confused with one of the new, and:
//! - a publish returns `Ok` only once the broker PUBACKed it (PUBREC for QoS 2; written, for
//!   QoS 0); if the connection drops first it returns an error (the broker may or may not have
//!   the message: at-least-once);
//! - incoming messages are handed over with a [`Receipt`] and PUBACKed only when that receipt is
//!   acked. A receipt of an earlier connection is not acked: on a resumed session
//!   (`cleanSession: false`) the broker sends the message again, on a new one it has dropped it.
//!   Acks go out in the order the runtime settles messages, not the order they arrived, as with
//!   every MQTT client that acks manually; brokers accept that.

use super::MqttSettings;
use super::supervisor::{DISCONNECT_TIMEOUT, Inner, ROUTE_BUFFER, Session};
use super::topic_filter::filter_matches;
pub use super::topic_filter::{check_filter, check_topic};
use bytes::Bytes;
use rumqttc::{MqttOptions, Publish, TlsConfiguration, Transport};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// How long a publish or subscribe may take, waiting for a reconnect included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Unacknowledged outgoing publishes per connection.
const INFLIGHT: u16 = 100;
/// MQTT's own limit on a packet (256 MiB); rumqttc's default is 10 KiB.
const MAX_PACKET: usize = 268_435_455;
const KEEP_ALIVE: Duration = Duration::from_secs(30);

/// Why a request could not be queued on a session.
enum Start {
    /// The session ended: try the next one.
    Ended,
    /// The event loop's queue is full: try again shortly.
    Busy,
}

/// A message from the broker, not yet acknowledged.
pub struct Inbound {
    pub topic: String,
    pub payload: Bytes,
    pub retained: bool,
    pub receipt: Receipt,
}

/// Acknowledges one incoming message.
pub struct Receipt {
    publish: Publish,
    session: Arc<Session>,
    inner: Weak<Inner>,
}

/// A reconnecting connection to an MQTT broker under one client id.
pub struct MqttClient {
    inner: Arc<Inner>,
    task: Mutex<Option<JoinHandle<()>>>,
}

fn options(
    settings: &MqttSettings,
    client_id: &str,
    clean_session: bool,
) -> Result<MqttOptions, String> {
    if client_id.is_empty() {
        return Err("MQTT client id is empty".into());
    }
    let mut options = MqttOptions::new(client_id, &settings.host, settings.port);
    options
        .set_keep_alive(KEEP_ALIVE)
        .set_clean_session(clean_session)
        .set_manual_acks(true)
        .set_inflight(INFLIGHT)
        .set_max_packet_size(MAX_PACKET, MAX_PACKET);
    if let Some(user) = &settings.username {
        options.set_credentials(user, settings.password.clone().unwrap_or_default());
    }
    if let Some(tls) = &settings.tls {
        let config = tls.client_config()?;
        options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(config)));
    }
    Ok(options)
}

impl MqttClient {
    /// Connects as `client_id` and returns once the broker has answered CONNACK, so a
    /// component's init fails (and is retried) while the broker is down or refuses us.
    pub async fn connect(
        settings: &MqttSettings,
        client_id: &str,
        clean_session: bool,
    ) -> Result<Self, String> {
        let options = options(settings, client_id, clean_session)?;
        let inner = Arc::new(Inner {
            label: format!("{} as {client_id:?}", settings.target()),
            qos: settings.qos,
            current: watch::channel(None).0,
            fresh_generation: AtomicU64::new(0),
            routes: Mutex::default(),
            stop: CancellationToken::new(),
        });
        let (first_tx, first_rx) = oneshot::channel();
        let span = tracing::info_span!("mqtt", client_id = %client_id);
        let task = tokio::spawn(inner.clone().supervise(options, first_tx).instrument(span));
        let client = MqttClient {
            inner,
            task: Mutex::new(Some(task)),
        };
        match first_rx.await {
            Ok(Ok(())) => Ok(client),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(format!("{}: connection task ended", client.inner.label)),
        }
    }

    /// Publishes and waits for the broker's acknowledgement.
    pub async fn publish(&self, topic: &str, payload: &Bytes, retain: bool) -> Result<(), String> {
        check_topic(topic)?;
        let qos = self.inner.qos;
        self.request(false, |session| {
            let mut tracker = session.tracker();
            if tracker.closed().is_some() {
                return Err(Start::Ended);
            }
            let (tx, rx) = oneshot::channel();
            session
                .client
                .try_publish(topic, qos, retain, payload.to_vec())
                .map_err(|_| Start::Busy)?;
            tracker.queued_publish(tx);
            Ok(rx)
        })
        .await
        .map_err(|e| format!("publishing to {topic:?} at {}: {e}", self.inner.label))
    }

    /// Subscribes to `topic` (a topic name or a filter with `+`/`#`: each message then carries
    /// its concrete topic) and returns its messages once the broker has granted the
    /// subscription. After a reconnect the topic is subscribed again by itself. The channel is
    /// bounded; the broker's in-flight window keeps it from filling (see the supervisor).
    pub async fn subscribe(&self, topic: &str) -> Result<mpsc::Receiver<Inbound>, String> {
        check_filter(topic)?;
        let (tx, rx) = mpsc::channel(ROUTE_BUFFER);
        {
            let mut routes = self.inner.routes();
            if routes
                .subscribers
                .get(topic)
                .is_some_and(|s| !s.is_closed())
            {
                return Err(format!(
                    "topic {topic:?} is already subscribed on {}",
                    self.inner.label
                ));
            }
            // Fits: never more are held than a route holds.
            let matching: Vec<String> = routes
                .held
                .keys()
                .filter(|held| filter_matches(topic, held))
                .cloned()
                .collect();
            for held in matching {
                for inbound in routes.held.remove(&held).unwrap_or_default() {
                    let _ = tx.try_send(inbound);
                }
            }
            routes.subscribers.insert(topic.to_owned(), tx);
        }
        let qos = self.inner.qos;
        let granted = self
            .request(true, |session| {
                let mut tracker = session.tracker();
                if tracker.closed().is_some() {
                    return Err(Start::Ended);
                }
                let (tx, rx) = oneshot::channel();
                session
                    .client
                    .try_subscribe(topic, qos)
                    .map_err(|_| Start::Busy)?;
                tracker.queued_subscribe(Some(tx));
                Ok(rx)
            })
            .await;
        if let Err(e) = granted {
            self.inner.routes().subscribers.remove(topic);
            return Err(format!(
                "subscribing to {topic:?} at {}: {e}",
                self.inner.label
            ));
        }
        Ok(rx)
    }

    /// Queues a request with `start` on the current session and waits for its outcome, within
    /// [`REQUEST_TIMEOUT`]. `retry_when_lost`: a request whose connection dropped is made again
    /// on the next one (safe for subscribes, not for publishes).
    async fn request(
        &self,
        retry_when_lost: bool,
        start: impl Fn(&Session) -> Result<oneshot::Receiver<Result<(), String>>, Start>,
    ) -> Result<(), String> {
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        let mut current = self.inner.current.subscribe();
        loop {
            let session = tokio::select! {
                _ = self.inner.stop.cancelled() => return Err("the connection is closed".into()),
                _ = tokio::time::sleep_until(deadline) => return Err("timed out waiting for a connection to the broker".into()),
                s = current.wait_for(|s| s.as_ref().is_some_and(|s| s.tracker().closed().is_none())) => match s {
                    Ok(s) => s.clone(),
                    Err(_) => return Err("the connection is closed".into()),
                },
            };
            let Some(session) = session else { continue };
            let outcome = match start(&session) {
                Ok(outcome) => outcome,
                Err(Start::Ended) => continue,
                Err(Start::Busy) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    if Instant::now() >= deadline {
                        return Err("too many requests queued to the broker".into());
                    }
                    continue;
                }
            };
            match tokio::time::timeout_at(deadline, outcome).await {
                Err(_) => return Err("timed out waiting for the broker's acknowledgement".into()),
                Ok(Ok(Ok(()))) => return Ok(()),
                Ok(Ok(Err(why))) if !(retry_when_lost && session.tracker().closed().is_some()) => {
                    return Err(why);
                }
                Ok(_) => continue,
            }
        }
    }

    /// Disconnects (DISCONNECT, so a persistent session keeps what was not acknowledged) and
    /// ends every subscription's stream.
    pub async fn close(&self) {
        self.inner.stop.cancel();
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task {
            let _ = tokio::time::timeout(DISCONNECT_TIMEOUT * 2, task).await;
        }
        let mut routes = self.inner.routes();
        routes.subscribers.clear();
        routes.held.clear();
    }
}

impl Drop for MqttClient {
    fn drop(&mut self) {
        self.inner.stop.cancel();
    }
}

impl Receipt {
    pub(super) fn new(publish: Publish, session: Arc<Session>, inner: Weak<Inner>) -> Self {
        Receipt {
            publish,
            session,
            inner,
        }
    }

    /// PUBACKs (PUBRECs, for QoS 2) the message, if it came on the current connection.
    pub async fn ack(&self) {
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        if inner.current_generation() != Some(self.session.generation) {
            tracing::debug!(topic = %self.publish.topic, "not acking a message of an earlier connection");
            return;
        }
        if let Err(e) = self.session.client.ack(&self.publish).await {
            tracing::warn!(topic = %self.publish.topic, error = %e, "mqtt ack not sent");
        }
    }

    /// Whether the broker will send this message again by itself: it came on an earlier
    /// connection and every connection since resumed the session.
    pub fn superseded(&self) -> bool {
        let Some(inner) = self.inner.upgrade() else {
            return false;
        };
        let generation = self.session.generation;
        inner.current_generation().is_some_and(|g| g > generation)
            && inner.fresh_generation.load(Ordering::SeqCst) <= generation
    }

    /// Whether the client was closed (nothing can be acked any more).
    pub fn closed(&self) -> bool {
        self.inner
            .upgrade()
            .is_none_or(|inner| inner.stop.is_cancelled())
    }
}
