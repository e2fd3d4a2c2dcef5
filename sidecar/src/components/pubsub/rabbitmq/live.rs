//! One connection to RabbitMQ: the publishing channel (confirm mode) and setting up consumers,
//! with the exchange, queue and dead-letter layout Dapr uses.

use super::RabbitMqConfig;
use crate::components::pubsub::Message;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One connection and the channel publishes go through.
pub(super) struct Live {
    pub(super) conn: Connection,
    publisher: tokio::sync::Mutex<Option<Channel>>,
    /// Exchanges declared through the current publishing channel (durable ones only).
    declared: std::sync::Mutex<HashSet<String>>,
}

fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Connects, naming `target` in errors.
pub(super) async fn connect(cfg: &RabbitMqConfig, target: &str) -> Result<Arc<Live>, String> {
    let mut properties = ConnectionProperties::default();
    if let Some(name) = &cfg.client_name {
        properties = properties.with_connection_name(name.as_str().into());
    }
    let conn = tokio::time::timeout(CONNECT_TIMEOUT, Connection::connect(&cfg.uri, properties))
        .await
        .map_err(|_| format!("connecting to {target}: timed out"))?
        .map_err(|e| format!("connecting to {target}: {e}"))?;
    Ok(Arc::new(Live {
        conn,
        publisher: tokio::sync::Mutex::new(None),
        declared: std::sync::Mutex::default(),
    }))
}

fn exchange_options(cfg: &RabbitMqConfig) -> ExchangeDeclareOptions {
    ExchangeDeclareOptions {
        durable: cfg.durable,
        auto_delete: cfg.delete_when_unused,
        ..ExchangeDeclareOptions::default()
    }
}

impl Live {
    /// The publishing channel (in confirm mode), opened again if it was closed.
    async fn publisher(&self) -> Result<Channel, lapin::Error> {
        let mut publisher = self.publisher.lock().await;
        if let Some(channel) = publisher.as_ref().filter(|c| c.status().connected()) {
            return Ok(channel.clone());
        }
        let channel = self.conn.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        self.declared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        *publisher = Some(channel.clone());
        Ok(channel)
    }

    pub(super) async fn publish(
        &self,
        cfg: &RabbitMqConfig,
        message: &Message,
    ) -> Result<(), String> {
        let channel = self.publisher().await.map_err(text)?;
        let topic = message.topic.as_str();
        // An auto-delete exchange vanishes with its last binding: declare it every time.
        let known = !cfg.delete_when_unused
            && self
                .declared
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(topic);
        if !known {
            let kind = cfg.exchange_kind.clone();
            channel
                .exchange_declare(
                    topic.into(),
                    kind,
                    exchange_options(cfg),
                    FieldTable::default(),
                )
                .await
                .map_err(|e| format!("declaring exchange {topic:?}: {e}"))?;
            self.declared
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(topic.to_owned());
        }
        let md = &message.metadata;
        let mut properties = BasicProperties::default();
        if let Some(mode) = cfg.delivery_mode {
            properties = properties.with_delivery_mode(mode);
        }
        let ttl = match md.get("ttlInSeconds") {
            Some(v) => Some(Duration::from_secs(v.trim().parse().map_err(|_| {
                format!("metadata ttlInSeconds {v:?} is not a number of seconds")
            })?)),
            None => cfg.ttl,
        };
        if let Some(ttl) = ttl {
            properties = properties.with_expiration(ttl.as_millis().to_string().into());
        }
        if let Some(priority) = md.get("priority") {
            let priority = priority
                .trim()
                .parse::<u8>()
                .map_err(|_| format!("metadata priority {priority:?} is not 0 to 255"))?;
            properties = properties.with_priority(priority);
        }
        let routing_key = md.get("routingKey").map_or("", String::as_str);
        let confirm = channel
            .basic_publish(
                topic.into(),
                routing_key.into(),
                BasicPublishOptions::default(),
                &message.data,
                properties,
            )
            .await
            .map_err(text)?
            .await
            .map_err(text)?;
        match confirm {
            Confirmation::Nack(_) => Err("the broker did not accept the message (nack)".into()),
            Confirmation::Ack(_) | Confirmation::NotRequested => Ok(()),
        }
    }

    /// Declares `topic`'s exchange and `queue` (with its dead-letter pair), binds them and
    /// starts consuming on a channel of its own.
    pub(super) async fn consume(
        &self,
        cfg: &RabbitMqConfig,
        topic: &str,
        queue: &str,
    ) -> Result<(Channel, lapin::Consumer), lapin::Error> {
        let channel = self.conn.create_channel().await?;
        channel
            .basic_qos(cfg.prefetch(), BasicQosOptions::default())
            .await?;
        let kind = cfg.exchange_kind.clone();
        channel
            .exchange_declare(
                topic.into(),
                kind,
                exchange_options(cfg),
                FieldTable::default(),
            )
            .await?;
        let queue_options = |durable| QueueDeclareOptions {
            durable,
            auto_delete: cfg.delete_when_unused,
            ..QueueDeclareOptions::default()
        };
        let mut args = FieldTable::default();
        if cfg.dead_letter {
            let (dlx, dlq) = (format!("dlx-{queue}"), format!("dlq-{queue}"));
            channel
                .exchange_declare(
                    dlx.as_str().into(),
                    ExchangeKind::Fanout,
                    exchange_options(cfg),
                    FieldTable::default(),
                )
                .await?;
            channel
                .queue_declare(
                    dlq.as_str().into(),
                    queue_options(true),
                    FieldTable::default(),
                )
                .await?;
            channel
                .queue_bind(
                    dlq.as_str().into(),
                    dlx.as_str().into(),
                    "".into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            args.insert(
                "x-dead-letter-exchange".into(),
                AMQPValue::LongString(dlx.into()),
            );
        }
        if let Some(n) = cfg.max_len {
            args.insert("x-max-length".into(), AMQPValue::LongLongInt(n));
        }
        if let Some(n) = cfg.max_len_bytes {
            args.insert("x-max-length-bytes".into(), AMQPValue::LongLongInt(n));
        }
        channel
            .queue_declare(queue.into(), queue_options(cfg.durable), args)
            .await?;
        channel
            .queue_bind(
                queue.into(),
                topic.into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let tag = format!("{queue}-{:08x}", rand::random::<u32>());
        let options = BasicConsumeOptions {
            no_ack: cfg.auto_ack,
            ..BasicConsumeOptions::default()
        };
        let consumer = channel
            .basic_consume(
                queue.into(),
                tag.as_str().into(),
                options,
                FieldTable::default(),
            )
            .await?;
        Ok((channel, consumer))
    }
}
