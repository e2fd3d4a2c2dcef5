//! The app channel: everything the sidecar asks of its own app, behind [`AppChannel`], so that a
//! gRPC app channel ([`grpc::GrpcAppChannel`], `--app-protocol grpc`) stands beside the HTTP
//! one ([`http::HttpAppChannel`]).

pub mod bulk;
pub mod grpc;
pub(crate) mod grpc_mapping;
pub mod health;
pub mod http;
mod http_rules;
mod http_transport;
pub(crate) mod tls;

pub use bulk::BulkEventDelivery;

use crate::pubsub::subscriptions::SubscriptionJson;
use async_trait::async_trait;
use axum::body::Body;
use bytes::Bytes;
use std::collections::BTreeMap;
use tokio_util::sync::CancellationToken;

/// What the app's answer to an event means for the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Retry,
    /// The app said DROP: acked, counted, never redelivered nor dead-lettered.
    Drop,
    /// The route does not exist (404): acked with a warning and a metric, and dead-lettered
    /// when the subscription has a dead-letter topic, so nothing vanishes unseen.
    NoRoute,
}

/// The app could not be reached at all (no answer, not even an error status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unreachable;

/// A pub/sub event for the app.
#[derive(Debug)]
pub struct EventDelivery<'a> {
    /// The route the subscription chose for the event.
    pub path: &'a str,
    pub pubsub: &'a str,
    /// The topic the message came on (for a wildcard subscription, the concrete one).
    pub topic: &'a str,
    /// The CloudEvent, serialised.
    pub body: Bytes,
    /// The message's metadata, sent as headers.
    pub metadata: &'a BTreeMap<String, String>,
    pub traceparent: Option<&'a str>,
}

/// Why a call to the app failed.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    pub message: String,
    /// The app could not be reached at all (nothing listens on its port).
    pub unreachable: bool,
    /// The underlying client error, for callers that read causes (the request body's own fault).
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// Everything the sidecar asks of its app.
#[async_trait]
pub trait AppChannel: Send + Sync + 'static {
    /// Whether the app's port has accepted a connection.
    fn is_ready(&self) -> bool;

    /// Waits until the app is reachable, then marks the channel ready; returns early on `stop`.
    async fn wait_until_reachable(&self, stop: CancellationToken);

    /// Service invocation: `req` carries the path and query only and headers ready for the app
    /// (the channel adds its own token); the app's answer streams back.
    async fn invoke(&self, req: ::http::Request<Body>) -> Result<::http::Response<Body>, AppError>;

    /// Delivers one pub/sub event.
    async fn deliver_event(&self, event: EventDelivery<'_>) -> Result<Outcome, Unreachable>;

    /// Delivers a batch of events to one route (bulk subscribe): one outcome per entry, in the
    /// order of `batch.entry_ids`.
    async fn deliver_bulk(&self, batch: BulkEventDelivery<'_>)
    -> Result<Vec<Outcome>, Unreachable>;

    /// Delivers one input-binding event to `/<route>`; `Ok` with the app's answer when it took it.
    async fn deliver_binding(
        &self,
        route: &str,
        data: Bytes,
        metadata: &BTreeMap<String, String>,
    ) -> Result<Bytes, String>;

    /// Whether the app takes events for an input binding's route.
    async fn probe_route(&self, route: &str) -> bool;

    /// One app health probe: `GET <path>`, answered within `timeout`.
    async fn probe_health(&self, path: &str, timeout: std::time::Duration) -> health::ProbeResult;

    /// The app's programmatic subscriptions.
    async fn subscriptions(&self) -> Result<Vec<SubscriptionJson>, String>;

    /// A gRPC call proxied to the app as it is (`dapr-app-id` proxying); only a gRPC app
    /// takes one.
    async fn proxy_grpc(
        &self,
        _req: ::http::Request<Body>,
    ) -> Result<::http::Response<Body>, AppError> {
        Err(AppError {
            message: "the app does not speak gRPC (start the sidecar with --app-protocol grpc)"
                .to_owned(),
            unreachable: false,
            source: None,
        })
    }
}

/// Waits (with backoff) until `authority` accepts a TCP connection; false when `stop` came first.
pub async fn wait_for_port(authority: &str, stop: CancellationToken) -> bool {
    let mut backoff = crate::resiliency::Backoff::new(
        std::time::Duration::from_millis(5),
        std::time::Duration::from_millis(500),
    );
    loop {
        let attempt = tokio::time::timeout(
            std::time::Duration::from_secs(1),
            tokio::net::TcpStream::connect(authority),
        );
        if let Ok(Ok(_)) = attempt.await {
            return true;
        }
        if !backoff.sleep(&stop).await {
            return false;
        }
    }
}
