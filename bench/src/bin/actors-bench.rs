//! `actors-bench`: benchmark B9 (BENCHMARKS.md), actors through real sidecars. Phase 1: a caller
//! sidecar (no app), two actor hosts (sidecar + the in-process actor app) and sidecar `b` in
//! front of an echo app, all sharing one actor store:
//! - activation: the first call to each of `--ids` fresh ids at `--rate`/s through the caller,
//!   against the same calls sent straight to the app's actor handler;
//! - warm invoke: closed-loop calls to pre-activated ids through the caller, against B1's chain
//!   (caller → `b` → echo app) in interleaved rounds.
//!
//! Phase 2, on fresh hosts and a fresh store: `--reminders` reminders registered through the two
//! hosts (latency of each registration), all due at about the same moment with a period of an
//! hour (so each fires once); triggers per second as the app receives them; each host's RSS
//! before registering, after registering, and after they fired. Prints a Markdown table.

use anyhow::bail;
use bytes::Bytes;
use clap::Parser;
use http::Method;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tandem_bench::actors::{
    ACTOR_TYPE, ActorApp, HttpClient, call, client, closed_loop, closed_loop_n, open_loop,
    peak_per_second,
};
use tandem_bench::procfs;
use tandem_bench::sidecar_proc::{SidecarProc, SidecarSpec};
use tandem_bench::stats::{median, percentile};

#[derive(Parser, Clone)]
#[command(name = "actors-bench")]
struct Args {
    /// The release `tandem-sidecar` binary.
    #[arg(long)]
    sidecar: PathBuf,
    /// Working directory (data dirs, component files, logs).
    #[arg(long)]
    dir: PathBuf,
    /// Fresh actor ids activated, and the open-loop rate (calls/s).
    #[arg(long, default_value_t = 10_000)]
    ids: u64,
    #[arg(long, default_value_t = 500)]
    rate: u64,
    /// Interleaved warm-throughput rounds and the length of each run (s).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    #[arg(long, default_value_t = 5.0)]
    warm_secs: f64,
    #[arg(long, default_value_t = 16)]
    conns: usize,
    /// Reminders registered, over this many actor ids, by this many closed-loop callers.
    #[arg(long, default_value_t = 100_000)]
    reminders: u64,
    #[arg(long, default_value_t = 10_000)]
    reminder_actors: u64,
    #[arg(long, default_value_t = 16)]
    reg_workers: usize,
    /// Pin every sidecar to this CPU (`taskset -c`); the caller pins this process elsewhere.
    #[arg(long)]
    cpu: Option<u32>,
    /// `host:port` of a Redis server to use as the actor store instead of the embedded SQLite one.
    #[arg(long)]
    redis: Option<String>,
}

struct Apps {
    actor_port: u16,
    echo_port: u16,
    actor: ActorApp,
}

fn spec(args: &Args, data: &str, app_id: &str, app_port: Option<u16>, log: &str) -> SidecarSpec {
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
fn start_all(specs: &[SidecarSpec]) -> anyhow::Result<Vec<SidecarProc>> {
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
fn write_store(args: &Args, data: &str) -> anyhow::Result<()> {
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
async fn until_ok(c: &HttpClient, urls: &[String], body: &Bytes, timeout: Duration) -> bool {
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

fn rss_mib(pid: u32) -> String {
    procfs::sample(pid)
        .map(|s| format!("{:.1}", s.rss_kb as f64 / 1024.0))
        .unwrap_or_else(|_| "gone".into())
}

fn ms(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.2} ms"))
        .unwrap_or_else(|| "–".into())
}

fn row(measure: &str, tandem: &str, baseline: &str, target: &str) {
    println!("| {measure} | {tandem} | {baseline} | {target} |");
}

async fn invoke_phase(args: &Args, apps: &Apps) -> anyhow::Result<()> {
    write_store(args, "p1")?;
    let hosts = start_all(&[
        spec(args, "p1", "actors", Some(apps.actor_port), "p1-host1"),
        spec(args, "p1", "actors", Some(apps.actor_port), "p1-host2"),
        spec(args, "p1", "b", Some(apps.echo_port), "p1-b"),
        spec(args, "p1", "caller", None, "p1-caller"),
    ])?;
    let caller = &hosts[3];
    let c = client();
    let body = Bytes::from(vec![b'x'; 1024]);
    let warm_ids = 256u64;
    let warm_url = {
        let base = caller.url(&format!("/v1.0/actors/{ACTOR_TYPE}"));
        Arc::new(move |i: u64| format!("{base}/w{}/method/ping", i % warm_ids))
    };
    let warm: Vec<String> = (0..warm_ids).map(|i| warm_url(i)).collect();
    if !until_ok(&c, &warm, &body, Duration::from_secs(60)).await {
        bail!("the warm actors never answered through the caller");
    }
    let chain = caller.url("/v1.0/invoke/b/method/echo");
    let chain_url: Arc<dyn Fn(u64) -> String + Send + Sync> = Arc::new(move |_| chain.clone());
    if !until_ok(&c, &[chain_url(0)], &body, Duration::from_secs(30)).await {
        bail!("the chain caller → b → echo never answered");
    }
    // Activation: the app's handler straight, then the first call of each fresh id.
    let direct: Vec<String> = (0..args.ids)
        .map(|i| {
            format!(
                "http://127.0.0.1:{}/actors/{ACTOR_TYPE}/d{i}/method/ping",
                apps.actor_port
            )
        })
        .collect();
    let direct = open_loop(&c, Method::PUT, direct, body.clone(), args.rate).await;
    let fresh: Vec<String> = (0..args.ids)
        .map(|i| caller.url(&format!("/v1.0/actors/{ACTOR_TYPE}/a{i}/method/ping")))
        .collect();
    let activation = open_loop(&c, Method::PUT, fresh, body.clone(), args.rate).await;
    // Warm invoke against the chain, interleaved.
    let (mut chain_rates, mut actor_rates, mut ratios, mut failed) = (vec![], vec![], vec![], 0);
    for r in 0..args.rounds {
        let t_chain = closed_loop(
            &c,
            Method::POST,
            chain_url.clone(),
            body.clone(),
            args.conns,
            args.warm_secs,
        )
        .await;
        let t_actor = closed_loop(
            &c,
            Method::PUT,
            warm_url.clone(),
            body.clone(),
            args.conns,
            args.warm_secs,
        )
        .await;
        eprintln!(
            "warm round {}: chain {t_chain:?}, actors {t_actor:?}",
            r + 1
        );
        failed += t_chain.failed + t_actor.failed;
        chain_rates.push(t_chain.per_sec);
        actor_rates.push(t_actor.per_sec);
        ratios.push(t_actor.per_sec / t_chain.per_sec);
    }
    let rss: Vec<String> = hosts.iter().map(|h| rss_mib(h.pid())).collect();
    drop(hosts);

    let (dp50, dp99) = (percentile(&direct.ms, 50.0), percentile(&direct.ms, 99.0));
    let (ap50, ap99) = (
        percentile(&activation.ms, 50.0),
        percentile(&activation.ms, 99.0),
    );
    row(
        &format!(
            "activation, first call to each of {} ids at {}/s, p50",
            args.ids, args.rate
        ),
        &ms(ap50),
        &format!("direct to the app: {}", ms(dp50)),
        "–",
    );
    row(
        "activation p99",
        &format!(
            "{} (+{} over direct)",
            ms(ap99),
            ms(ap99.zip(dp99).map(|(a, d)| a - d))
        ),
        &format!("direct to the app: {}", ms(dp99)),
        "≤ 1.5 ms (Dapr 6.89 ms)",
    );
    row(
        "activation calls failed (actors / direct)",
        &activation.failed.to_string(),
        &direct.failed.to_string(),
        "0",
    );
    row(
        &format!(
            "warm invoke, closed loop, {} conns, median of {} × {} s",
            args.conns, args.rounds, args.warm_secs
        ),
        &format!(
            "{:.0} calls/s ({:.2}× the chain)",
            median(&actor_rates).unwrap_or(0.0),
            median(&ratios).unwrap_or(0.0)
        ),
        &format!(
            "B1 chain caller → b → app: {:.0} req/s",
            median(&chain_rates).unwrap_or(0.0)
        ),
        "≥ 0.8× the chain",
    );
    row("warm runs' failed requests", &failed.to_string(), "–", "0");
    row(
        "RSS after phase 1 (MiB): host1, host2, b, caller",
        &rss.join(", "),
        "–",
        "reported",
    );
    Ok(())
}

async fn reminder_phase(args: &Args, apps: &Apps) -> anyhow::Result<()> {
    write_store(args, "p2")?;
    let hosts = start_all(&[
        spec(args, "p2", "actors", Some(apps.actor_port), "p2-host1"),
        spec(args, "p2", "actors", Some(apps.actor_port), "p2-host2"),
    ])?;
    let c = client();
    // Both hosts settle their shards: every probe id answers through either host.
    let probes: Vec<String> = (0..64)
        .map(|i| hosts[i % 2].url(&format!("/v1.0/actors/{ACTOR_TYPE}/probe{i}/method/ping")))
        .collect();
    tokio::time::sleep(Duration::from_secs(3)).await;
    if !until_ok(&c, &probes, &Bytes::new(), Duration::from_secs(60)).await {
        bail!("the reminder hosts never answered");
    }
    let pids: Vec<u32> = hosts.iter().map(SidecarProc::pid).collect();
    let rss = |pids: &[u32]| {
        pids.iter()
            .map(|p| rss_mib(*p))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let before = rss(&pids);
    let bases: Vec<String> = hosts
        .iter()
        .map(|h| h.url(&format!("/v1.0/actors/{ACTOR_TYPE}")))
        .collect();
    let (n, actors) = (args.reminders, args.reminder_actors.max(1));
    let register = move |due: Arc<dyn Fn() -> String + Send + Sync>| {
        let bases = bases.clone();
        Arc::new(move |i: u64| {
            let url = format!(
                "{}/r{}/reminders/n{}",
                bases[(i % 2) as usize],
                i % actors,
                i / actors
            );
            (
                url,
                Bytes::from(format!(r#"{{"dueTime":"{}","period":"1h"}}"#, due())),
            )
        }) as Arc<dyn Fn(u64) -> (String, Bytes) + Send + Sync>
    };
    // A pilot (overwritten below) measures the registration rate, to set one due time for all.
    let pilot_n = (n / 20).clamp(1, 2_000);
    let (pilot, took) = closed_loop_n(
        &c,
        Method::PUT,
        register(Arc::new(|| "1h".into())),
        pilot_n,
        args.reg_workers,
    )
    .await;
    let per_sec = pilot.ms.len().max(1) as f64 / took.as_secs_f64();
    let due_at = Instant::now() + Duration::from_secs_f64(n as f64 / per_sec * 1.5 + 3.0);
    let due_in = Arc::new(move || {
        format!(
            "{}ms",
            due_at.saturating_duration_since(Instant::now()).as_millis()
        )
    });
    let (reg, took) = closed_loop_n(&c, Method::PUT, register(due_in), n, args.reg_workers).await;
    let registered_early = Instant::now() < due_at;
    let after_reg = rss(&pids);
    tokio::time::sleep_until(due_at.into()).await;
    let got = apps
        .actor
        .wait_fired(n as usize, Duration::from_secs(10))
        .await;
    let after_fire = rss(&pids);
    let hwm = pids
        .iter()
        .map(|p| {
            procfs::sample(*p)
                .map(|s| format!("{:.1}", s.hwm_kb as f64 / 1024.0))
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(", ");
    drop(hosts);

    let (mut times, distinct) = apps.actor.fired();
    times.sort_unstable();
    let due_us = due_at.duration_since(apps.actor.epoch()).as_micros() as u64;
    let (first, last) = (
        times.first().copied().unwrap_or(0),
        times.last().copied().unwrap_or(0),
    );
    let span = |from: u64| got as f64 / ((last.saturating_sub(from)).max(1) as f64 / 1e6);
    row(
        &format!(
            "reminder registration, {n} through the two hosts, {} closed-loop callers: p50 / p99",
            args.reg_workers
        ),
        &format!(
            "{} / {}",
            ms(percentile(&reg.ms, 50.0)),
            ms(percentile(&reg.ms, 99.0))
        ),
        &format!(
            "{:.0} registrations/s; {} failed",
            reg.ms.len() as f64 / took.as_secs_f64(),
            reg.failed + pilot.failed
        ),
        "p99 ≤ 10 ms",
    );
    row(
        &format!("reminder triggers/s over {n} due at once (first → last callback)"),
        &format!("{:.0}/s", span(first)),
        &format!(
            "due → last callback: {:.0}/s; busiest second {}; first callback {:+.0} ms after due",
            span(due_us),
            peak_per_second(&times),
            (first as f64 - due_us as f64) / 1000.0
        ),
        "≥ 20 000/s (Dapr 15 463/s)",
    );
    row(
        "reminders fired (callbacks / distinct / registered)",
        &format!("{} / {distinct} / {n}", times.len()),
        if registered_early {
            "all registered before the due time"
        } else {
            "registration overran the due time"
        },
        "each once",
    );
    row(
        "host RSS before registering (MiB): host1, host2",
        &before,
        "–",
        "reported",
    );
    row(
        &format!("host RSS with {n} reminders registered (MiB)"),
        &after_reg,
        "–",
        "not n rows per host",
    );
    row(
        &format!("host RSS after they fired, {actors} actors active (MiB); peak"),
        &after_fire,
        &format!("peak {hwm}"),
        "reported",
    );
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _ = std::fs::remove_dir_all(args.dir.join("p1"));
    let _ = std::fs::remove_dir_all(args.dir.join("p2"));
    std::fs::create_dir_all(&args.dir)?;
    let epoch = Instant::now();
    let actor = ActorApp::new(epoch, true);
    let (actor_listener, echo_listener) = (
        tokio::net::TcpListener::bind("127.0.0.1:0").await?,
        tokio::net::TcpListener::bind("127.0.0.1:0").await?,
    );
    let apps = Apps {
        actor_port: actor_listener.local_addr()?.port(),
        echo_port: echo_listener.local_addr()?.port(),
        actor: actor.clone(),
    };
    tokio::spawn(actor.serve(actor_listener));
    tokio::spawn(ActorApp::new(epoch, false).serve(echo_listener));
    let load = |when: &str| {
        format!(
            "load average {when}: {}",
            std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .trim()
        )
    };
    let at_start = load("at the start");
    println!("| Measure | Tandem | Baseline (same run) | Target |\n|---|---|---|---|");
    invoke_phase(&args, &apps).await?;
    let after_invoke = load("after the invoke phase");
    reminder_phase(&args, &apps).await?;
    println!("\n{at_start}; {after_invoke}; {}", load("at the end"));
    Ok(())
}
