//! Background work, each part owning its state and started from the [`Sidecar`] handle: the
//! subscription workers ([`subscribers`]), the input-binding readers ([`input_bindings`]) and the
//! tracker of deliveries in flight (drained at shutdown). [`Workers::sync`] brings them in line
//! with the components after a reload; [`changes`] is the pure keep/stop/start decision.

pub mod changes;
pub mod input_bindings;
pub mod subscribers;

use crate::blocks::Sidecar;
use input_bindings::InputReaders;
use std::sync::Arc;
use std::time::Duration;
use subscribers::Subscribers;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// Waits until the app is reachable and every component has settled; false when the sidecar
/// shuts down first (or runs without an app).
pub async fn wait_for_app(sidecar: &Sidecar) -> bool {
    let Some(app) = sidecar.app() else {
        return false;
    };
    while !(app.is_ready() && sidecar.registry().settled()) {
        tokio::select! {
            _ = sidecar.shutdown().cancelled() => return false,
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    }
    true
}

/// The sidecar's background workers.
pub struct Workers {
    subscribers: Subscribers,
    input_readers: InputReaders,
    /// Deliveries (pub/sub messages, input-binding events) in flight.
    deliveries: TaskTracker,
}

impl Workers {
    pub fn new(sidecar: &Arc<Sidecar>) -> Arc<Workers> {
        let deliveries = TaskTracker::new();
        Arc::new(Workers {
            subscribers: Subscribers::new(sidecar.clone(), deliveries.clone()),
            input_readers: InputReaders::new(sidecar.clone(), deliveries.clone()),
            deliveries,
        })
    }

    /// Starts subscriptions and input bindings once the app is ready (in the background).
    pub fn start(self: &Arc<Self>) {
        let workers = self.clone();
        tokio::spawn(
            async move { workers.subscribers.start().await }
                .instrument(tracing::info_span!("pubsub")),
        );
        let workers = self.clone();
        tokio::spawn(
            async move { workers.input_readers.start().await }
                .instrument(tracing::info_span!("bindings")),
        );
    }

    /// After the components changed: subscriptions and input readers follow. New or changed ones
    /// start, removed ones stop, and those on a replaced component move to its new instance.
    pub async fn sync(&self) {
        self.subscribers.reconcile().await;
        self.input_readers.reconcile().await;
    }

    /// Stops taking deliveries and waits for those in flight.
    pub async fn drain(&self) {
        self.deliveries.close();
        self.deliveries.wait().await;
    }
}
