//! Tandem's sidecar injector: a mutating admission webhook that adds the `daprd` container to
//! pods annotated `dapr.io/enabled`.
//!
//! Data flow: [`config`] validates the flags → [`run`] gets the serving certificate from its
//! Secret (tandem-webhook-tls, shared by all replicas) → [`server`] answers `POST /mutate` over
//! TLS: [`admission`] decodes the AdmissionReview and decides, [`settings`] reads the
//! annotations, [`patch`] builds the JSON Patch (all three pure) → [`webhook_config`] keeps the
//! MutatingWebhookConfiguration's caBundle equal to our CA → [`trust`] keeps the control plane's
//! trust anchors each sidecar gets → [`admin`] serves health, readiness and [`metrics`].

pub mod admin;
pub mod admission;
pub mod config;
pub mod metrics;
pub mod patch;
pub mod server;
pub mod settings;
pub mod trust;
pub mod webhook_config;

pub use config::{Args, InjectorConfig};

use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot reach the Kubernetes API: {0}")]
    Client(#[source] kube::Error),
    #[error("cannot load the serving certificate: {0}")]
    Certificate(#[from] tandem_webhook_tls::secret::Error),
    #[error("cannot use the serving certificate: {0}")]
    Tls(#[from] tandem_webhook_tls::tls::Error),
    #[error("cannot register metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the {0} server stopped unexpectedly")]
    ServerStopped(&'static str),
}

/// Runs the injector with the in-cluster (or kubeconfig) client until SIGTERM/SIGINT.
pub async fn run(config: InjectorConfig) -> Result<(), Error> {
    tandem_rt::init_tracing(config.log_as_json);
    let client = kube::Client::try_default().await.map_err(Error::Client)?;
    let shutdown = CancellationToken::new();
    tokio::spawn(tandem_rt::cancel_on_signal(shutdown.clone()));
    run_with_client(config, client, shutdown).await
}

/// Runs the injector with `client` until `shutdown` is cancelled; tests call this directly.
pub async fn run_with_client(
    config: InjectorConfig,
    client: kube::Client,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let config = Arc::new(config);
    let metrics = Arc::new(metrics::Metrics::new()?);
    let readiness = admin::Readiness::default();

    let admin_listener = bind(config.admin_addr).await?;
    let admin_served = tokio::spawn(
        serve_plain(
            admin_listener,
            admin::router(metrics.clone(), readiness.clone()),
            shutdown.clone(),
        )
        .instrument(tracing::info_span!("admin")),
    );

    let certs = tandem_webhook_tls::ensure(
        client.clone(),
        &config.namespace,
        &config.tls_secret_name,
        &config.sans,
    )
    .await?;
    let cert = tandem_webhook_tls::ServingCert::new(certs)?;
    let tls = tandem_webhook_tls::server_config(cert.clone())?;
    let listener = bind(config.addr).await?;
    tracing::info!(addr = %config.addr, admin = %config.admin_addr, "serving /mutate");

    tokio::spawn(
        tandem_webhook_tls::refresh(
            client.clone(),
            config.namespace.clone(),
            config.tls_secret_name.clone(),
            config.sans.clone(),
            cert.clone(),
            tandem_webhook_tls::REFRESH_INTERVAL,
            shutdown.clone(),
        )
        .instrument(tracing::info_span!("cert_refresh")),
    );
    tokio::spawn(
        trust::follow(
            client.clone(),
            config.control_plane_trust.clone(),
            trust::FOLLOW_INTERVAL,
            shutdown.clone(),
        )
        .instrument(tracing::info_span!("trust_anchors")),
    );
    // Ready (after the caBundle sync) only once sidecars can get their trust anchors.
    let syncing = webhook_config::sync_ca_bundle(
        client.clone(),
        config.webhook_config_name.clone(),
        cert,
        metrics.clone(),
        readiness,
        shutdown.clone(),
    );
    let trust = config.control_plane_trust.clone();
    let anchors_first = async move {
        trust.ready().await;
        syncing.await;
    };
    tokio::spawn(anchors_first.instrument(tracing::info_span!("ca_bundle")));
    let router = server::router(server::WebhookState {
        config: config.clone(),
        metrics,
    });
    let webhook_served = tokio::spawn(
        tandem_webhook_tls::serve(listener, tls, router, shutdown.clone())
            .instrument(tracing::info_span!("webhook")),
    );

    // Either server ending before shutdown is a failure: stop everything and exit non-zero.
    let result = tokio::select! {
        served = webhook_served => match served {
            Ok(Ok(())) if shutdown.is_cancelled() => Ok(()),
            Ok(Err(error)) => Err(Error::Tls(error)),
            _ => Err(Error::ServerStopped("webhook")),
        },
        served = admin_served => match served {
            Ok(()) if shutdown.is_cancelled() => Ok(()),
            _ => Err(Error::ServerStopped("admin")),
        },
    };
    shutdown.cancel();
    result
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })
}

async fn serve_plain(listener: TcpListener, router: axum::Router, shutdown: CancellationToken) {
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await;
    if let Err(error) = served {
        tracing::error!(%error, "admin server failed");
    }
}
