//! The building blocks, transport-neutral: state, pub/sub (publishing), bindings (output),
//! secrets, service invocation, metadata and health are plain async methods on [`Sidecar`] over
//! typed requests, failing with one [`error::BlockError`]. The HTTP front end (`http_api`) — and
//! later a gRPC one — only extracts, calls and responds.
//!
//! [`Sidecar`] is the one small handle requests need. Its fields are private; background work
//! (subscribers, input-binding readers, reload) owns its own state in `workers` and starts from
//! this handle, writing nothing back but the subscription list it publishes.

pub mod api_token;
pub mod bindings;
pub mod error;
pub mod health;
pub mod invoke;
pub mod lock;
pub mod metadata;
pub mod pubsub;
pub mod secrets;
pub mod state;

use crate::channels::app::AppChannel;
use crate::channels::app::health::AppHealthCheck;
use crate::channels::peer::Peers;
use crate::components::Registry;
use crate::metrics::Metrics;
use crate::pubsub::streams::StreamingSubscriptions;
use crate::pubsub::subscriptions::Subscription;
use crate::swap::Swap;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use tandem_crds::ConfigurationSpec;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Facts about the app connection, shown in `/v1.0/metadata`.
#[derive(Debug, Clone)]
pub struct AppConnection {
    pub port: Option<u16>,
    pub protocol: &'static str,
    pub channel_address: String,
}

/// The subscriptions running now: written by the subscription workers, read by metadata.
pub type SubscriptionList = Arc<RwLock<Vec<Arc<Subscription>>>>;

/// What a [`Sidecar`] is built from.
pub struct SidecarParts {
    pub app_id: String,
    pub namespace: Option<String>,
    pub registry: Registry,
    pub config: ConfigurationSpec,
    pub app: Option<Arc<dyn AppChannel>>,
    pub app_connection: AppConnection,
    /// `--enable-app-health-check` and its settings.
    pub app_health_check: Option<AppHealthCheck>,
    pub peers: Peers,
    pub metrics: Metrics,
    /// The workload identity (mTLS) and access control.
    pub security: crate::security::Security,
    pub max_body_size: u64,
    /// `DAPR_API_TOKEN`: what apps must present.
    pub api_token: Option<String>,
    pub shutdown: CancellationToken,
    /// This host's internal address as other sidecars reach it (actor placement).
    pub internal_address: String,
}

/// The shared state of one sidecar, as requests see it.
pub struct Sidecar {
    app_id: String,
    namespace: Option<String>,
    components: Swap<Registry>,
    config: Swap<ConfigurationSpec>,
    app: Option<Arc<dyn AppChannel>>,
    app_connection: AppConnection,
    app_health_check: Option<AppHealthCheck>,
    /// Whether the app is healthy: always, without health checks; else as the probes found.
    app_health: watch::Sender<bool>,
    peers: Peers,
    metrics: Metrics,
    security: crate::security::Security,
    max_body_size: u64,
    api_token: Option<String>,
    /// Values set with `PUT /v1.0/metadata/{key}`.
    extended: Mutex<BTreeMap<String, String>>,
    subscriptions: SubscriptionList,
    /// The streaming subscriptions (`SubscribeTopicEventsAlpha1`) open now.
    streams: StreamingSubscriptions,
    /// Whether the first subscriptions are in place at their brokers (true from the start when
    /// there is no app to deliver to).
    subscribed: AtomicBool,
    shutdown: CancellationToken,
    actors: crate::actors::ActorRuntime,
}

impl Sidecar {
    pub fn new(parts: SidecarParts) -> Sidecar {
        let SidecarParts {
            app_id,
            namespace,
            registry,
            config,
            app,
            app_connection,
            app_health_check,
            peers,
            metrics,
            security,
            max_body_size,
            api_token,
            shutdown,
            internal_address,
        } = parts;
        let probed = app.is_some() && app_health_check.is_some();
        let subscribed = AtomicBool::new(app.is_none());
        let app_less = app.is_none();
        Sidecar {
            app_id,
            namespace,
            components: Swap::new(registry),
            config: Swap::new(config),
            app,
            app_connection,
            app_health_check,
            app_health: watch::Sender::new(!probed),
            peers,
            metrics,
            security,
            max_body_size,
            api_token,
            extended: Mutex::default(),
            subscriptions: SubscriptionList::default(),
            streams: StreamingSubscriptions::default(),
            subscribed,
            shutdown,
            actors: crate::actors::ActorRuntime::new(internal_address, app_less),
        }
    }

    /// A sidecar without ports, app or peers, over `registry` (in-process handler tests).
    #[cfg(any(test, feature = "test-util"))]
    pub fn for_tests(app_id: &str, registry: Registry) -> Result<Sidecar, prometheus::Error> {
        let metrics = Metrics::new(app_id)?;
        Ok(Sidecar::new(SidecarParts {
            app_id: app_id.to_owned(),
            namespace: None,
            registry,
            config: ConfigurationSpec::default(),
            app: None,
            app_connection: AppConnection {
                port: None,
                protocol: "http",
                channel_address: "127.0.0.1".to_owned(),
            },
            app_health_check: None,
            peers: Peers::new(Arc::new(crate::resolve::local::LocalResolver::new(
                std::env::temp_dir().join("tandem-for-tests-registry"),
                None,
            ))),
            security: crate::security::Security::new(None, metrics.security().clone()),
            metrics,
            max_body_size: 4 << 20,
            api_token: None,
            shutdown: CancellationToken::new(),
            internal_address: "127.0.0.1:0".to_owned(),
        }))
    }

    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// The components as they are now.
    pub fn registry(&self) -> Arc<Registry> {
        self.components.current()
    }

    /// Puts a new component registry in place (reload); returns the one it replaces.
    pub fn replace_registry(&self, next: Arc<Registry>) -> Arc<Registry> {
        self.components.replace(next)
    }

    /// The Configuration as it is now.
    pub fn config(&self) -> Arc<ConfigurationSpec> {
        self.config.current()
    }

    pub fn replace_config(&self, next: ConfigurationSpec) {
        self.config.replace(Arc::new(next));
    }

    pub fn app(&self) -> Option<&Arc<dyn AppChannel>> {
        self.app.as_ref()
    }

    /// Whether the app channel is up (true when there is no app).
    pub fn app_ready(&self) -> bool {
        self.app.as_ref().is_none_or(|app| app.is_ready())
    }

    pub fn app_connection(&self) -> &AppConnection {
        &self.app_connection
    }

    /// `--enable-app-health-check`'s settings, when on.
    pub fn app_health_check(&self) -> Option<&AppHealthCheck> {
        self.app_health_check.as_ref()
    }

    /// The app's health as it changes (true throughout without health checks): what pub/sub
    /// delivery and input bindings wait on, and what actor placement can follow.
    pub fn app_health(&self) -> watch::Receiver<bool> {
        self.app_health.subscribe()
    }

    /// Where the health probes publish what they find.
    pub fn app_health_sender(&self) -> watch::Sender<bool> {
        self.app_health.clone()
    }

    /// Waits until the app is healthy; `false` when `stop` fires first. Nothing is delivered
    /// to an unhealthy app: messages stay with the broker until it recovers.
    pub async fn wait_app_healthy(&self, stop: &CancellationToken) -> bool {
        if *self.app_health.borrow() {
            return true;
        }
        let mut health = self.app_health.subscribe();
        tokio::select! {
            _ = stop.cancelled() => false,
            healthy = health.wait_for(|healthy| *healthy) => healthy.is_ok() && !stop.is_cancelled(),
        }
    }

    pub fn peers(&self) -> &Peers {
        &self.peers
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn security(&self) -> &crate::security::Security {
        &self.security
    }

    pub fn max_body_size(&self) -> u64 {
        self.max_body_size
    }

    pub fn api_token(&self) -> Option<&str> {
        self.api_token.as_deref()
    }

    pub fn extended(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.extended.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The list the subscription workers keep current.
    pub fn subscriptions(&self) -> &SubscriptionList {
        &self.subscriptions
    }

    /// The streaming subscriptions open now.
    pub fn streams(&self) -> &StreamingSubscriptions {
        &self.streams
    }

    /// Called by the subscription workers once the first subscriptions are in place (or were
    /// tried): until then the sidecar does not report ready, so a message published the moment
    /// it does reaches the app.
    pub fn mark_subscribed(&self) {
        self.subscribed.store(true, Ordering::Release);
    }

    pub fn subscribed(&self) -> bool {
        self.subscribed.load(Ordering::Acquire)
    }

    /// The actor runtime: what this app hosts, what is active here, which shards it holds.
    pub fn actor_runtime(&self) -> &crate::actors::ActorRuntime {
        &self.actors
    }

    /// Fires when the sidecar should stop (signal, `/v1.0/shutdown`, fatal error, app exit).
    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }
}
