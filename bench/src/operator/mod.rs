//! B10: `tandem-operator` against a real control plane (tandem-envtest's etcd + kube-apiserver).
//!
//! For each size N: a fresh control plane with the dapr.io CRDs, N Components (every
//! [`INVALID_EVERY`]th of an unknown type) and N Dapr-annotated Deployments spread over a few
//! namespaces. Then the operator binary runs twice over the same objects: first with
//! `--noop-reconcile` (the baseline: the same watches and queues, reconciles that do nothing), then
//! for real. Each run is timed from exec: the first reconcile (the operator's own
//! `tandem_operator_reconciles_total`, polled on its admin port), the end (baseline: every object
//! reconciled once; real: every Component has a `Ready` condition for its current generation and
//! every Deployment its `<app-id>-dapr` Service, seen through watches), the reconciles per second
//! in between, and the memory (`VmHWM`, and `VmRSS` after a rest) from /proc.

mod fixtures;
mod table;

pub use fixtures::{INVALID_EVERY, component, deployment, namespace_of};
pub use table::{
    TARGET_FIRST_RECONCILE_MS, TARGET_RECONCILES_PER_S, TARGET_RSS_MB, TARGET_SIDECAR_MB, records,
    table,
};

use crate::procfs;
use anyhow::{Context as _, bail};
use fixtures::{fill, install_crds};
use futures_util::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::Service;
use kube::api::Api;
use kube::runtime::watcher;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tandem_crds::Component;
use tandem_envtest::{Assets, ControlPlane};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

/// How often the admin port is asked for the reconcile count.
const METRICS_POLL: Duration = Duration::from_millis(5);

/// What one benchmark run needs.
#[derive(Debug, Clone)]
pub struct Config {
    pub operator_bin: PathBuf,
    pub namespaces: usize,
    /// How long the operator rests after the end before its RSS is read.
    pub rest: Duration,
    /// Give up on a run after this long.
    pub timeout: Duration,
    /// Extra environment variables for the operator (`KEY`, `VALUE`).
    pub env: Vec<(String, String)>,
}

/// What one operator run measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunResult {
    /// Exec → the first reconcile counted on `/metrics`.
    pub first_reconcile: Duration,
    /// Exec → every object done, or → the timeout.
    pub done: Duration,
    /// Whether every object was done before the timeout; the Components judged and Services
    /// present then (real runs).
    pub converged: bool,
    pub judged: usize,
    pub services: usize,
    /// Reconciles counted between the first one seen and the end.
    pub reconciles: u64,
    /// `reconciles` over (`done` − `first_reconcile`).
    pub reconciles_per_s: f64,
    pub peak_rss_kb: u64,
    pub rest_rss_kb: u64,
    /// Exec → exit after SIGTERM (`None`: still running after 15 s, then killed).
    pub stop: Option<Duration>,
}

/// One size point: the baseline and the real operator over the same objects.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SizePoint {
    pub n: usize,
    pub baseline: RunResult,
    pub real: RunResult,
}

/// The sum of `tandem_operator_reconciles_total` over every kind, from `/metrics` text.
pub fn reconciles_total(metrics: &str) -> u64 {
    metrics
        .lines()
        .filter(|line| line.starts_with("tandem_operator_reconciles_total"))
        .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
        .map(|value| value as u64)
        .sum()
}

/// Whether the operator has judged this Component's current generation.
pub fn component_done(component: &Component) -> bool {
    let Some(status) = &component.status else {
        return false;
    };
    status.observed_generation.is_some()
        && status.observed_generation == component.metadata.generation
        && status.conditions.iter().any(|c| c.type_ == "Ready")
}

/// Runs one size point on a fresh control plane.
pub async fn measure(n: usize, config: &Config) -> anyhow::Result<SizePoint> {
    let control_plane = ControlPlane::start(Assets::from_env()?).await?;
    let client = control_plane.client().await?;
    install_crds(&client).await?;
    let created = Instant::now();
    fill(&client, n, config.namespaces).await?;
    eprintln!(
        "n={n}: created {n} Components and {n} Deployments in {:.1?}",
        created.elapsed()
    );
    let baseline = run_operator(&control_plane, &client, n, config, true).await?;
    eprintln!("n={n} baseline: {baseline:?}");
    let real = run_operator(&control_plane, &client, n, config, false).await?;
    eprintln!("n={n} real: {real:?}");
    Ok(SizePoint { n, baseline, real })
}

/// Starts the operator, measures it, stops it.
async fn run_operator(
    control_plane: &ControlPlane,
    client: &kube::Client,
    n: usize,
    config: &Config,
    noop: bool,
) -> anyhow::Result<RunResult> {
    let (admin, sidecar_api) = (free_addr()?, free_addr()?);
    let progress = Arc::new(Progress::default());
    let mut done = tokio::spawn(watch_until_done(client.clone(), n, Arc::clone(&progress)));
    let mut command = Command::new(&config.operator_bin);
    command
        .args(["--leader-elect=false", "--admin-addr", &admin.to_string()])
        .args(["--sidecar-api-addr", &sidecar_api.to_string()])
        .arg("--enable-conversion-webhook=false")
        .env("KUBECONFIG", control_plane.kubeconfig())
        .env("RUST_LOG", "warn")
        .envs(config.env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .kill_on_drop(true);
    if noop {
        command.arg("--noop-reconcile");
    }
    let started = Instant::now();
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {}", config.operator_bin.display()))?;
    let pid = child.id().context("the operator exited at once")?;
    let deadline = started + config.timeout;

    let (first_reconcile, first_count) = loop {
        let count = scrape(admin).await.unwrap_or(0);
        if count > 0 {
            break (started.elapsed(), count);
        }
        check_alive(&mut child, deadline)?;
        tokio::time::sleep(METRICS_POLL).await;
    };
    let mut converged = true;
    let (end, end_count) = if noop {
        // The baseline never writes: it is done once every object has been reconciled once.
        let objects = 2 * n as u64;
        loop {
            let count = scrape(admin).await.unwrap_or(0);
            if count >= objects {
                break (started.elapsed(), count);
            }
            check_alive(&mut child, deadline)?;
            tokio::time::sleep(METRICS_POLL).await;
        }
    } else {
        loop {
            tokio::select! {
                finished = &mut done => {
                    let end = finished??.saturating_duration_since(started);
                    break (end, scrape(admin).await.context("/metrics at the end")?);
                }
                () = tokio::time::sleep(Duration::from_millis(200)) => {
                    if Instant::now() > deadline {
                        converged = false;
                        break (started.elapsed(), scrape(admin).await.context("/metrics at the timeout")?);
                    }
                    check_alive(&mut child, deadline)?;
                }
            }
        }
    };
    done.abort();
    let peak = procfs::sample(pid)?;
    tokio::time::sleep(config.rest).await;
    let rest = procfs::sample(pid)?;
    let stop = stop(&mut child, pid).await?;
    let window = end.saturating_sub(first_reconcile).as_secs_f64();
    let reconciles = end_count.saturating_sub(first_count);
    Ok(RunResult {
        first_reconcile,
        done: end,
        converged,
        judged: progress.judged.load(Ordering::Relaxed),
        services: progress.services.load(Ordering::Relaxed),
        reconciles,
        reconciles_per_s: if window > 0.0 {
            reconciles as f64 / window
        } else {
            f64::NAN
        },
        peak_rss_kb: rest.hwm_kb.max(peak.hwm_kb),
        rest_rss_kb: rest.rss_kb,
        stop,
    })
}

/// How far a real run got, as the watches see it.
#[derive(Debug, Default)]
struct Progress {
    judged: AtomicUsize,
    services: AtomicUsize,
}

/// Watches Components and labelled Services until every Component is judged and `n` Services
/// exist; returns when that became true.
async fn watch_until_done(
    client: kube::Client,
    n: usize,
    progress: Arc<Progress>,
) -> anyhow::Result<Instant> {
    let components = watcher(
        Api::<Component>::all(client.clone()),
        watcher::Config::default(),
    )
    .map_ok(|event| (Some(event), None));
    let services = watcher(
        Api::<Service>::all(client),
        watcher::Config::default().labels("dapr.io/enabled=true"),
    )
    .map_ok(|event| (None, Some(event)));
    let mut events = stream::select(components, services).boxed();
    let mut judged: HashMap<String, bool> = HashMap::new();
    let mut services: HashSet<String> = HashSet::new();
    let key = |ns: &Option<String>, name: &Option<String>| format!("{ns:?}/{name:?}");
    while let Some((component, service)) = events.try_next().await? {
        use watcher::Event::{Apply, Delete, InitApply};
        match component {
            Some(Apply(c) | InitApply(c)) => {
                let k = key(&c.metadata.namespace, &c.metadata.name);
                judged.insert(k, component_done(&c));
            }
            Some(Delete(c)) => {
                judged.remove(&key(&c.metadata.namespace, &c.metadata.name));
            }
            _ => {}
        }
        match service {
            Some(Apply(s) | InitApply(s)) => {
                services.insert(key(&s.metadata.namespace, &s.metadata.name));
            }
            Some(Delete(s)) => {
                services.remove(&key(&s.metadata.namespace, &s.metadata.name));
            }
            _ => {}
        }
        let judged_now = judged.values().filter(|done| **done).count();
        progress.judged.store(judged_now, Ordering::Relaxed);
        progress.services.store(services.len(), Ordering::Relaxed);
        if judged_now == n && services.len() >= n {
            return Ok(Instant::now());
        }
    }
    bail!("the watches ended")
}

fn check_alive(child: &mut Child, deadline: Instant) -> anyhow::Result<()> {
    if let Some(status) = child.try_wait()? {
        bail!("the operator exited: {status}");
    }
    if Instant::now() > deadline {
        bail!("the operator did not finish in time");
    }
    Ok(())
}

/// SIGTERM, then how long the operator took to exit; `None` (and SIGKILL) after 15 s.
async fn stop(child: &mut Child, pid: u32) -> anyhow::Result<Option<Duration>> {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(pid)?);
    let started = Instant::now();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)?;
    let exit = tokio::time::timeout(Duration::from_secs(15), child.wait()).await;
    match exit {
        Ok(status) => {
            let status = status?;
            if !status.success() {
                bail!("the operator exited {status} after SIGTERM");
            }
            Ok(Some(started.elapsed()))
        }
        Err(_) => {
            eprintln!("the operator did not stop within 15 s of SIGTERM; killed");
            child.kill().await?;
            Ok(None)
        }
    }
}

/// The reconcile count on the admin port, or `None` when it does not answer (yet).
async fn scrape(addr: SocketAddr) -> Option<u64> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request = format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    let (_, body) = response.split_once("\r\n\r\n")?;
    Some(reconciles_total(body))
}

fn free_addr() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_reconciles_over_kinds() {
        let text = "# HELP x\ntandem_operator_reconciles_total{kind=\"component\"} 12\n\
                    tandem_operator_reconciles_total{kind=\"deployment\"} 30\n\
                    tandem_operator_reconcile_errors_total{kind=\"component\"} 4\n";
        assert_eq!(reconciles_total(text), 42);
        assert_eq!(reconciles_total(""), 0);
    }

    #[test]
    fn a_component_is_done_once_its_generation_is_judged() {
        let mut c: Component = serde_json::from_value(component(1)).expect("component");
        c.metadata.generation = Some(2);
        assert!(!component_done(&c));
        let ready = serde_json::json!({"observedGeneration": 1, "conditions": [{
            "type": "Ready", "status": "True", "reason": "Valid", "message": "",
            "lastTransitionTime": "2026-01-01T00:00:00Z"}]});
        c.status = Some(serde_json::from_value(ready).expect("status"));
        assert!(!component_done(&c), "an older generation");
        if let Some(status) = c.status.as_mut() {
            status.observed_generation = Some(2);
        }
        assert!(component_done(&c));
    }
}
