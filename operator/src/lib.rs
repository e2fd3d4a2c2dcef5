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
//! readiness and Prometheus metrics (`metrics`). Each kind is watched once and cached trimmed to
//! what is read (`cache`); the controllers and the sidecar API share the dapr.io caches.
//!
//! With several replicas, only the one holding the leader Lease (`leader`) runs the controllers;
//! the others wait, serve their admin port, and start the controllers when they win the Lease.

pub mod admin;
pub mod ca;
pub mod cache;
pub mod conditions;
pub mod controller;
pub mod conversion;
pub mod error;
pub mod leader;
pub mod metrics;
mod operator;
pub mod services;
pub mod sidecar_api;

pub use error::{Error, Result};
pub use operator::Operator;

use controller::{Reconciles, Scope};
use leader::{LeaderElection, Timings};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
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
    /// Run the controllers only while holding the leader Lease (`--leader-elect=false`: always).
    #[arg(
        long,
        env = "TANDEM_OPERATOR_LEADER_ELECT",
        default_value_t = true,
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    pub leader_elect: bool,
    /// The namespace of the leader Lease (the operator's own).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub leader_election_namespace: String,
    /// The name of the leader Lease.
    #[arg(long, env = "TANDEM_OPERATOR_LEADER_ELECTION_NAME", default_value = leader::LEASE_NAME)]
    pub leader_election_name: String,
    /// How long the Lease holds after its last renewal, in seconds.
    #[arg(long, env = "TANDEM_OPERATOR_LEASE_DURATION", default_value_t = leader::LEASE_DURATION.as_secs_f64())]
    pub leader_election_lease_duration: f64,
    /// How long the leader may fail to renew before it stops its controllers, in seconds.
    #[arg(long, env = "TANDEM_OPERATOR_RENEW_DEADLINE", default_value_t = leader::RENEW_DEADLINE.as_secs_f64())]
    pub leader_election_renew_deadline: f64,
    /// How often the Lease is renewed or tried for, in seconds.
    #[arg(long, env = "TANDEM_OPERATOR_RETRY_PERIOD", default_value_t = leader::RETRY_PERIOD.as_secs_f64())]
    pub leader_election_retry_period: f64,
    #[command(flatten)]
    pub sidecar_api: sidecar_api::SidecarApiArgs,
    #[command(flatten)]
    pub webhook: conversion::WebhookArgs,
    /// Benchmark baseline (B10): the same watches and queues, every reconcile a no-op.
    #[arg(long, hide = true, env = "TANDEM_OPERATOR_NOOP_RECONCILE")]
    pub noop_reconcile: bool,
}

impl Args {
    /// The leader election timings, checked (client-go's rules).
    pub fn timings(&self) -> Result<Timings> {
        let seconds = |flag: &'static str, value: f64| {
            Duration::try_from_secs_f64(value).map_err(|_| Error::Flag {
                flag,
                message: format!("{value} is not a duration in seconds"),
            })
        };
        let timings = Timings {
            lease_duration: seconds(
                "--leader-election-lease-duration",
                self.leader_election_lease_duration,
            )?,
            renew_deadline: seconds(
                "--leader-election-renew-deadline",
                self.leader_election_renew_deadline,
            )?,
            retry_period: seconds(
                "--leader-election-retry-period",
                self.leader_election_retry_period,
            )?,
        };
        timings.validate().map_err(|message| Error::Flag {
            flag: "--leader-election-*",
            message,
        })?;
        Ok(timings)
    }
}

/// The binary: logging, the in-cluster (or kubeconfig) client, the admin port, the controllers,
/// and a graceful stop on SIGTERM or SIGINT.
pub async fn run(args: Args) -> Result<()> {
    let timings = args.timings()?;
    let Args {
        admin_addr,
        namespace,
        log_as_json,
        leader_elect,
        leader_election_namespace,
        leader_election_name,
        leader_election_lease_duration: _,
        leader_election_renew_deadline: _,
        leader_election_retry_period: _,
        sidecar_api:
            sidecar_api::SidecarApiArgs {
                sidecar_api_addr,
                sidecar_token_audience,
                ca_enabled,
                ca_secret,
                control_plane_trust_domain,
                trust_bundle_configmap,
            },
        webhook,
        noop_reconcile,
    } = args;
    tandem_rt::init_tracing(log_as_json);
    let client = kube::Client::try_default().await.map_err(Error::Client)?;
    let mut operator = Operator::new(client.clone(), namespace.clone())?;
    if noop_reconcile {
        tracing::warn!("--noop-reconcile: reconciles do nothing (benchmark baseline)");
        operator = operator.with_reconciles(Reconciles::Noop);
    }
    if leader_elect {
        let election = LeaderElection::new(
            client.clone(),
            &leader_election_namespace,
            leader_election_name,
            leader::default_identity(),
            timings,
        );
        tracing::info!(identity = election.identity(), lease = %leader_election_namespace, "leader election on");
        operator = operator.with_leader_election(election);
    }
    let listener = tokio::net::TcpListener::bind(admin_addr)
        .await
        .map_err(|source| Error::Admin {
            addr: admin_addr,
            source,
        })?;
    tracing::info!(%admin_addr, "admin port listening");
    let sidecar_listener = tokio::net::TcpListener::bind(sidecar_api_addr)
        .await
        .map_err(|source| Error::SidecarApi {
            addr: sidecar_api_addr,
            source,
        })?;
    tracing::info!(%sidecar_api_addr, "sidecar API listening");
    let shutdown = CancellationToken::new();
    // Every replica serves conversions and keeps the CRD pointing at them, leader or not.
    let conversion = conversion::spawn(
        client.clone(),
        &leader_election_namespace,
        &webhook,
        shutdown.clone(),
    )
    .await?;
    // One cache per dapr.io kind, read by the sidecar API (always) and the controllers (leading).
    let scope = Scope::new(namespace);
    let (caches, feeding) = cache::Caches::start(&client, &scope);
    operator = operator.with_caches(caches.clone());
    // Every replica serves sidecars, leader or not, and signs with the one CA all replicas share.
    let mut sidecar_api = sidecar_api::SidecarApi::over(
        &caches,
        client.clone(),
        scope,
        &sidecar_token_audience,
        operator.metrics(),
        shutdown.clone(),
    );
    if ca_enabled {
        let ca = ca::ensure(client.clone(), &leader_election_namespace, &ca_secret).await?;
        tracing::info!(secret = %ca_secret, namespace = %leader_election_namespace, "control-plane CA loaded");
        sidecar_api = sidecar_api.with_ca(Arc::new(ca));
        sidecar_api.follow_ca_secret(&leader_election_namespace, &ca_secret);
        let id = sidecar_api::ServingIdentity::operator(
            &control_plane_trust_domain,
            &leader_election_namespace,
            &trust_bundle_configmap,
        );
        sidecar_api = sidecar_api.with_tls(id, ca::serving::CHECK_INTERVAL)?;
    } else {
        tracing::warn!("no CA (--ca-enabled false): the sidecar API serves plain HTTP");
    }
    let sidecar_shutdown = shutdown.clone();
    let sidecars = tokio::spawn(
        async move {
            let served = sidecar_api::serve(sidecar_api, feeding, sidecar_listener).await;
            // A replica that cannot serve sidecars must be restarted.
            sidecar_shutdown.cancel();
            served
        }
        .instrument(tracing::info_span!("sidecar_api", %sidecar_api_addr)),
    );
    let signals = tandem_rt::cancel_on_signal(shutdown.clone());
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
    let converted = match conversion {
        Some(running) => running.stopped().await,
        None => Ok(()),
    };
    let served = admin.await.map_err(std::io::Error::other).and_then(|s| s);
    let sidecars_served = sidecars
        .await
        .map_err(std::io::Error::other)
        .and_then(|s| s);
    result?;
    converted?;
    sidecars_served.map_err(|source| Error::SidecarApi {
        addr: sidecar_api_addr,
        source,
    })?;
    served.map_err(|source| Error::Admin {
        addr: admin_addr,
        source,
    })
}
