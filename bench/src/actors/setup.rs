//! B9's setup: the command line, the sidecars of a phase (pinned, with their data dir and, with
//! `--redis`, a Redis actor store), and the Markdown rows both phases print.

use super::{ActorApp, HttpClient, call};
use crate::procfs;
use crate::sidecar_proc::{SidecarProc, SidecarSpec};
use bytes::Bytes;
use clap::Parser;
use http::Method;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// `actors-bench`'s flags.
#[derive(Parser, Clone)]
#[command(name = "actors-bench")]
pub struct Args {
    /// The release `tandem-sidecar` binary.
    #[arg(long)]
    pub sidecar: PathBuf,
    /// Working directory (data dirs, component files, logs).
    #[arg(long)]
    pub dir: PathBuf,
    /// Fresh actor ids activated, and the open-loop rate (calls/s).
    #[arg(long, default_value_t = 10_000)]
    pub ids: u64,
    #[arg(long, default_value_t = 500)]
    pub rate: u64,
    /// Interleaved warm-throughput rounds and the length of each run (s).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    #[arg(long, default_value_t = 5.0)]
    pub warm_secs: f64,
    #[arg(long, default_value_t = 16)]
    pub conns: usize,
    /// Reminders registered, over this many actor ids, by this many closed-loop callers.
    #[arg(long, default_value_t = 100_000)]
    pub reminders: u64,
    #[arg(long, default_value_t = 10_000)]
    pub reminder_actors: u64,
    #[arg(long, default_value_t = 16)]
    pub reg_workers: usize,
    /// Pin every sidecar to this CPU (`taskset -c`); the caller pins this process elsewhere.
    #[arg(long)]
    pub cpu: Option<u32>,
    /// `host:port` of a Redis server to use as the actor store instead of the embedded SQLite one.
    #[arg(long)]
    pub redis: Option<String>,
}

/// The in-process apps: the actor app and the echo app behind B1's chain.
pub struct Apps {
    pub actor_port: u16,
    pub echo_port: u16,
    pub actor: ActorApp,
}

pub fn spec(
    args: &Args,
    data: &str,
    app_id: &str,
    app_port: Option<u16>,
    log: &str,
) -> SidecarSpec {
    SidecarSpec {
        binary: args.sidecar.clone(),
        app_id: app_id.to_owned(),
        app_port,
        data_dir: args.dir.join(data),
        resources: args
            .redis
            .as_ref()
            .map(|_| args.dir.join(format!("{data}-res"))),
        cpu: args.cpu,
        log: args.dir.join(format!("{log}.log")),
    }
}

/// Starts the sidecars of `specs` and waits until each is ready.
pub fn start_all(specs: &[SidecarSpec]) -> anyhow::Result<Vec<SidecarProc>> {
    let mut procs = specs
        .iter()
        .map(SidecarProc::start)
        .collect::<anyhow::Result<Vec<_>>>()?;
    for (p, s) in procs.iter_mut().zip(specs) {
        p.wait_ready(Duration::from_secs(30), &s.log)?;
    }
    Ok(procs)
}

/// The Redis component for a phase's data dir, when `--redis` is set.
pub fn write_store(args: &Args, data: &str) -> anyhow::Result<()> {
    let Some(addr) = &args.redis else {
        return Ok(());
    };
    let res = args.dir.join(format!("{data}-res"));
    std::fs::create_dir_all(&res)?;
    let yaml = format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {{name: actorstore}}\nspec:\n  type: state.redis\n  version: v1\n  metadata:\n  - {{name: redisHost, value: \"{addr}\"}}\n  - {{name: actorStateStore, value: \"true\"}}\n  - {{name: keyPrefix, value: \"{data}\"}}\n"
    );
    std::fs::write(res.join("actorstore.yaml"), yaml)?;
    Ok(())
}

/// Calls each URL until it answers 2xx (placement may still be settling), up to `timeout`.
pub async fn until_ok(c: &HttpClient, urls: &[String], body: &Bytes, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    for url in urls {
        loop {
            match call(c, Method::PUT, url, body.clone()).await {
                Some(s) if (200..300).contains(&s) => break,
                _ if Instant::now() > deadline => return false,
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
    true
}

pub fn rss_mib(pid: u32) -> String {
    procfs::sample(pid)
        .map(|s| format!("{:.1}", s.rss_kb as f64 / 1024.0))
        .unwrap_or_else(|_| "gone".into())
}

pub fn ms(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.2} ms"))
        .unwrap_or_else(|| "–".into())
}

pub fn row(measure: &str, tandem: &str, baseline: &str, target: &str) {
    println!("| {measure} | {tandem} | {baseline} | {target} |");
}
