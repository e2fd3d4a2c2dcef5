//! `pubsub-bench`: benchmark B8 (BENCHMARKS.md), pub/sub end to end through a real sidecar.
//! (a) `pubsub.in-memory`: throughput of closed-loop publishers and latency at a fixed rate;
//! (b) `pubsub.redis` (Redis Streams): throughput against `redis-benchmark`'s XADD rate on the
//! same redis-server. Prints a Markdown table (medians over `--rounds`); with `--records`, also
//! writes the per-round measurements in `scripts/bench.sh`'s results format (`m key round value`).

use anyhow::{Context, bail};
use clap::Parser;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tandem_bench::ports::free_ports;
use tandem_bench::procfs;
use tandem_bench::pubsub::{Publisher, Subscriber, latency, throughput};
use tandem_bench::sidecar_proc::{SidecarProc, SidecarSpec};
use tandem_bench::stats::{median, percentile};

#[derive(Parser)]
#[command(name = "pubsub-bench")]
struct Args {
    /// The release `tandem-sidecar` binary.
    #[arg(long)]
    sidecar: PathBuf,
    /// Messages per throughput run.
    #[arg(long, default_value_t = 50_000)]
    messages: u64,
    /// Closed-loop publishers.
    #[arg(long, default_value_t = 64)]
    publishers: u64,
    /// Open-loop rate for the latency run (msgs/s) and its length.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    #[arg(long, default_value_t = 10)]
    secs: u64,
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// The number of the first round in `--records` (`scripts/bench.sh` runs one round a call).
    #[arg(long, default_value_t = 1)]
    first_round: u32,
    /// Which brokers: `memory`, `redis` or both (comma-separated).
    #[arg(long, default_value = "memory,redis")]
    brokers: String,
    /// Pin the sidecar and redis-server to this CPU (`taskset -c`); the bench process itself
    /// (publishers, subscriber, redis-benchmark) is pinned by whoever starts it.
    #[arg(long)]
    cpu: Option<u32>,
    /// Append per-round measurements (`m\tb8.…\tround\tvalue`) to this file.
    #[arg(long)]
    records: Option<PathBuf>,
    /// Working directory (components, logs, data).
    #[arg(long)]
    dir: PathBuf,
}

/// A child process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Per-round measurements, printed as a table and optionally written as records.
#[derive(Default)]
struct Records(Vec<(String, u32, f64)>);

impl Records {
    fn add(&mut self, key: &str, round: u32, value: f64) {
        self.0.push((format!("b8.{key}"), round, value));
    }

    fn values(&self, key: &str) -> Vec<f64> {
        let key = format!("b8.{key}");
        self.0
            .iter()
            .filter(|(k, _, _)| *k == key)
            .map(|(_, _, v)| *v)
            .collect()
    }

    fn median(&self, key: &str) -> f64 {
        median(&self.values(key)).unwrap_or(f64::NAN)
    }

    fn sum(&self, key: &str) -> f64 {
        self.values(key).iter().sum()
    }

    fn write(&self, path: &Path) -> anyhow::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        for (key, round, value) in &self.0 {
            writeln!(f, "m\t{key}\t{round}\t{value}")?;
        }
        Ok(())
    }
}

fn start_sidecar(
    args: &Args,
    name: &str,
    component: &str,
    app_port: u16,
) -> anyhow::Result<SidecarProc> {
    let res = args.dir.join(name);
    std::fs::create_dir_all(&res)?;
    std::fs::write(res.join("pubsub.yaml"), component)?;
    let log = args.dir.join(format!("{name}.log"));
    let spec = SidecarSpec {
        binary: args.sidecar.clone(),
        app_id: name.to_owned(),
        app_port: Some(app_port),
        data_dir: args.dir.join(format!("{name}-data")),
        resources: Some(res),
        cpu: args.cpu,
        log: log.clone(),
    };
    let mut sidecar = SidecarProc::start(&spec)?;
    sidecar.wait_ready(Duration::from_secs(15), &log)?;
    // Subscriptions start once the app is ready: give them a moment to be in place.
    std::thread::sleep(Duration::from_millis(300));
    Ok(sidecar)
}

fn start_redis(dir: &Path, cpu: Option<u32>) -> anyhow::Result<(Proc, u16)> {
    let port = free_ports(1)?[0];
    let mut cmd = match cpu {
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.args(["-c", &cpu.to_string(), "redis-server"]);
            c
        }
        None => Command::new("redis-server"),
    };
    let child = cmd
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .spawn()
        .context("starting redis-server")?;
    let proc = Proc(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("redis-server did not start");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((proc, port))
}

/// `redis-benchmark`'s rate for XADD of a message as big as the sidecar's CloudEvents.
fn xadd_rate(port: u16, n: u64) -> anyhow::Result<f64> {
    let payload = "x".repeat(300);
    let out = Command::new("redis-benchmark")
        .args([
            "-p",
            &port.to_string(),
            "-q",
            "-c",
            "50",
            "-n",
            &n.to_string(),
        ])
        .args(["XADD", "xadd-baseline", "*", "data", &payload])
        .output()
        .context("running redis-benchmark")?;
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "\n");
    text.lines()
        .filter_map(|l| l.split(": ").nth(1))
        .filter_map(|rest| rest.split(' ').next()?.parse::<f64>().ok())
        .next_back()
        .with_context(|| format!("no rate in redis-benchmark output: {text}"))
}

/// One closed-loop throughput run; records its rate, loss and the sidecar's CPU per message.
async fn throughput_round(
    args: &Args,
    (publisher, subscriber): (&Publisher, &Subscriber),
    sidecar: &SidecarProc,
    (broker, round, seq): (&str, u32, &mut u64),
    out: &mut Records,
) -> anyhow::Result<()> {
    let cpu_before = procfs::sample(sidecar.pid())?.cpu_us;
    let t = throughput(publisher, subscriber, *seq, args.messages, args.publishers).await;
    let cpu = procfs::sample(sidecar.pid())?.cpu_us - cpu_before;
    *seq += args.messages;
    out.add(&format!("{broker}.rps"), round, t.msgs_per_sec);
    out.add(
        &format!("{broker}.lost"),
        round,
        (t.lost() + (t.published - t.acknowledged)) as f64,
    );
    out.add(
        &format!("{broker}.cpu_us_per_msg"),
        round,
        cpu as f64 / t.delivered.max(1) as f64,
    );
    Ok(())
}

async fn memory(
    args: &Args,
    subscriber: &Subscriber,
    app_port: u16,
    seq: &mut u64,
    out: &mut Records,
) -> anyhow::Result<()> {
    let component = "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: pubsub}\nspec: {type: pubsub.in-memory, version: v1}\n";
    let sidecar = start_sidecar(args, "memory", component, app_port)?;
    let publisher = Publisher::new(sidecar.http_port, "bench");
    throughput(&publisher, subscriber, *seq, 5_000, args.publishers).await; // warm-up
    *seq += 5_000;
    for round in args.first_round..args.first_round + args.rounds {
        throughput_round(
            args,
            (&publisher, subscriber),
            &sidecar,
            ("memory", round, &mut *seq),
            out,
        )
        .await?;
        let l = latency(&publisher, subscriber, *seq, args.rate, args.secs).await;
        *seq += args.rate * args.secs;
        out.add("memory.latency_lost", round, l.lost as f64);
        out.add(
            "memory.ack_p99_ms",
            round,
            percentile(&l.ack_ms, 99.0).unwrap_or(f64::NAN),
        );
        out.add(
            "memory.ack_p50_ms",
            round,
            percentile(&l.ack_ms, 50.0).unwrap_or(f64::NAN),
        );
        let delivery = |p| percentile(&l.delivery_ms, p).unwrap_or(f64::NAN);
        out.add("memory.delivery_p99_ms", round, delivery(99.0));
        out.add("memory.delivery_p50_ms", round, delivery(50.0));
    }
    Ok(())
}

async fn redis(
    args: &Args,
    subscriber: &Subscriber,
    app_port: u16,
    seq: &mut u64,
    out: &mut Records,
) -> anyhow::Result<()> {
    let (_redis, redis_port) = start_redis(&args.dir, args.cpu)?;
    let component = format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {{name: pubsub}}\nspec:\n  type: pubsub.redis\n  version: v1\n  metadata:\n  - {{name: redisHost, value: \"127.0.0.1:{redis_port}\"}}\n"
    );
    let sidecar = start_sidecar(args, "redis", &component, app_port)?;
    let publisher = Publisher::new(sidecar.http_port, "bench");
    throughput(&publisher, subscriber, *seq, 5_000, args.publishers).await; // warm-up
    *seq += 5_000;
    for round in args.first_round..args.first_round + args.rounds {
        out.add(
            "redis.xadd_rps",
            round,
            xadd_rate(redis_port, args.messages * 2)?,
        );
        throughput_round(
            args,
            (&publisher, subscriber),
            &sidecar,
            ("redis", round, &mut *seq),
            out,
        )
        .await?;
    }
    Ok(())
}

fn row(name: &str, value: String, baseline: String, target: &str) {
    println!("| {name} | {value} | {baseline} | {target} |");
}

fn print_table(args: &Args, r: &Records) {
    println!("| Measure | Tandem | Baseline | Target |\n|---|---|---|---|");
    if !r.values("memory.rps").is_empty() {
        let lost = r.sum("memory.lost") + r.sum("memory.latency_lost");
        row(
            "B8a in-memory throughput (msgs/s, median)",
            format!("{:.0}", r.median("memory.rps")),
            "—".into(),
            "≥ 30 000",
        );
        row(
            "B8a sidecar CPU per message at saturation (µs, median)",
            format!("{:.1}", r.median("memory.cpu_us_per_msg")),
            "—".into(),
            "reference",
        );
        row("B8a lost (all rounds)", lost.to_string(), "—".into(), "0");
        let at = args.rate;
        row(
            &format!("B8a publish-ack p50 / p99 at {at} msg/s (ms)"),
            format!(
                "{:.2} / {:.2}",
                r.median("memory.ack_p50_ms"),
                r.median("memory.ack_p99_ms")
            ),
            "—".into(),
            "p99 ≤ 0.5",
        );
        row(
            &format!("B8a delivery p50 / p99 at {at} msg/s (ms)"),
            format!(
                "{:.2} / {:.2}",
                r.median("memory.delivery_p50_ms"),
                r.median("memory.delivery_p99_ms")
            ),
            "—".into(),
            "p99 ≤ 1",
        );
    }
    if !r.values("redis.rps").is_empty() {
        let (ours, base) = (r.median("redis.rps"), r.median("redis.xadd_rps"));
        row(
            "B8b Redis Streams throughput (msgs/s, median)",
            format!("{ours:.0} ({:.2}×)", ours / base),
            format!("{base:.0} XADD/s (redis-benchmark -c 50)"),
            "≥ 0.5×",
        );
        row(
            "B8b sidecar CPU per message at saturation (µs, median)",
            format!("{:.1}", r.median("redis.cpu_us_per_msg")),
            "—".into(),
            "reference",
        );
        row(
            "B8b lost (all rounds)",
            r.sum("redis.lost").to_string(),
            "—".into(),
            "0",
        );
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.dir)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let app_port = listener.local_addr()?.port();
    let subscriber = Subscriber::new(Instant::now(), "bench");
    tokio::spawn(subscriber.clone().serve(listener));
    let mut records = Records::default();
    let mut seq = 0;
    let brokers: Vec<&str> = args.brokers.split(',').map(str::trim).collect();
    if let Some(unknown) = brokers.iter().find(|b| !["memory", "redis"].contains(b)) {
        bail!("no broker {unknown:?} (have memory, redis)");
    }
    if brokers.contains(&"memory") {
        memory(&args, &subscriber, app_port, &mut seq, &mut records).await?;
    }
    if brokers.contains(&"redis") {
        redis(&args, &subscriber, app_port, &mut seq, &mut records).await?;
    }
    print_table(&args, &records);
    if let Some(path) = &args.records {
        records.write(path)?;
    }
    eprintln!("deliveries in all: {}", subscriber.deliveries());
    Ok(())
}
