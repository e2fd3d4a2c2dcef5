//! The metadata of `pubsub.rabbitmq`, read and checked before any port is bound.

use crate::components::metadata::{Metadata, MetadataError};
use lapin::ExchangeKind;
use lapin::uri::AMQPUri;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use std::time::Duration;

/// Dapr's default pause between reconnect attempts.
const DEFAULT_RECONNECT_WAIT: Duration = Duration::from_secs(3);
/// The prefetch window of a consumer whose `prefetchCount` is 0 or unset. Dapr reads 0 as no
/// limit, but then a slow app makes the client library buffer the whole queue in the sidecar.
/// 64 covers what the runtime holds per subscription (the 32-deep delivery channel plus 17
/// being handled or about to be), so the window never starves a fast app.
pub const DEFAULT_PREFETCH: u16 = 64;

/// Validated settings of a `pubsub.rabbitmq` component.
#[derive(Clone, PartialEq)]
pub struct RabbitMqConfig {
    /// `connectionString`, or `protocol://username:password@hostname`.
    pub uri: String,
    /// The consumer group; when unset, the consumer `subscribe` is given (the app id).
    pub consumer_id: Option<String>,
    /// `durable`: exchanges and queues survive a broker restart.
    pub durable: bool,
    /// `deletedWhenUnused` (default true): exchanges and queues are auto-delete. A group's
    /// queue then disappears, with what it holds, when its last consumer goes away.
    pub delete_when_unused: bool,
    /// `autoAck`: the broker forgets a message as soon as it sent it (at-most-once).
    pub auto_ack: bool,
    /// `deliveryMode`: 1 (transient) or 2 (persistent); `None` leaves it unset.
    pub delivery_mode: Option<u8>,
    /// `requeueInFailure`: see [`RabbitMqConfig::requeue_on_nack`].
    pub requeue_in_failure: bool,
    /// `prefetchCount`: unacknowledged messages per consumer; 0 means [`DEFAULT_PREFETCH`]
    /// (see [`RabbitMqConfig::prefetch`]).
    pub prefetch_count: u16,
    /// `reconnectWait` / `reconnectWaitSeconds`: the pause between reconnect attempts.
    pub reconnect_wait: Duration,
    /// `enableDeadLetter`: each queue `Q` dead-letters to the exchange `dlx-Q`, bound to the
    /// queue `dlq-Q`.
    pub dead_letter: bool,
    /// `maxLen` / `maxLenBytes`: `x-max-length` / `x-max-length-bytes` of each queue.
    pub max_len: Option<i64>,
    pub max_len_bytes: Option<i64>,
    /// `exchangeKind`: fanout (default), topic, direct or headers.
    pub exchange_kind: ExchangeKind,
    /// `ttlInSeconds`: the expiration of every published message.
    pub ttl: Option<Duration>,
    /// `clientName`: the connection name the broker shows.
    pub client_name: Option<String>,
}

// By hand so a logged config never shows the password in the uri.
impl std::fmt::Debug for RabbitMqConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let uri = match self.uri.split_once('@') {
            Some((_, host)) => format!("<credentials>@{host}"),
            None => self.uri.clone(),
        };
        f.debug_struct("RabbitMqConfig")
            .field("uri", &uri)
            .field("consumer_id", &self.consumer_id)
            .field("durable", &self.durable)
            .field("delete_when_unused", &self.delete_when_unused)
            .field("auto_ack", &self.auto_ack)
            .field("delivery_mode", &self.delivery_mode)
            .field("requeue_in_failure", &self.requeue_in_failure)
            .field("prefetch_count", &self.prefetch_count)
            .field("reconnect_wait", &self.reconnect_wait)
            .field("dead_letter", &self.dead_letter)
            .field("max_len", &self.max_len)
            .field("max_len_bytes", &self.max_len_bytes)
            .field("exchange_kind", &self.exchange_kind)
            .field("ttl", &self.ttl)
            .field("client_name", &self.client_name)
            .finish()
    }
}

fn refuse(field: &str, value: &str, reason: &str) -> MetadataError {
    MetadataError {
        field: field.to_owned(),
        value: value.to_owned(),
        reason: reason.to_owned(),
    }
}

/// A non-negative integer field; 0 (Dapr's "unset") gives `None`.
fn positive(md: &Metadata, field: &str) -> Result<Option<i64>, MetadataError> {
    match md.int(field)? {
        Some(n) if n < 0 => Err(refuse(field, &n.to_string(), "must be 0 or more")),
        n => Ok(n.filter(|n| *n > 0)),
    }
}

impl RabbitMqConfig {
    /// Reads Dapr's fields. `publisherConfirm` is checked but Tandem always waits for the
    /// broker's confirm (a publish answers `Ok` only once the broker holds the message);
    /// `concurrencyMode` is checked and left to the runtime, which bounds concurrency itself;
    /// `heartBeat` and `publishMessagePropertiesToMetadata` are accepted and ignored. TLS
    /// (`amqps`, `caCert`, `clientCert`, `clientKey`, `saslExternal`) is refused: not supported
    /// yet.
    pub fn from_metadata(md: &Metadata) -> Result<Self, MetadataError> {
        let uri = match md.get("connectionString") {
            Some(uri) => {
                check_uri("connectionString", uri)?;
                uri.to_owned()
            }
            None => {
                let host = md.require("hostname")?;
                let protocol = md.get("protocol").unwrap_or("amqp");
                let user = |field| {
                    utf8_percent_encode(md.get(field).unwrap_or("guest"), NON_ALPHANUMERIC)
                        .to_string()
                };
                let uri = format!(
                    "{protocol}://{}:{}@{host}",
                    user("username"),
                    user("password")
                );
                let field = if md.get("protocol").is_some() {
                    "protocol"
                } else {
                    "hostname"
                };
                check_uri(field, &uri).map_err(|e| MetadataError {
                    value: format!("{protocol}://…@{host}"),
                    ..e
                })?;
                uri
            }
        };
        for field in ["caCert", "clientCert", "clientKey"] {
            if md.get(field).is_some() {
                return Err(refuse(
                    field,
                    "<pem>",
                    "TLS is not supported yet by pubsub.rabbitmq",
                ));
            }
        }
        if md.bool("saslExternal", false)? {
            return Err(refuse(
                "saslExternal",
                "true",
                "TLS is not supported yet by pubsub.rabbitmq",
            ));
        }
        for field in ["concurrencyMode", "concurrency"] {
            if let Some(mode) = md.get(field)
                && !matches!(mode, "parallel" | "single")
            {
                return Err(refuse(field, mode, "expected parallel or single"));
            }
        }
        md.bool("publisherConfirm", false)?;
        md.bool("publishMessagePropertiesToMetadata", false)?;
        md.duration("heartBeat")?;
        let delivery_mode = match md.int("deliveryMode")? {
            None | Some(0) => None,
            Some(n @ (1 | 2)) => Some(n as u8),
            Some(n) => return Err(refuse("deliveryMode", &n.to_string(), "must be 0, 1 or 2")),
        };
        let prefetch_count = match md.int("prefetchCount")? {
            None => 0,
            Some(n) => u16::try_from(n)
                .map_err(|_| refuse("prefetchCount", &n.to_string(), "must be 0 to 65535"))?,
        };
        let reconnect_wait = match md.duration("reconnectWait")? {
            Some(d) => Some(d),
            None => md.duration("reconnectWaitSeconds")?,
        }
        .filter(|d| !d.is_zero())
        .unwrap_or(DEFAULT_RECONNECT_WAIT);
        let exchange_kind = match md.get("exchangeKind").unwrap_or("fanout") {
            "fanout" => ExchangeKind::Fanout,
            "topic" => ExchangeKind::Topic,
            "direct" => ExchangeKind::Direct,
            "headers" => ExchangeKind::Headers,
            other => {
                return Err(refuse(
                    "exchangeKind",
                    other,
                    "expected fanout, topic, direct or headers",
                ));
            }
        };
        let ttl = positive(md, "ttlInSeconds")?.map(|s| Duration::from_secs(s.unsigned_abs()));
        Ok(RabbitMqConfig {
            uri,
            consumer_id: md.get("consumerID").map(str::to_owned),
            durable: md.bool("durable", false)?,
            delete_when_unused: md.bool("deletedWhenUnused", true)?,
            auto_ack: md.bool("autoAck", false)?,
            delivery_mode,
            requeue_in_failure: md.bool("requeueInFailure", false)?,
            prefetch_count,
            reconnect_wait,
            dead_letter: md.bool("enableDeadLetter", false)?,
            max_len: positive(md, "maxLen")?,
            max_len_bytes: positive(md, "maxLenBytes")?,
            exchange_kind,
            ttl,
            client_name: md.get("clientName").map(str::to_owned),
        })
    }

    /// `rabbitmq at host:port`, for messages (never the credentials).
    pub fn target(&self) -> String {
        match self.uri.parse::<AMQPUri>() {
            Ok(u) => format!("rabbitmq at {}:{}", u.authority.host, u.authority.port),
            Err(_) => "rabbitmq".into(),
        }
    }

    /// Whether a nacked message goes back to its queue. Dapr requeues only with
    /// `requeueInFailure`, so by default a message the app failed is dropped unless dead-lettering
    /// is on. Tandem requeues unless `enableDeadLetter` is on and `requeueInFailure` is not: a
    /// message is then dead-lettered, as configured, and otherwise never lost.
    pub fn requeue_on_nack(&self) -> bool {
        self.requeue_in_failure || !self.dead_letter
    }

    /// The prefetch window (`basic.qos`) of each consumer: `prefetchCount`, or
    /// [`DEFAULT_PREFETCH`] when that is 0. Never unlimited: the window is what makes a slow app
    /// leave messages in the queue instead of in the sidecar.
    pub fn prefetch(&self) -> u16 {
        match self.prefetch_count {
            0 => DEFAULT_PREFETCH,
            n => n,
        }
    }
}

/// A uri lapin can connect to, without TLS.
fn check_uri(field: &str, uri: &str) -> Result<(), MetadataError> {
    let shown = match uri.split_once('@') {
        Some((scheme_user, host)) => match scheme_user.split_once("://") {
            Some((scheme, _)) => format!("{scheme}://…@{host}"),
            None => format!("…@{host}"),
        },
        None => uri.to_owned(),
    };
    let parsed: AMQPUri = uri.parse().map_err(|e: String| refuse(field, &shown, &e))?;
    if parsed.scheme == lapin::uri::AMQPScheme::AMQPS {
        return Err(refuse(
            field,
            &shown,
            "amqps (TLS) is not supported yet by pubsub.rabbitmq",
        ));
    }
    Ok(())
}
