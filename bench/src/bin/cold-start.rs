//! `cold-start`: exec a command N times and time exec → first 2xx on a URL.

use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;
use tandem_bench::cold_start::{Config, Target, run_once};
use tandem_bench::stats::percentile;

/// Prints `sample_ms=…` per counted run, then `summary runs=… p50_ms=… p99_ms=… …`.
/// Exits 1 on the first run that fails (with the reason on stderr).
#[derive(Parser)]
#[command(name = "cold-start")]
struct Args {
    /// Counted runs.
    #[arg(long, default_value_t = 30)]
    runs: usize,
    /// Uncounted runs first (page cache, lazy binding).
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Ready at the first 2xx from this URL (http://IP:PORT/PATH).
    #[arg(long)]
    url: String,
    /// Give up on one start after this many milliseconds.
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
    /// Time between probes, in microseconds.
    #[arg(long, default_value_t = 200)]
    poll_us: u64,
    /// Run the command on this CPU.
    #[arg(long)]
    cpu: Option<usize>,
    /// Append the command's output to this file.
    #[arg(long)]
    log: Option<PathBuf>,
    /// The command, after `--`.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let cfg = Config {
        command: args.command,
        url: args.url,
        timeout: Duration::from_millis(args.timeout_ms),
        poll: Duration::from_micros(args.poll_us),
        cpu: args.cpu,
        log: args.log,
    };
    let target = Target::parse(&cfg.url)?;
    let mut samples = Vec::with_capacity(args.runs);
    for i in 0..args.warmup + args.runs {
        let took = run_once(&cfg, &target)?;
        if i >= args.warmup {
            let ms = took.as_secs_f64() * 1e3;
            println!("sample_ms={ms:.3}");
            samples.push(ms);
        }
    }
    let p = |q| percentile(&samples, q).unwrap_or(f64::NAN);
    println!(
        "summary runs={} p50_ms={:.3} p99_ms={:.3} min_ms={:.3} max_ms={:.3}",
        samples.len(),
        p(50.0),
        p(99.0),
        p(0.0),
        p(100.0)
    );
    Ok(())
}
