//! `injector-bench`: benchmark B6 (BENCHMARKS.md). The real injector `/mutate` Router against a
//! constant `allowed: true` Router, both over the same TLS stack on a one-thread server runtime:
//! a 2-container pod review at a fixed rate (client and server latency), then saturation from N
//! connections (reviews/s), and the ratios. Prints a Markdown table. For the one-core figure run
//! it under `taskset -c 0`.

use anyhow::ensure;
use clap::Parser;
use std::sync::Arc;
use std::time::Duration;
use tandem_bench::injector::{
    Server, certificates, client, constant_router, fixed_rate, saturate, two_container_review,
};
use tandem_bench::stats::percentile;

#[derive(Parser)]
#[command(name = "injector-bench")]
struct Args {
    /// Open-loop rate (reviews/s) and how long it runs.
    #[arg(long, default_value_t = 200)]
    rate: u64,
    #[arg(long, default_value_t = 10)]
    secs: u64,
    /// Closed-loop connections for the saturation run, and its length.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    #[arg(long, default_value_t = 10)]
    saturation_secs: u64,
}

struct Row {
    client_p50_ms: f64,
    client_p99_ms: f64,
    server_p50_ms: f64,
    server_p99_ms: f64,
    errors: usize,
    reviews_per_s: f64,
}

async fn measure(name: &str, router: axum::Router, args: &Args) -> anyhow::Result<Row> {
    let certs = certificates()?;
    let server = Server::start(router, &certs)?;
    let url = format!("https://127.0.0.1:{}/mutate", server.addr.port());
    let http = client(&certs.ca_pem)?;
    // Sanity and warm-up: the answer is what we think it is.
    let answer = http
        .post(&url)
        .header("content-type", "application/json")
        .body(two_container_review("warm-up"))
        .send()
        .await?
        .text()
        .await?;
    ensure!(
        answer.contains("\"allowed\":true"),
        "{name}: unexpected answer {answer}"
    );
    let _ = fixed_rate(&http, &url, args.rate, Duration::from_secs(1)).await;
    server.reset_timings();

    let (latencies, errors) =
        fixed_rate(&http, &url, args.rate, Duration::from_secs(args.secs)).await;
    let server_times = server.take_timings();
    let (reviews_per_s, saturation_errors) = saturate(
        &certs.ca_pem,
        &url,
        args.connections,
        Duration::from_secs(args.saturation_secs),
    )
    .await?;
    let ms = |values: &[f64], p| percentile(values, p).unwrap_or(f64::NAN) * 1000.0;
    Ok(Row {
        client_p50_ms: ms(&latencies, 50.0),
        client_p99_ms: ms(&latencies, 99.0),
        server_p50_ms: ms(&server_times, 50.0),
        server_p99_ms: ms(&server_times, 99.0),
        errors: errors + saturation_errors,
        reviews_per_s,
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Args::parse();
    let cli = tandem_injector::Args::try_parse_from(["tandem-injector"])?;
    let config = tandem_injector::InjectorConfig::from_args(cli, None)?;
    let state = tandem_injector::server::WebhookState {
        config: Arc::new(config),
        metrics: Arc::new(tandem_injector::metrics::Metrics::new()?),
    };
    let injector = measure(
        "injector",
        tandem_injector::server::router(state.clone()),
        &args,
    )
    .await?;
    let injected = state
        .metrics
        .admissions(tandem_injector::admission::AdmissionResult::Injected);
    ensure!(injected > 0, "the injector injected nothing");
    let constant = measure("constant", constant_router(), &args).await?;

    println!(
        "| B6 ({} rps for {} s, then {} connections for {} s) | client p50 ms | client p99 ms | server p50 ms | server p99 ms | saturation reviews/s | errors |",
        args.rate, args.secs, args.connections, args.saturation_secs
    );
    println!("|---|---|---|---|---|---|---|");
    for (name, row) in [
        ("tandem-injector /mutate", &injector),
        ("constant allowed:true", &constant),
    ] {
        println!(
            "| {name} | {:.3} | {:.3} | {:.3} | {:.3} | {:.0} | {} |",
            row.client_p50_ms,
            row.client_p99_ms,
            row.server_p50_ms,
            row.server_p99_ms,
            row.reviews_per_s,
            row.errors
        );
    }
    println!(
        "| ratio injector/constant | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} (constant/injector) | |",
        injector.client_p50_ms / constant.client_p50_ms,
        injector.client_p99_ms / constant.client_p99_ms,
        injector.server_p50_ms / constant.server_p50_ms,
        injector.server_p99_ms / constant.server_p99_ms,
        constant.reviews_per_s / injector.reviews_per_s,
    );
    println!("\ninjector reviews injected during the run: {injected}");
    Ok(())
}
