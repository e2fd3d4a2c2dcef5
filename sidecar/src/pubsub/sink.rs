//! Where a subscription's events go. [`AppSink`]: the app, through its channel, paused while
//! its health checks find it unhealthy. The gRPC API's streaming subscriptions
//! (`SubscribeTopicEventsAlpha1`) are another sink: the same at-least-once delivery loop
//! ([`super::delivery::run`]) serves both.

use crate::blocks::Sidecar;
use crate::channels::app::{EventDelivery, Outcome, Unreachable};
use async_trait::async_trait;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// A receiver of single (not bulk) pub/sub events.
#[async_trait]
pub trait EventSink: Send + Sync + 'static {
    /// Waits until the sink takes events; `false` when `stop` fired first.
    async fn ready(&self, stop: &CancellationToken) -> bool;

    /// Delivers one event; `Unreachable` when the receiver is not there at all (no attempt is
    /// counted, the delivery waits and tries again until it stops).
    async fn deliver(&self, event: EventDelivery<'_>) -> Result<Outcome, Unreachable>;
}

/// The app, over its channel.
pub struct AppSink(pub Arc<Sidecar>);

#[async_trait]
impl EventSink for AppSink {
    async fn ready(&self, stop: &CancellationToken) -> bool {
        self.0.wait_app_healthy(stop).await
    }

    async fn deliver(&self, event: EventDelivery<'_>) -> Result<Outcome, Unreachable> {
        match self.0.app() {
            Some(app) => app.deliver_event(event).await,
            None => Err(Unreachable),
        }
    }
}
