//! Tandem's operator. It watches the dapr.io resources and the Dapr-enabled workloads of one
//! namespace or all of them, and keeps two things true:
//!
//! - every Component, Subscription and Configuration has a `Ready` condition saying whether a
//!   sidecar could load it, and if not, why (`controller::{component, subscription,
//!   configuration}`, the rules as pure `*_verdict` functions, the status rules in `conditions`);
//! - every Deployment and StatefulSet whose pods have `dapr.io/enabled` owns a headless
//!   `<app-id>-dapr` Service for peer resolution (`services` decides, `controller::workload`
//!   applies).
//!
//! Writes are server-side applies under one field manager, made only when what is there differs
//! from what should be, so a settled cluster sees none. The admin port (`admin`) serves health,
//! readiness and Prometheus metrics (`metrics`).

pub mod admin;
pub mod conditions;
pub mod controller;
pub mod error;
pub mod metrics;
pub mod services;

pub use error::{Error, Result};

use admin::Readiness;
use controller::Scope;
use metrics::Metrics;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// `tandem-operator`'s flags.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "tandem-operator", version, about)]
pub struct Args {
    /// Where to serve /healthz, /readyz and /metrics.
    #[arg(
        long,
        env = "TANDEM_OPERATOR_ADMIN_ADDR",
        default_value = "0.0.0.0:8080"
    )]
    pub admin_addr: SocketAddr,
    /// Watch only this namespace (default: every namespace).
    #[arg(long, env = "TANDEM_OPERATOR_NAMESPACE")]
    pub namespace: Option<String>,
    /// Log JSON lines instead of text (the level comes from RUST_LOG, default info).
    #[arg(long, env = "TANDEM_OPERATOR_LOG_AS_JSON")]
    pub log_as_json: bool,
}

/// The controllers, ready to run against one cluster.
pub struct Operator {
    client: kube::Client,
    scope: Scope,
    metrics: Arc<Metrics>,
    readiness: Readiness,
}

impl Operator {
    /// Controllers over `namespace`, or every namespace when `None`.
    pub fn new(client: kube::Client, namespace: Option<String>) -> Result<Operator> {
        Ok(Operator {
            client,
            scope: Scope::new(namespace),
            metrics: Arc::new(Metrics::new()?),
            readiness: Readiness::default(),
        })
    }

    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.metrics)
    }

    /// Becomes ready once every controller's cache has synced.
    pub fn readiness(&self) -> Readiness {
        self.readiness.clone()
    }

    /// Runs until `shutdown` is cancelled (in-flight reconciles finish first) or a controller
    /// stops by itself (an error).
    pub async fn run(self, shutdown: CancellationToken) -> Result<()> {
        let Operator {
            client,
            scope,
            metrics,
            readiness,
        } = self;
        controller::run(client, scope, metrics, readiness, shutdown).await
    }
}

/// The binary: logging, the in-cluster (or kubeconfig) client, the admin port, the controllers,
/// and a graceful stop on SIGTERM or SIGINT.
pub async fn run(args: Args) -> Result<()> {
    let Args {
        admin_addr,
        namespace,
        log_as_json,
    } = args;
    init_tracing(log_as_json);
    let client = kube::Client::try_default().await.map_err(Error::Client)?;
    let operator = Operator::new(client, namespace)?;
    let listener = tokio::net::TcpListener::bind(admin_addr)
        .await
        .map_err(|source| Error::Admin {
            addr: admin_addr,
            source,
        })?;
    tracing::info!(%admin_addr, "admin port listening");
    let shutdown = CancellationToken::new();
    let signals = cancel_on_signal(shutdown.clone());
    tokio::spawn(signals.instrument(tracing::info_span!("signals")));

    let router = admin::router(operator.metrics(), operator.readiness());
    let admin_shutdown = shutdown.clone();
    let admin = tokio::spawn(
        async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(admin_shutdown.clone().cancelled_owned())
                .await;
            // Without its admin port the operator cannot be probed: stop it too.
            admin_shutdown.cancel();
            served
        }
        .instrument(tracing::info_span!("admin", %admin_addr)),
    );
    let result = operator.run(shutdown.clone()).await;
    shutdown.cancel();
    let served = admin.await.map_err(std::io::Error::other).and_then(|s| s);
    result?;
    served.map_err(|source| Error::Admin {
        addr: admin_addr,
        source,
    })
}

async fn cancel_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stopping");
        shutdown.cancel();
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
    shutdown.cancel();
}

fn init_tracing(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
