//! What every handler shares: identity, components, the app channel, peers, tokens, metrics, and
//! the shutdown signal.

use crate::app_channel::AppChannel;
use crate::components::Registry;
use crate::metrics::Metrics;
use crate::resolve::Resolver;
use axum::body::Body;
use http::HeaderValue;
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tandem_crds::ConfigurationSpec;
use tokio_util::sync::CancellationToken;

/// Facts about the app connection, shown in `/v1.0/metadata`.
#[derive(Debug, Clone)]
pub struct AppConnection {
    pub port: Option<u16>,
    pub protocol: &'static str,
    pub channel_address: String,
}

/// The shared state of one sidecar.
pub struct Runtime {
    pub app_id: String,
    pub namespace: Option<String>,
    /// The loaded components; replaced whole when the operator sends changes (Kubernetes mode).
    pub components: LiveRegistry,
    pub app: Option<AppChannel>,
    pub app_connection: AppConnection,
    /// `DAPR_API_TOKEN`: what apps must present.
    pub api_token: Option<String>,
    /// `APP_API_TOKEN`: what this sidecar presents to its own app, and only to it.
    pub app_token: Option<HeaderValue>,
    pub resolver: Arc<dyn Resolver>,
    /// h2c client to peer sidecars' internal ports.
    pub peers: Client<HttpConnector, Body>,
    pub metrics: Metrics,
    /// The Configuration (Kubernetes mode: replaced when the operator sends a change; the
    /// tracing sampling rate is read once at start).
    pub config: Live<ConfigurationSpec>,
    pub max_body_size: u64,
    /// Values set with `PUT /v1.0/metadata/{key}`.
    pub extended: Mutex<BTreeMap<String, String>>,
    /// Fires when the sidecar should stop (signal, `/v1.0/shutdown`, fatal error, app exit).
    pub shutdown: CancellationToken,
    /// In-flight pub/sub deliveries, drained at shutdown within the grace period.
    pub deliveries: tokio_util::task::TaskTracker,
    /// Active pub/sub subscriptions (shown in `/v1.0/metadata`).
    pub subscriptions: std::sync::RwLock<Vec<Arc<crate::pubsub::subscriptions::Subscription>>>,
    /// The subscription workers behind that list, restarted when subscriptions or pubsubs change.
    pub subscribers: crate::pubsub::live::Subscribers,
    /// The input bindings' readers, restarted when their components change.
    pub input_readers: crate::input_bindings::InputReaders,
}

impl Runtime {
    /// The h2c client for sidecar-to-sidecar calls: one multiplexed connection per peer.
    pub fn peer_client() -> Client<HttpConnector, Body> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(3)));
        Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .http2_only(true)
            .http2_max_header_list_size(crate::server::H2_MAX_HEADER_LIST)
            .http2_keep_alive_interval(Some(Duration::from_secs(30)))
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector)
    }

    /// The components as they are now.
    pub fn registry(&self) -> Arc<Registry> {
        self.components.current()
    }

    pub fn extended(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.extended.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the app channel is up (true when there is no app).
    pub fn app_ready(&self) -> bool {
        self.app.as_ref().is_none_or(AppChannel::is_ready)
    }
}

pub type SharedRuntime = Arc<Runtime>;

/// A value replaced whole while the sidecar runs (the component registry, the Configuration). A
/// request takes the value of the moment (an `Arc`) and keeps it to its end, so a component
/// replaced meanwhile finishes the requests it started.
pub struct Live<T>(std::sync::RwLock<Arc<T>>);

/// The current component [`Registry`].
pub type LiveRegistry = Live<Registry>;

impl<T> Live<T> {
    pub fn new(value: T) -> Live<T> {
        Live(std::sync::RwLock::new(Arc::new(value)))
    }

    pub fn current(&self) -> Arc<T> {
        Arc::clone(&self.0.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Puts `next` in place; returns the one it replaces.
    pub fn replace(&self, next: Arc<T>) -> Arc<T> {
        std::mem::replace(
            &mut *self.0.write().unwrap_or_else(|p| p.into_inner()),
            next,
        )
    }
}
