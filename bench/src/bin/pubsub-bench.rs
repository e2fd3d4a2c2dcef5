//! `pubsub-bench`: benchmark B8 (BENCHMARKS.md), pub/sub end to end through a real sidecar.
//! (a) `pubsub.in-memory`: throughput of closed-loop publishers and latency at a fixed rate;
//! (b) `pubsub.redis` (Redis Streams): throughput against `redis-benchmark`'s XADD rate on the
//! same redis-server. Prints a Markdown table; medians over `--rounds`.

use anyhow::{Context, bail};
use clap::Parser;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tandem_bench::ports::free_ports;
use tandem_bench::pubsub::{Publisher, Subscriber, latency, throughput};
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
    rounds: usize,
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

fn http_status(port: u16, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).ok()?;
    std::str::from_utf8(&buf[9..12]).ok()?.parse().ok()
}

fn start_sidecar(
    args: &Args,
    name: &str,
    component: &str,
    app_port: u16,
) -> anyhow::Result<(Proc, u16)> {
    let res = args.dir.join(name);
    std::fs::create_dir_all(&res)?;
    std::fs::write(res.join("pubsub.yaml"), component)?;
    let p = free_ports(5)?;
    let log = std::fs::File::create(args.dir.join(format!("{name}.log")))?;
    let child = Command::new(&args.sidecar)
        .args(["--app-id", name, "--app-port", &app_port.to_string()])
        .args([
            "--dapr-http-port",
            &p[0].to_string(),
            "--dapr-public-port",
            &p[1].to_string(),
        ])
        .args([
            "--dapr-internal-grpc-port",
            &p[2].to_string(),
            "--metrics-port",
            &p[3].to_string(),
            "--dapr-grpc-port",
            &p[4].to_string(),
        ])
        .arg("--resources-path")
        .arg(&res)
        .arg("--data-dir")
        .arg(args.dir.join(format!("{name}-data")))
        .args(["--log-level", "warn"])
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting the sidecar")?;
    let proc = Proc(child);
    let deadline = Instant::now() + Duration::from_secs(15);
    while http_status(p[0], "/v1.0/healthz") != Some(204) {
        if Instant::now() > deadline {
            bail!(
                "sidecar {name} did not become ready; see {}",
                args.dir.join(format!("{name}.log")).display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Subscriptions start once the app is ready: give them a moment to be listed.
    std::thread::sleep(Duration::from_millis(300));
    Ok((proc, p[0]))
}

fn start_redis(dir: &Path) -> anyhow::Result<(Proc, u16)> {
    let port = free_ports(1)?[0];
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
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

fn row(name: &str, value: String, baseline: String, target: &str) {
    println!("| {name} | {value} | {baseline} | {target} |");
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.dir)?;
    let epoch = Instant::now();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let app_port = listener.local_addr()?.port();
    let subscriber = Subscriber::new(epoch, "bench");
    tokio::spawn(subscriber.clone().serve(listener));

    let memory = "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: pubsub}\nspec: {type: pubsub.in-memory, version: v1}\n";
    let (sidecar, http_port) = start_sidecar(&args, "memory", memory, app_port)?;
    let publisher = Publisher::new(http_port, "bench");
    let mut seq = 0;
    throughput(&publisher, &subscriber, seq, 5_000, args.publishers).await; // warm-up
    seq += 5_000;
    let (mut rates, mut lost, mut acks, mut deliveries) = (Vec::new(), 0, Vec::new(), Vec::new());
    for _ in 0..args.rounds {
        let t = throughput(&publisher, &subscriber, seq, args.messages, args.publishers).await;
        seq += args.messages;
        rates.push(t.msgs_per_sec);
        lost += t.lost() + (t.published - t.acknowledged);
        let l = latency(&publisher, &subscriber, seq, args.rate, args.secs).await;
        seq += args.rate * args.secs;
        lost += l.lost;
        acks.push(percentile(&l.ack_ms, 99.0).unwrap_or(f64::NAN));
        deliveries.push(percentile(&l.delivery_ms, 99.0).unwrap_or(f64::NAN));
    }
    drop(sidecar);
    println!("| Measure | Tandem | Baseline | Target |\n|---|---|---|---|");
    row(
        "B8a in-memory throughput (msgs/s, median)",
        format!("{:.0}", median(&rates).unwrap_or(0.0)),
        "—".into(),
        "≥ 15 000",
    );
    row("B8a lost (all rounds)", lost.to_string(), "—".into(), "0");
    row(
        &format!("B8a publish-ack p99 at {} msg/s (ms)", args.rate),
        format!("{:.2}", median(&acks).unwrap_or(f64::NAN)),
        "—".into(),
        "≤ 1",
    );
    row(
        &format!("B8a delivery p99 at {} msg/s (ms)", args.rate),
        format!("{:.2}", median(&deliveries).unwrap_or(f64::NAN)),
        "—".into(),
        "≤ 2",
    );

    let (_redis, redis_port) = start_redis(&args.dir)?;
    let component = format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {{name: pubsub}}\nspec:\n  type: pubsub.redis\n  version: v1\n  metadata:\n  - {{name: redisHost, value: \"127.0.0.1:{redis_port}\"}}\n"
    );
    let (sidecar, http_port) = start_sidecar(&args, "redis", &component, app_port)?;
    let publisher = Publisher::new(http_port, "bench");
    throughput(&publisher, &subscriber, seq, 5_000, args.publishers).await; // warm-up
    seq += 5_000;
    let (mut redis_rates, mut xadd, mut redis_lost) = (Vec::new(), Vec::new(), 0);
    for _ in 0..args.rounds {
        xadd.push(xadd_rate(redis_port, args.messages * 2)?);
        let t = throughput(&publisher, &subscriber, seq, args.messages, args.publishers).await;
        seq += args.messages;
        redis_rates.push(t.msgs_per_sec);
        redis_lost += t.lost() + (t.published - t.acknowledged);
    }
    drop(sidecar);
    let (ours, base) = (
        median(&redis_rates).unwrap_or(0.0),
        median(&xadd).unwrap_or(f64::NAN),
    );
    row(
        "B8b Redis Streams throughput (msgs/s, median)",
        format!("{ours:.0} ({:.2}×)", ours / base),
        format!("{base:.0} XADD/s (redis-benchmark -c 50)"),
        "≥ 0.25×",
    );
    row(
        "B8b lost (all rounds)",
        redis_lost.to_string(),
        "—".into(),
        "0",
    );
    eprintln!("deliveries in all: {}", subscriber.deliveries());
    Ok(())
}
