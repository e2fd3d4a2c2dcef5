//! `bindings.mqtt3` (alias `bindings.mqtt`): input and output over one MQTT 3.1.1 connection
//! (shared code with `pubsub.mqtt3` in [`crate::components::mqtt_connection`]).
//!
//! Output: operation `create` publishes the request's `data` to the component's `topic` (request
//! metadata `topic` and `retain` override the component's) and answers once the broker
//! acknowledged it. Input: subscribes to `topic`, which may be a filter with `+` and `#`
//! (output then needs a concrete `topic` in the request's metadata); each message becomes an [`InputEvent`] (body
//! the payload, metadata `topic` and `retained`), PUBACKed only when the runtime answers `Ok`.
//! On `Err` the same message is offered again in process after a back-off (200 ms, doubling to
//! 10 s), up to `backOffMaxRetries` times (no limit when unset or -1); one given up on stays
//! unacknowledged with the broker, as in Dapr.
//!
//! The client id is `consumerID`. Without one it is random, and the session is then always a
//! clean one: nobody could resume it, so the broker would only accumulate dead sessions.

#[cfg(test)]
mod tests;

use super::{BindingError, InputBinding, InputEvent, InvokeRequest, InvokeResponse, OutputBinding};
use crate::components::bindings::Binding;
use crate::components::factory::{Instance, Settings};
use crate::components::metadata::{Metadata, MetadataError, parse_bool};
use crate::components::mqtt_connection::client::{Inbound, MqttClient, check_filter, check_topic};
use crate::components::mqtt_connection::{MqttSettings, may_redeliver, redelivery_delay};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Input events waiting for the runtime.
const EVENT_BUFFER: usize = 64;
/// Messages offered to the runtime at once, retries included. The broker's in-flight window
/// keeps QoS 1/2 far below this (each offer holds an unacknowledged message); it bounds QoS 0,
/// which the broker does not hold back. At the bound the topic's route fills, and the client
/// leaves further messages unacknowledged.
const OFFERS_MAX: usize = 1_000;

/// Validated settings of a `bindings.mqtt3` component.
#[derive(Debug, Clone, PartialEq)]
pub struct MqttBindingConfig {
    pub settings: MqttSettings,
    /// `topic`: what input subscribes to (a topic name or filter) and output publishes to by
    /// default (when it is a topic name).
    pub topic: String,
}

impl MqttBindingConfig {
    pub fn from_metadata(md: &Metadata) -> Result<Self, MetadataError> {
        let settings = MqttSettings::from_metadata(md)?;
        let topic = md.require("topic")?;
        check_filter(topic).map_err(|reason| MetadataError {
            field: "topic".into(),
            value: topic.into(),
            reason,
        })?;
        Ok(MqttBindingConfig {
            settings,
            topic: topic.to_owned(),
        })
    }
}

/// The binding: one connection for both sides.
pub struct MqttBinding {
    cfg: MqttBindingConfig,
    client: MqttClient,
    reading: AtomicBool,
    stop: CancellationToken,
}

impl MqttBinding {
    /// Connects; fails (and init is retried) while the broker is down.
    pub async fn connect(cfg: &MqttBindingConfig) -> Result<Self, String> {
        let (client_id, clean_session) = match &cfg.settings.consumer_id {
            Some(id) => (id.clone(), cfg.settings.clean_session),
            None => (
                format!("tandem-binding-{:08x}", rand::random::<u32>()),
                true,
            ),
        };
        let client = MqttClient::connect(&cfg.settings, &client_id, clean_session).await?;
        Ok(MqttBinding {
            cfg: cfg.clone(),
            client,
            reading: AtomicBool::new(false),
            stop: CancellationToken::new(),
        })
    }

    /// Disconnects and ends the input stream.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        self.client.close().await;
    }
}

#[async_trait]
impl OutputBinding for MqttBinding {
    fn operations(&self) -> &'static [&'static str] {
        &["create"]
    }

    async fn invoke(&self, request: InvokeRequest) -> Result<InvokeResponse, BindingError> {
        if request.operation != "create" {
            return Err(BindingError::unsupported(
                &request.operation,
                self.operations(),
            ));
        }
        let topic = request
            .metadata
            .get("topic")
            .map(String::as_str)
            .filter(|t| !t.is_empty())
            .unwrap_or(&self.cfg.topic);
        check_topic(topic).map_err(BindingError::BadRequest)?;
        let retain = match request.metadata.get("retain") {
            None => self.cfg.settings.retain,
            Some(v) => parse_bool(v).ok_or_else(|| {
                BindingError::BadRequest(format!("metadata \"retain\": {v:?} is not a boolean"))
            })?,
        };
        self.client
            .publish(topic, &request.data, retain)
            .await
            .map_err(BindingError::backend)?;
        Ok(InvokeResponse::default())
    }
}

#[async_trait]
impl InputBinding for MqttBinding {
    async fn close(&self) {
        self.shutdown().await;
    }

    async fn read(&self) -> Result<mpsc::Receiver<InputEvent>, BindingError> {
        if self.reading.swap(true, Ordering::SeqCst) {
            return Err(BindingError::BadRequest(
                "the mqtt input binding is already being read".into(),
            ));
        }
        let inbound = match self.client.subscribe(&self.cfg.topic).await {
            Ok(inbound) => inbound,
            Err(e) => {
                self.reading.store(false, Ordering::SeqCst);
                return Err(BindingError::backend(e));
            }
        };
        let (tx, rx) = mpsc::channel(EVENT_BUFFER);
        let span = tracing::info_span!("mqtt_input", topic = %self.cfg.topic);
        tokio::spawn(
            read_loop(
                inbound,
                tx,
                self.cfg.settings.max_retries,
                self.stop.clone(),
            )
            .instrument(span),
        );
        Ok(rx)
    }
}

/// Offers every incoming message to the runtime, each in a task of its own so a message being
/// retried does not hold up the others; at most [`OFFERS_MAX`] at once.
async fn read_loop(
    mut inbound: mpsc::Receiver<Inbound>,
    tx: mpsc::Sender<InputEvent>,
    max_retries: Option<u32>,
    stop: CancellationToken,
) {
    let offers = Arc::new(Semaphore::new(OFFERS_MAX));
    loop {
        let permit = tokio::select! {
            _ = stop.cancelled() => return,
            _ = tx.closed() => return,
            p = offers.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
        };
        let next = tokio::select! {
            _ = stop.cancelled() => return,
            _ = tx.closed() => return,
            m = inbound.recv() => m,
        };
        let Some(message) = next else { return };
        let offered = offer(Arc::new(message), tx.clone(), max_retries, stop.clone());
        tokio::spawn(
            async move {
                offered.await;
                drop(permit);
            }
            .in_current_span(),
        );
    }
}

/// Offers one message until the runtime takes it (then PUBACKs it) or retries run out.
async fn offer(
    message: Arc<Inbound>,
    tx: mpsc::Sender<InputEvent>,
    max_retries: Option<u32>,
    stop: CancellationToken,
) {
    let metadata: BTreeMap<String, String> = [
        ("topic".to_owned(), message.topic.clone()),
        ("retained".to_owned(), message.retained.to_string()),
    ]
    .into();
    let mut redelivered = 0u32;
    loop {
        let (done, verdict) = oneshot::channel();
        let event = InputEvent {
            data: message.payload.clone(),
            metadata: metadata.clone(),
            done,
        };
        let sent = tokio::select! {
            _ = stop.cancelled() => return,
            s = tx.send(event) => s,
        };
        if sent.is_err() {
            return; // the runtime stopped reading: left unacknowledged
        }
        let verdict = tokio::select! {
            _ = stop.cancelled() => return,
            v = verdict => v,
        };
        match verdict {
            Ok(Ok(_)) => {
                message.receipt.ack().await;
                return;
            }
            Ok(Err(why)) => {
                tracing::warn!(topic = %message.topic, error = %why, redelivered, "the app failed an mqtt input event");
            }
            Err(_) => return, // no verdict (shutdown): left unacknowledged
        }
        let receipt = &message.receipt;
        if receipt.closed() || receipt.superseded() {
            return;
        }
        if !may_redeliver(max_retries, redelivered) {
            tracing::error!(topic = %message.topic, retries = redelivered,
                "mqtt input event failed backOffMaxRetries times; left unacknowledged with the broker");
            return;
        }
        redelivered += 1;
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(redelivery_delay(redelivered)) => {}
        }
    }
}

#[async_trait]
impl Settings for MqttBindingConfig {
    async fn init(&self) -> Result<Instance, String> {
        let binding = Arc::new(MqttBinding::connect(self).await?);
        Ok(Instance::Binding(Binding {
            input: Some(binding.clone()),
            output: Some(binding),
        }))
    }
}

pub fn settings(md: &Metadata, _: &Path) -> Result<Arc<dyn Settings>, MetadataError> {
    Ok(Arc::new(MqttBindingConfig::from_metadata(md)?))
}
