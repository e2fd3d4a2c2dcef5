//! Start-up and shutdown, in the order config → bind → build → spawn → drain. `config` validates
//! everything (exit 64 on bad config, before any port is bound); then every port is bound, the
//! sidecar registers with the local registry, the [`Sidecar`] handle and its workers are built,
//! servers and background work spawned, and components initialise in the background (a fatal
//! init failure exits 1). On SIGTERM (or `/v1.0/shutdown`, or the app exiting in `run` mode):
//! stop accepting, let in-flight requests and deliveries finish within the grace period, close
//! components, exit.

use crate::blocks::{AppConnection, Sidecar, SidecarParts};
use crate::channels::app::http::{AppHttp, HttpAppChannel};
use crate::channels::app::{AppChannel, grpc::GrpcAppChannel};
use crate::channels::peer::Peers;
use crate::cli::{AppProtocol, Cli, Command, SidecarArgs};
use crate::components::{PlanContext, Registry};
use crate::config::{Kubernetes, Prepared, connect, prepare, usage_error};
use crate::grpc_api;
use crate::http_api;
use crate::kubernetes;
use crate::metrics::Metrics;
use crate::reload::Reloader;
use crate::resolve::Resolver;
use crate::resolve::local::{self, LocalResolver};
use crate::workers::Workers;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// How often standalone mode looks at `--resources-path` for changed components.
const RESOURCES_CHECK: Duration = Duration::from_secs(1);

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

/// Every listener, bound before anything else starts.
struct Listeners {
    api: Vec<TcpListener>,
    grpc: Vec<TcpListener>,
    public: TcpListener,
    internal: TcpListener,
    metrics: Option<TcpListener>,
}

async fn bind(addr: SocketAddr, what: &str) -> Result<TcpListener, String> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr} ({what}): {e}"))
}

impl Listeners {
    /// `metrics`: whether the metrics port opens (`--enable-metrics` and `spec.metric.enabled`).
    async fn bind(
        args: &SidecarArgs,
        internal_ip: IpAddr,
        metrics: bool,
    ) -> Result<Listeners, String> {
        let (mut api, mut grpc) = (Vec::new(), Vec::new());
        for ip in args
            .listen_addresses()
            .iter()
            .filter_map(|a| a.parse().ok())
        {
            let addr = SocketAddr::new(ip, args.dapr_http_port);
            api.push(bind(addr, "--dapr-http-port").await?);
            let addr = SocketAddr::new(ip, args.dapr_grpc_port);
            grpc.push(bind(addr, "--dapr-grpc-port").await?);
        }
        let everywhere = |port| SocketAddr::from(([0, 0, 0, 0], port));
        let public = bind(everywhere(args.dapr_public_port), "--dapr-public-port").await?;
        let internal_addr = SocketAddr::new(internal_ip, args.dapr_internal_grpc_port);
        let internal = bind(internal_addr, "--dapr-internal-grpc-port").await?;
        let metrics = match metrics {
            true => Some(bind(everywhere(args.metrics_port), "--metrics-port").await?),
            false => None,
        };
        Ok(Listeners {
            api,
            grpc,
            public,
            internal,
            metrics,
        })
    }
}

/// The resolver for peers, and this sidecar's entry in the local registry (standalone mode).
fn peers(
    args: &SidecarArgs,
    namespace: Option<&str>,
    kubernetes: Option<&Kubernetes>,
) -> Result<(Arc<dyn Resolver>, Option<local::Registration>), String> {
    let registry_dir = args.data_dir().join("registry");
    if let Some(mode) = kubernetes {
        return Ok((Arc::new(kubernetes::resolver(args, &mode.identity)?), None));
    }
    let resolver = Arc::new(LocalResolver::new(
        registry_dir.clone(),
        namespace.map(str::to_owned),
    ));
    if args.app_id.is_empty() {
        return Ok((resolver, None));
    }
    let entry = local::Entry {
        app_id: args.app_id.clone(),
        namespace: namespace.map(str::to_owned),
        address: SocketAddr::from(([127, 0, 0, 1], args.dapr_internal_grpc_port)),
        pid: std::process::id(),
    };
    let registration = local::register(&registry_dir, &entry)
        .map_err(|e| format!("cannot register in {}: {e}", registry_dir.display()))?;
    Ok((resolver, Some(registration)))
}

/// Servers on every listener; `stop` ends their accepting.
fn spawn_servers(
    sc: &Arc<Sidecar>,
    listeners: Listeners,
    internal_tls: Option<crate::security::tls::Acceptor>,
    stop: &CancellationToken,
) -> TaskTracker {
    let servers = TaskTracker::new();
    let spawn = |listener: TcpListener, router: axum::Router, name: &'static str| {
        servers.spawn(
            crate::server::serve(listener, router, stop.clone())
                .instrument(tracing::info_span!("server", name)),
        );
    };
    for listener in listeners.api {
        spawn(listener, http_api::api_router(sc.clone()), "api");
    }
    for listener in listeners.grpc {
        spawn(listener, grpc_api::router(sc.clone()), "grpc");
    }
    spawn(
        listeners.public,
        http_api::public_router(sc.clone()),
        "public",
    );
    // The internal port speaks mTLS only, when it is on.
    servers.spawn(
        crate::server::serve_with(
            listeners.internal,
            http_api::internal_router(sc.clone()),
            stop.clone(),
            internal_tls,
        )
        .instrument(tracing::info_span!("server", name = "internal")),
    );
    if let Some(listener) = listeners.metrics {
        spawn(listener, http_api::metrics_router(sc.clone()), "metrics");
    }
    servers.close();
    servers
}

/// Components initialise, the app channel waits for the app, workers start, and in Kubernetes
/// mode the operator's changes are followed. A fatal component failure sets `exit` to 1 and
/// shuts down.
fn spawn_background(
    sc: &Arc<Sidecar>,
    workers: &Arc<Workers>,
    (standalone, kubernetes): (Option<PlanContext>, Option<Kubernetes>),
    grace: Duration,
    exit: &Arc<Mutex<ExitCode>>,
) {
    let (init_sc, exit) = (sc.clone(), exit.clone());
    tokio::spawn(
        async move {
            if let Err(message) = init_sc
                .registry()
                .init_all_counted(Some(init_sc.metrics().components()))
                .await
            {
                tracing::error!(%message, "fatal: a component failed to initialise");
                eprintln!("tandem-sidecar: {message}");
                *exit.lock().unwrap_or_else(|p| p.into_inner()) = ExitCode::FAILURE;
                init_sc.shutdown().cancel();
            }
        }
        .instrument(tracing::info_span!("components")),
    );
    if let Some(app) = sc.app().cloned() {
        let stop = sc.shutdown().clone();
        tokio::spawn(
            async move { app.wait_until_reachable(stop).await }
                .instrument(tracing::info_span!("app_channel")),
        );
    }
    if let (Some(app), Some(check)) = (sc.app().cloned(), sc.app_health_check().cloned()) {
        let probes = crate::channels::app::health::probe_app(
            app,
            check,
            sc.app_health_sender(),
            sc.metrics().clone(),
            sc.shutdown().clone(),
        );
        tokio::spawn(probes.instrument(tracing::info_span!("app_health")));
    }
    if let Some(mode) = kubernetes {
        let (updates_tx, updates) = tokio::sync::watch::channel(mode.first.clone());
        tokio::spawn(
            mode.control_plane
                .clone()
                .watch(updates_tx, sc.shutdown().clone())
                .instrument(tracing::info_span!("operator")),
        );
        let reloader = Reloader::new(sc.clone(), workers.clone(), grace);
        tokio::spawn(
            kubernetes::follow(reloader, mode.ctx, mode.control_plane, mode.first, updates)
                .instrument(tracing::info_span!("component_updates")),
        );
    }
    if let Some(ctx) = standalone.filter(|ctx| !ctx.resources_paths.is_empty()) {
        let reloader = Reloader::new(sc.clone(), workers.clone(), grace);
        tokio::spawn(
            crate::reload::follow_resources(reloader, ctx, RESOURCES_CHECK)
                .instrument(tracing::info_span!("component_updates")),
        );
    }
    workers.start();
    crate::actors::start(sc.clone());
}

async fn serve(p: Prepared, app_command: Option<Vec<String>>) -> Result<ExitCode, String> {
    let Prepared {
        args,
        plan,
        prebuilt,
        config,
        traces,
        metrics,
        env,
        standalone,
        kubernetes,
    } = p;
    if let Err(e) = crate::security::validate(&config) {
        return Ok(usage_error(e));
    }
    let serve_metrics = args.enable_metrics && metrics.enabled;
    let metrics = Metrics::with_settings(&args.app_id, env.namespace.as_deref(), metrics)
        .map_err(|e| format!("metrics: {e}"))?;
    let workload = crate::security::start_mtls(
        crate::security::MtlsStart {
            enabled: args.mtls.enable_mtls,
            control_plane: kubernetes.as_ref().map(|k| &k.control_plane),
            ttl: args.mtls.mtls_cert_ttl,
            data_dir: &args.data_dir(),
            app_id: &args.app_id,
            namespace: env.namespace.as_deref(),
            config: &config,
        },
        metrics.security(),
    )
    .await?;
    let listeners = Listeners::bind(&args, env.internal_ip, serve_metrics).await?;
    let (resolver, registration) = peers(&args, env.namespace.as_deref(), kubernetes.as_ref())?;
    let (peers, internal_tls) = peer_channel(resolver, workload.as_ref())?;
    let peers = peers.measured(metrics.http().clone());
    let app = app_channel(&args, env.app_token, &metrics)?;
    let sc = Arc::new(Sidecar::new(SidecarParts {
        app_id: args.app_id.clone(),
        namespace: env.namespace,
        registry: Registry::new(plan, prebuilt),
        config,
        app,
        app_connection: AppConnection {
            port: args.app_port,
            protocol: args.app_protocol.as_str(),
            channel_address: args.app_channel_address.clone(),
        },
        app_health_check: args.app_health.check(),
        peers,
        security: crate::security::Security::new(workload.clone(), metrics.security().clone()),
        metrics,
        max_body_size: args.max_body_size,
        api_token: env.api_token,
        shutdown: CancellationToken::new(),
        internal_address: SocketAddr::new(env.internal_ip, args.dapr_internal_grpc_port)
            .to_string(),
    }));
    crate::traces::install(&traces, &args.app_id, sc.metrics().registry())?;
    let workers = Workers::new(&sc);
    let stop_accepting = CancellationToken::new();
    let servers = spawn_servers(&sc, listeners, internal_tls, &stop_accepting);
    if let Some(w) = workload {
        tokio::spawn(
            w.renew(sc.shutdown().clone())
                .instrument(tracing::info_span!("mtls_renewal")),
        );
    }
    tracing::info!(app_id = %args.app_id, http = args.dapr_http_port, grpc = args.dapr_grpc_port, internal = args.dapr_internal_grpc_port, "tandem sidecar started");

    let grace = Duration::from_secs(args.dapr_graceful_shutdown_seconds);
    let exit = Arc::new(Mutex::new(ExitCode::SUCCESS));
    spawn_background(&sc, &workers, (standalone, kubernetes), grace, &exit);
    let child = match app_command {
        Some(command) => Some(
            crate::child::spawn_app(&command, &args)
                .map_err(|e| format!("cannot start the app {command:?}: {e}"))?,
        ),
        None => None,
    };
    let app_exit = crate::child::wait_for_shutdown(child, sc.shutdown(), grace).await;
    drain(&sc, &workers, servers, stop_accepting, grace).await;
    drop(registration);
    tracing::info!("stopped");
    let code = *exit.lock().unwrap_or_else(|p| p.into_inner());
    Ok(app_exit.unwrap_or(code))
}

/// The peer channel (over mTLS when this sidecar has a workload identity) and, with mTLS, the
/// acceptor for the internal port.
fn peer_channel(
    resolver: Arc<dyn Resolver>,
    workload: Option<&Arc<crate::security::identity::Workload>>,
) -> Result<(Peers, Option<crate::security::tls::Acceptor>), String> {
    let Some(w) = workload else {
        return Ok((Peers::new(resolver), None));
    };
    let clients = crate::channels::peer::tls::MtlsClients::new(w.clone())
        .map_err(|e| format!("mTLS client: {e}"))?;
    let acceptor =
        crate::security::tls::Acceptor::new(w).map_err(|e| format!("mTLS server: {e}"))?;
    Ok((Peers::with_mtls(resolver, clients), Some(acceptor)))
}

/// The channel to the app, when it has a port: gRPC or HTTP as `--app-protocol` says.
fn app_channel(
    args: &SidecarArgs,
    app_token: Option<http::HeaderValue>,
    metrics: &Metrics,
) -> Result<Option<Arc<dyn AppChannel>>, String> {
    let Some(port) = args.app_port else {
        return Ok(None);
    };
    let http = |protocol| {
        HttpAppChannel::new(
            &args.app_channel_address,
            port,
            protocol,
            &args.app_id,
            app_token.clone(),
            metrics.http().clone(),
        )
    };
    let grpc = |tls| {
        GrpcAppChannel::new(
            &args.app_channel_address,
            port,
            tls,
            app_token.clone(),
            args.max_body_size,
            metrics.grpc().clone(),
        )
    };
    let channel: Arc<dyn AppChannel> = match args.app_protocol {
        AppProtocol::Http => Arc::new(http(AppHttp::Http1)?),
        AppProtocol::Https => Arc::new(http(AppHttp::Https)?),
        AppProtocol::H2c => Arc::new(http(AppHttp::H2c)?),
        AppProtocol::Grpc => Arc::new(grpc(false)?),
        AppProtocol::Grpcs => Arc::new(grpc(true)?),
    };
    Ok(Some(channel))
}

/// Shutdown after the signal: actors first, while the API still serves the turns in progress
/// (drain, deactivate, hand the shards off); then stop accepting and let in-flight requests and
/// deliveries finish within the grace period; then close components and flush traces.
async fn drain(
    sc: &Arc<Sidecar>,
    workers: &Workers,
    servers: TaskTracker,
    stop_accepting: CancellationToken,
    grace: Duration,
) {
    if tokio::time::timeout(grace, crate::actors::stop(sc))
        .await
        .is_err()
    {
        tracing::warn!(?grace, "actors still draining after the grace period");
    }
    // Invocations arriving from now on are answered "not run" (callers try another instance),
    // and idle peer connections stay open until every caller's pool has let go of them.
    let peers = sc.peers().drain();
    peers.begin();
    let linger = peers.pools_expire_in().min(grace);
    if !linger.is_zero() {
        tracing::info!(
            ?linger,
            "shutting down: letting callers' pooled connections expire"
        );
        tokio::time::sleep(linger).await;
    }
    tracing::info!("shutting down: draining in-flight requests");
    stop_accepting.cancel();
    let drained = async {
        servers.wait().await;
        workers.drain().await;
    };
    if tokio::time::timeout(grace, drained).await.is_err() {
        tracing::warn!(
            ?grace,
            "in-flight requests still running after the grace period; stopping anyway"
        );
    }
    sc.registry().close().await;
    crate::traces::shutdown(grace).await;
}
