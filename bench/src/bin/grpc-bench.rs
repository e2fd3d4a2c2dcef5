//! `grpc-bench`: B11's gRPC echo app and load generator (see `tandem_bench::grpc`).
//!
//!   grpc-bench app --port P
//!   grpc-bench load --kind echo --target 127.0.0.1:P [--app-id b] --rate 1000 --secs 12
//!   grpc-bench load --kind get-state --target 127.0.0.1:P --store statestore --key k --closed-secs 10
//!
//! `load` prints one line in `bench-util oha`'s keys (`responses= ok= errors= rps= p50_us= …`);
//! the first error, if any, goes to stderr.

use anyhow::bail;
use bytes::Bytes;
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::time::Duration;
use tandem_bench::grpc::calls::{Kind, Target};
use tandem_bench::grpc::{app, load};

#[derive(Parser)]
#[command(name = "grpc-bench")]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve the echo app (`AppCallback`, `AppCallbackHealthCheck`) on 127.0.0.1:PORT.
    App {
        #[arg(long)]
        port: u16,
    },
    /// Run one load: open loop (`--rate`, `--secs`) or closed loop (`--closed-secs`).
    Load(LoadArgs),
}

#[derive(Parser)]
struct LoadArgs {
    #[arg(long, value_enum)]
    kind: Kind,
    /// host:port for the gRPC kinds, a URL for http-post and http-get.
    #[arg(long)]
    target: String,
    /// echo: sent as `dapr-app-id` (proxying); invoke-service: the target app.
    #[arg(long)]
    app_id: Option<String>,
    #[arg(long, default_value = "statestore")]
    store: String,
    #[arg(long, default_value = "bench-key")]
    key: String,
    #[arg(long, default_value_t = 1024)]
    body_bytes: usize,
    #[arg(long, default_value_t = 16)]
    conns: usize,
    /// Open loop: requests per second.
    #[arg(long)]
    rate: Option<f64>,
    /// Open loop: how long (rate × secs requests).
    #[arg(long, default_value_t = 10)]
    secs: u64,
    /// Closed loop for this many seconds instead of an open loop.
    #[arg(long, conflicts_with = "rate")]
    closed_secs: Option<u64>,
    /// An open-loop warm-up at the same rate (or 1 000 req/s) first, not counted.
    #[arg(long, default_value_t = 0)]
    warmup_secs: u64,
}

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match Args::parse().command {
        Cmd::App { port } => {
            // The app serves on a multi-threaded runtime like any app would; taskset pins it.
            drop(rt);
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(app::serve(SocketAddr::from(([127, 0, 0, 1], port))))
        }
        Cmd::Load(a) => rt.block_on(run_load(a)),
    }
}

async fn run_load(a: LoadArgs) -> anyhow::Result<()> {
    if a.conns == 0 {
        bail!("--conns must be at least 1");
    }
    let target = Target {
        kind: a.kind,
        address: a.target,
        app_id: a.app_id,
        store: a.store,
        key: a.key,
        body: Bytes::from(vec![b'x'; a.body_bytes]),
    };
    let mut conns = load::connect_all(&target, a.conns).await?;
    let rate = a.rate.unwrap_or(1000.0);
    if !(rate.is_finite() && rate > 0.0) {
        bail!("--rate must be a positive number");
    }
    if a.warmup_secs > 0 {
        let warm = load::Mode::Open {
            rate,
            requests: (rate * a.warmup_secs as f64) as u64,
        };
        conns = load::run(conns, warm).await?.1;
    }
    let mode = match a.closed_secs {
        Some(s) => load::Mode::Closed {
            duration: Duration::from_secs(s),
        },
        None => load::Mode::Open {
            rate,
            requests: (rate * a.secs as f64) as u64,
        },
    };
    let (summary, _) = load::run(conns, mode).await?;
    if let Some(e) = &summary.first_error {
        eprintln!(
            "grpc-bench: {} requests failed; the first: {e}",
            summary.errors
        );
    }
    println!("{}", summary.to_line());
    Ok(())
}
