//! The sidecar-facing API: where a sidecar in Kubernetes mode gets the Components, Configuration
//! and Subscriptions of its namespace and app id, and a stream of updates.
//!
//! ```text
//! GET /v1/namespaces/{namespace}/pods/{pod}/resources?appId=<id>[&config=<name>][&watch=true]
//! Authorization: Bearer <the pod's ServiceAccount token>
//! ```
//!
//! The answer is one JSON [`Resources`] document, or with `watch=true` a stream of them
//! (`application/x-ndjson`, one per line): the first at once, then one whenever what the sidecar
//! may see changes. Each is complete, not a delta. A stream ends after [`STREAM_LIFETIME`], so the
//! sidecar reconnects with its current token and is checked again.
//!
//! Who may see what (`auth`): the token is verified by TokenReview; it must be a ServiceAccount's
//! of the namespace asked for, and the pod must exist there with that ServiceAccount and app id.
//! What is sent (`resources`): only that namespace's objects, only those whose `scopes` name the
//! app (or are empty), `secretKeyRef`s to Kubernetes Secrets resolved from that namespace alone.
//! `POST /v1/namespaces/{namespace}/pods/{pod}/certificate` (`certificate`) is the control-plane
//! CA's door: a CSR and the same token give a workload certificate for the pod's own identity.
//! Errors are Dapr-style `{"errorCode", "message"}` JSON (`routes`).

mod auth;
mod certificate;
mod feed;
mod index;
mod resources;
mod routes;
mod secrets;

pub use auth::{Caller, Claim, Denied, admit, caller_from};
pub use certificate::{audience_bound_caller, finished};
pub use index::Index;
pub use resources::{
    KUBERNETES_SECRET_STORE, Resources, Wanted, resolve_secrets, resources_for, secrets_needed,
};
pub use routes::router;

pub use crate::ca::serving::ServingIdentity;

use crate::cache::Caches;
use crate::controller::Scope;
use crate::metrics::Metrics;
use kube::Client;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tandem_webhook_tls::ServingCert;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// How long one update stream lasts before the sidecar must reconnect (and be checked again).
pub const STREAM_LIFETIME: Duration = Duration::from_secs(600);

/// The sidecar API's Service (its DNS names go in the TLS certificate).
pub const SERVICE_NAME: &str = "tandem-api";

/// How long a request waits for the caches to fill after the operator starts.
const CACHE_WAIT: Duration = Duration::from_secs(10);

/// The audience of the projected token the injector mounts for the sidecar.
pub const TOKEN_AUDIENCE: &str = tandem_crds::annotations::defaults::OPERATOR_TOKEN_AUDIENCE;

/// The sidecar API's flags.
#[derive(Debug, Clone, clap::Args)]
pub struct SidecarApiArgs {
    /// Where sidecars get their components, configuration and subscriptions.
    #[arg(
        long,
        env = "TANDEM_OPERATOR_SIDECAR_API_ADDR",
        default_value = "0.0.0.0:6500"
    )]
    pub sidecar_api_addr: SocketAddr,
    /// The audience sidecar tokens must be issued for ("" accepts the API server's own audiences).
    #[arg(
        long,
        env = "TANDEM_OPERATOR_SIDECAR_TOKEN_AUDIENCE",
        default_value = TOKEN_AUDIENCE
    )]
    pub sidecar_token_audience: String,
    /// Run the control-plane CA: sign workload certificates for sidecars (mTLS in Kubernetes).
    #[arg(
        long,
        env = "TANDEM_OPERATOR_CA_ENABLED",
        default_value_t = true,
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    pub ca_enabled: bool,
    /// The Secret (in the operator's namespace) holding the CA key and trust bundle.
    #[arg(long, env = "TANDEM_OPERATOR_CA_SECRET", default_value = crate::ca::CA_SECRET_NAME)]
    pub ca_secret: String,
    /// With the CA: the trust domain of the operator's own SPIFFE ID, which its sidecar API's TLS
    /// certificate carries (`spiffe://<this>/ns/<namespace>/tandem-operator`).
    #[arg(
        long,
        env = "TANDEM_OPERATOR_CONTROL_PLANE_TRUST_DOMAIN",
        default_value = tandem_crds::annotations::defaults::CONTROL_PLANE_TRUST_DOMAIN
    )]
    pub control_plane_trust_domain: String,
    /// With the CA: the ConfigMap (in the operator's namespace) where the trust anchors are
    /// published for the injector ("" publishes none).
    #[arg(
        long,
        env = "TANDEM_OPERATOR_TRUST_BUNDLE_CONFIGMAP",
        default_value = tandem_crds::annotations::defaults::TRUST_BUNDLE_CONFIGMAP
    )]
    pub trust_bundle_configmap: String,
}

/// What the handlers share.
pub struct SidecarApi {
    pub(crate) client: Client,
    pub(crate) scope: Scope,
    pub(crate) index: Index,
    pub(crate) audiences: Vec<String>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) stream_lifetime: Duration,
    /// The CA that signs workload certificates (`None`: the certificate route answers 503).
    pub(crate) ca: Option<Arc<crate::ca::CurrentCa>>,
    /// The API's own certificate, from that CA (`None`: plain HTTP).
    pub(crate) tls: Option<Arc<ServingCert>>,
    /// The operator's SPIFFE ID while it serves TLS: no workload is signed for it.
    pub(crate) reserved_id: Option<String>,
    /// Cancelled at shutdown: open streams end so the server can stop.
    pub(crate) shutdown: CancellationToken,
}

impl SidecarApi {
    /// The API over `scope`, with caches of its own and the future that keeps them current.
    pub fn new(
        client: Client,
        scope: Scope,
        audience: &str,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
    ) -> (Arc<SidecarApi>, impl Future<Output = ()> + Send + 'static) {
        let (caches, feeding) = Caches::start(&client, &scope);
        let api = SidecarApi::over(&caches, client, scope, audience, metrics, shutdown);
        (api, feeding)
    }

    /// The API over `scope`, reading `caches` (which the caller keeps current).
    pub fn over(
        caches: &Caches,
        client: Client,
        scope: Scope,
        audience: &str,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
    ) -> Arc<SidecarApi> {
        let index = Index::new(caches);
        let audiences = if audience.is_empty() {
            Vec::new()
        } else {
            vec![audience.to_owned()]
        };
        let api = SidecarApi {
            client,
            scope,
            index,
            audiences,
            metrics,
            stream_lifetime: STREAM_LIFETIME,
            ca: None,
            tls: None,
            reserved_id: None,
            shutdown,
        };
        Arc::new(api)
    }

    /// Signs workload certificates with `ca` (before the API is shared), and reports as Dapr's
    /// Sentry from now on.
    pub fn with_ca(mut self: Arc<Self>, ca: Arc<crate::ca::ControlPlaneCa>) -> Arc<Self> {
        if let Some(api) = Arc::get_mut(&mut self) {
            if let Err(error) = api.metrics.ca_loaded(ca.issuer_not_after()) {
                tracing::warn!(%error, "the CA's metrics cannot be registered");
            }
            api.ca = Some(Arc::new(crate::ca::CurrentCa::new(ca)));
        }
        self
    }

    /// Replaces the CA in use when Secret `namespace/name` changes, until shutdown (in the
    /// background; nothing to follow without a CA).
    pub fn follow_ca_secret(&self, namespace: &str, name: &str) {
        let Some(current) = self.ca.clone() else {
            return;
        };
        let following = crate::ca::follow(
            self.client.clone(),
            namespace.to_owned(),
            name.to_owned(),
            current,
            Arc::clone(&self.metrics),
            crate::ca::FOLLOW_INTERVAL,
            self.shutdown.clone(),
        );
        tokio::spawn(following.instrument(tracing::info_span!("ca_follow", %namespace, %name)));
    }

    /// Serves over TLS with a certificate the CA issues for `id` (kept current in the background;
    /// nothing changes without a CA). Before the API is shared.
    pub fn with_tls(
        mut self: Arc<Self>,
        id: ServingIdentity,
        check_interval: Duration,
    ) -> Result<Arc<Self>, crate::ca::CaError> {
        let Some(current) = self.ca.clone() else {
            return Ok(self);
        };
        let spiffe_id = id.spiffe_id.clone();
        let cert = crate::ca::serving::start(
            self.client.clone(),
            current,
            id,
            check_interval,
            self.shutdown.clone(),
        )?;
        if let Some(api) = Arc::get_mut(&mut self) {
            tracing::info!(%spiffe_id, "the sidecar API serves TLS");
            api.tls = Some(cert);
            api.reserved_id = Some(spiffe_id);
        }
        Ok(self)
    }

    /// Shorter streams (tests).
    pub fn with_stream_lifetime(mut self: Arc<Self>, lifetime: Duration) -> Arc<Self> {
        if let Some(api) = Arc::get_mut(&mut self) {
            api.stream_lifetime = lifetime;
        }
        self
    }
}

/// Serves the API on `listener` (over TLS when it has a certificate) until `api.shutdown` is
/// cancelled, keeping its cache current.
pub async fn serve(
    api: Arc<SidecarApi>,
    feeding: impl Future<Output = ()> + Send + 'static,
    listener: tokio::net::TcpListener,
) -> std::io::Result<()> {
    let shutdown = api.shutdown.clone();
    let feeding = tokio::spawn(feeding.instrument(tracing::info_span!("sidecar_api_cache")));
    let served = match api.tls.clone() {
        Some(cert) => {
            let config = tandem_webhook_tls::server_config(cert).map_err(std::io::Error::other)?;
            tandem_webhook_tls::serve(listener, config, router(api), shutdown)
                .await
                .map_err(std::io::Error::other)
        }
        None => {
            axum::serve(listener, router(api))
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await
        }
    };
    feeding.abort();
    served
}
