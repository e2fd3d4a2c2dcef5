//! Start-up and shutdown. Order: validate everything (exit 64 on bad config, before any port is
//! bound), bind every port, register with the local registry, serve, initialise components in
//! the background (a fatal init failure exits 1). On SIGTERM (or `/v1.0/shutdown`, or the app
//! exiting in `run` mode): stop accepting, let in-flight requests finish within the grace period,
//! close components, exit.

use crate::app_channel::AppChannel;
use crate::cli::{Cli, Command, EX_USAGE, Mode, SidecarArgs};
use crate::components::plan::plan_resources;
use crate::components::{Plan, PlanContext, Registry};
use crate::control_plane::ControlPlane;
use crate::kubernetes;
use crate::metrics::Metrics;
use crate::resolve::local::{self, LocalResolver};
use crate::runtime::{AppConnection, Runtime, SharedRuntime};
use http::HeaderValue;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tandem_crds::ConfigurationSpec;
use tandem_crds::annotations::env;
use tandem_crds::control_plane::Resources;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

fn usage_error(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("tandem-sidecar: {message}");
    ExitCode::from(EX_USAGE)
}

/// A `--config` file: a `Configuration` manifest of which only `spec` matters here. Like daprd, a
/// file without `metadata` or `spec` still loads (`tandem_crds::Configuration` requires both, as
/// the apiserver does).
#[derive(serde::Deserialize)]
struct ConfigFile {
    #[serde(default)]
    spec: ConfigurationSpec,
}

fn read_config(path: &std::path::Path) -> Result<ConfigurationSpec, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("--config {}: cannot read: {e}", path.display()))?;
    let config: ConfigFile = serde_norway::from_str(&text)
        .map_err(|e| format!("--config {}: invalid Configuration: {e}", path.display()))?;
    if let Some(rate) = config
        .spec
        .tracing
        .as_ref()
        .and_then(|t| t.sampling_rate.as_deref())
    {
        match rate.parse::<f64>() {
            Ok(r) if (0.0..=1.0).contains(&r) => {}
            _ => {
                return Err(format!(
                    "--config {}: spec.tracing.samplingRate {rate:?} must be between 0 and 1",
                    path.display()
                ));
            }
        }
    }
    Ok(config.spec)
}

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Everything checked before binding.
struct Prepared {
    args: SidecarArgs,
    plan: Plan,
    prebuilt: std::collections::HashMap<String, Arc<dyn crate::components::secrets::SecretStore>>,
    config: ConfigurationSpec,
    app_token: Option<HeaderValue>,
    kubernetes: Option<Kubernetes>,
}

/// Kubernetes mode: who this is, the operator, and what it sent first.
struct Kubernetes {
    identity: kubernetes::Identity,
    control_plane: ControlPlane,
    first: Resources,
    ctx: PlanContext,
}

/// Kubernetes mode: identity from the env, then the first set from the operator. A missing env
/// var is a usage error; an operator that does not answer in time (or refuses) stops start-up.
async fn connect(
    args: &SidecarArgs,
) -> Result<Option<(kubernetes::Identity, ControlPlane, Resources)>, ExitCode> {
    if args.mode != Mode::Kubernetes {
        return Ok(None);
    }
    let identity = kubernetes::Identity::from_env().map_err(usage_error)?;
    let control_plane = kubernetes::control_plane(args, &identity).map_err(usage_error)?;
    match control_plane.fetch_initial(kubernetes::OPERATOR_WAIT).await {
        Ok(first) => {
            tracing::info!(
                components = first.components.len(),
                subscriptions = first.subscriptions.len(),
                "resources from the operator"
            );
            Ok(Some((identity, control_plane, first)))
        }
        Err(error) => {
            tracing::error!(%error, "cannot get components from the operator");
            eprintln!("tandem-sidecar: {error}");
            Err(ExitCode::FAILURE)
        }
    }
}

fn prepare(
    args: SidecarArgs,
    from_operator: Option<(kubernetes::Identity, ControlPlane, Resources)>,
) -> Result<Prepared, String> {
    let config = match (&from_operator, &args.config) {
        (Some((_, _, first)), _) => first
            .configuration
            .as_ref()
            .map(|c| c.spec.clone())
            .unwrap_or_default(),
        (None, Some(path)) => read_config(path)?,
        (None, None) => ConfigurationSpec::default(),
    };
    let app_token = match non_empty_env(env::APP_API_TOKEN) {
        Some(t) => Some(
            HeaderValue::from_str(&t)
                .map_err(|_| format!("{}: not a valid header value", env::APP_API_TOKEN))?,
        ),
        None => None,
    };
    let ctx = PlanContext {
        app_id: args.app_id.clone(),
        namespace: non_empty_env(env::NAMESPACE),
        pod_name: non_empty_env(env::POD_NAME),
        resources_paths: args.resources_path.clone(),
        data_dir: args.data_dir(),
        secrets_from_operator: from_operator.is_some(),
    };
    let (plan, prebuilt, kubernetes) = match from_operator {
        None => {
            let (plan, prebuilt) =
                crate::components::plan::plan(&ctx).map_err(|e| e.to_string())?;
            (plan, prebuilt, None)
        }
        Some((identity, control_plane, first)) => {
            let manifests = kubernetes::manifests(&first, &identity.namespace);
            let (mut plan, prebuilt) =
                plan_resources(&ctx, manifests).map_err(|e| e.to_string())?;
            kubernetes::with_builtin_secret_store(&mut plan, &control_plane);
            let mode = Kubernetes {
                identity,
                control_plane,
                first,
                ctx,
            };
            (plan, prebuilt, Some(mode))
        }
    };
    Ok(Prepared {
        args,
        plan,
        prebuilt,
        config,
        app_token,
        kubernetes,
    })
}

async fn bind(addr: SocketAddr, what: &str) -> Result<TcpListener, String> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr} ({what}): {e}"))
}

/// Runs the sidecar (and, with `run`, the app) until shutdown; returns the process exit code.
pub async fn run(cli: Cli) -> ExitCode {
    let (args, app_command) = match cli.command {
        Some(Command::Run(run)) => (run.sidecar, Some(run.app)),
        None => (cli.sidecar, None),
    };
    crate::telemetry::init_logs(args.log_level, args.log_as_json, &args.app_id);
    let from_operator = match connect(&args).await {
        Ok(from_operator) => from_operator,
        Err(code) => return code,
    };
    let prepared = match prepare(args, from_operator) {
        Ok(p) => p,
        Err(message) => return usage_error(message),
    };
    match serve(prepared, app_command).await {
        Ok(code) => code,
        Err(message) => {
            tracing::error!(%message, "sidecar failed");
            eprintln!("tandem-sidecar: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(p: Prepared, app_command: Option<Vec<String>>) -> Result<ExitCode, String> {
    let Prepared {
        args,
        plan,
        prebuilt,
        config,
        app_token,
        kubernetes,
    } = p;
    let listen: Vec<std::net::IpAddr> = args
        .listen_addresses()
        .iter()
        .filter_map(|a| a.parse().ok())
        .collect();
    let mut api_listeners = Vec::new();
    for ip in &listen {
        api_listeners.push(
            bind(
                SocketAddr::new(*ip, args.dapr_http_port),
                "--dapr-http-port",
            )
            .await?,
        );
    }
    let public = bind(
        SocketAddr::from(([0, 0, 0, 0], args.dapr_public_port)),
        "--dapr-public-port",
    )
    .await?;
    // Standalone peers are on this machine (the registry only advertises 127.0.0.1), and this
    // port reaches the app with its APP_API_TOKEN: keep it off the network. In Kubernetes, peers
    // are other pods: it listens on the pod's IP when the injector passed it, else everywhere.
    let internal_ip: std::net::IpAddr = match &kubernetes {
        Some(_) => non_empty_env(env::POD_IP)
            .map(|ip| {
                ip.parse()
                    .map_err(|_| format!("{}: {ip:?} is not an IP address", env::POD_IP))
            })
            .transpose()?
            .unwrap_or(std::net::IpAddr::from([0, 0, 0, 0])),
        None => std::net::IpAddr::from([127, 0, 0, 1]),
    };
    let internal = bind(
        SocketAddr::new(internal_ip, args.dapr_internal_grpc_port),
        "--dapr-internal-grpc-port",
    )
    .await?;
    let metrics_listener = if args.enable_metrics {
        Some(
            bind(
                SocketAddr::from(([0, 0, 0, 0], args.metrics_port)),
                "--metrics-port",
            )
            .await?,
        )
    } else {
        None
    };

    let namespace = non_empty_env(env::NAMESPACE);
    let registry_dir = args.data_dir().join("registry");
    let resolver: Arc<dyn crate::resolve::Resolver> = match &kubernetes {
        Some(mode) => Arc::new(kubernetes::resolver(&args, &mode.identity)?),
        None => Arc::new(LocalResolver::new(registry_dir.clone(), namespace.clone())),
    };
    let registration = if args.app_id.is_empty() || kubernetes.is_some() {
        None
    } else {
        let entry = local::Entry {
            app_id: args.app_id.clone(),
            namespace: namespace.clone(),
            address: SocketAddr::from(([127, 0, 0, 1], args.dapr_internal_grpc_port)),
            pid: std::process::id(),
        };
        Some(
            local::register(&registry_dir, &entry)
                .map_err(|e| format!("cannot register in {}: {e}", registry_dir.display()))?,
        )
    };

    let shutdown = CancellationToken::new();
    let rt: SharedRuntime = Arc::new(Runtime {
        app_id: args.app_id.clone(),
        namespace: namespace.clone(),
        components: crate::runtime::LiveRegistry::new(Registry::new(plan, prebuilt)),
        app: args
            .app_port
            .map(|port| AppChannel::new(&args.app_channel_address, port)),
        app_connection: AppConnection {
            port: args.app_port,
            protocol: "http",
            channel_address: args.app_channel_address.clone(),
        },
        api_token: non_empty_env(env::DAPR_API_TOKEN),
        app_token,
        resolver,
        peers: Runtime::peer_client(),
        metrics: Metrics::new(&args.app_id).map_err(|e| format!("metrics: {e}"))?,
        config: crate::runtime::Live::new(config),
        max_body_size: args.max_body_size,
        extended: Default::default(),
        shutdown: shutdown.clone(),
        deliveries: TaskTracker::new(),
        subscriptions: Default::default(),
        subscribers: Default::default(),
        input_readers: Default::default(),
    });

    let servers = TaskTracker::new();
    let stop_accepting = CancellationToken::new();
    for listener in api_listeners {
        spawn_server(
            &servers,
            listener,
            crate::api::api_router(rt.clone()),
            &stop_accepting,
            "api",
        );
    }
    spawn_server(
        &servers,
        public,
        crate::api::public_router(rt.clone()),
        &stop_accepting,
        "public",
    );
    spawn_server(
        &servers,
        internal,
        crate::api::internal_router(rt.clone()),
        &stop_accepting,
        "internal",
    );
    if let Some(listener) = metrics_listener {
        spawn_server(
            &servers,
            listener,
            crate::api::metrics_router(rt.clone()),
            &stop_accepting,
            "metrics",
        );
    }
    servers.close();
    tracing::info!(app_id = %args.app_id, http = args.dapr_http_port, internal = args.dapr_internal_grpc_port, "tandem sidecar started");

    let exit = Arc::new(std::sync::Mutex::new(ExitCode::SUCCESS));
    {
        let (rt, exit) = (rt.clone(), exit.clone());
        tokio::spawn(
            async move {
                if let Err(message) = rt.registry().init_all().await {
                    tracing::error!(%message, "fatal: a component failed to initialise");
                    eprintln!("tandem-sidecar: {message}");
                    *exit.lock().unwrap_or_else(|p| p.into_inner()) = ExitCode::FAILURE;
                    rt.shutdown.cancel();
                }
            }
            .instrument(tracing::info_span!("components")),
        );
    }
    if let Some(app) = rt.app.clone() {
        let stop = shutdown.clone();
        tokio::spawn(
            async move { app.wait_until_reachable(stop).await }
                .instrument(tracing::info_span!("app_channel")),
        );
    }
    if let Some(mode) = kubernetes {
        let (updates_tx, updates) = tokio::sync::watch::channel(mode.first.clone());
        tokio::spawn(
            mode.control_plane
                .clone()
                .watch(updates_tx, shutdown.clone())
                .instrument(tracing::info_span!("operator")),
        );
        let grace = Duration::from_secs(args.dapr_graceful_shutdown_seconds);
        tokio::spawn(
            kubernetes::follow(
                rt.clone(),
                mode.ctx,
                mode.control_plane,
                mode.first,
                updates,
                grace,
            )
            .instrument(tracing::info_span!("component_updates")),
        );
    }
    tokio::spawn(crate::pubsub::start(rt.clone()).instrument(tracing::info_span!("pubsub")));
    tokio::spawn(
        crate::input_bindings::start(rt.clone()).instrument(tracing::info_span!("bindings")),
    );
    let child = match app_command {
        Some(command) => Some(
            crate::child::spawn_app(&command, &args)
                .map_err(|e| format!("cannot start the app {command:?}: {e}"))?,
        ),
        None => None,
    };

    let app_exit = crate::child::wait_for_shutdown(
        child,
        &shutdown,
        Duration::from_secs(args.dapr_graceful_shutdown_seconds),
    )
    .await;

    // Drain: stop accepting, let in-flight requests finish within the grace period.
    tracing::info!("shutting down: draining in-flight requests");
    stop_accepting.cancel();
    let grace = Duration::from_secs(args.dapr_graceful_shutdown_seconds);
    rt.deliveries.close();
    let drained = async {
        servers.wait().await;
        rt.deliveries.wait().await;
    };
    if tokio::time::timeout(grace, drained).await.is_err() {
        tracing::warn!(
            ?grace,
            "in-flight requests still running after the grace period; stopping anyway"
        );
    }
    rt.registry().close().await;
    drop(registration);
    tracing::info!("stopped");
    let code = *exit.lock().unwrap_or_else(|p| p.into_inner());
    Ok(app_exit.unwrap_or(code))
}

fn spawn_server(
    tracker: &TaskTracker,
    listener: TcpListener,
    router: axum::Router,
    stop: &CancellationToken,
    name: &'static str,
) {
    tracker.spawn(
        crate::server::serve(listener, router, stop.clone())
            .instrument(tracing::info_span!("server", name)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<ConfigurationSpec, String> {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, text).expect("write config");
        read_config(&path)
    }

    #[test]
    fn reads_a_configuration_manifest_and_tolerates_missing_metadata_or_spec() {
        let full = read("apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata: {name: c}\nspec: {tracing: {samplingRate: '0.5'}, metrics: {enabled: true}}\n")
            .expect("a full manifest loads");
        assert_eq!(
            full.tracing.and_then(|t| t.sampling_rate).as_deref(),
            Some("0.5")
        );
        assert_eq!(full.metric, Some(serde_json::json!({"enabled": true})));
        let bare = read("spec: {features: [{name: Resiliency, enabled: true}]}\n")
            .expect("no metadata is fine");
        assert_eq!(bare.features[0].name, "Resiliency");
        assert_eq!(
            read("kind: Configuration\n").expect("no spec is fine"),
            ConfigurationSpec::default()
        );
        let bad = read("spec: {tracing: {samplingRate: '2'}}\n").expect_err("out of range");
        assert!(
            bad.contains("samplingRate \"2\" must be between 0 and 1"),
            "{bad}"
        );
    }
}
