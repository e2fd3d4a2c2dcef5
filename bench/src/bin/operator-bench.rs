//! `operator-bench` (B10): the operator against a real kube-apiserver, real reconciles vs no-op
//! reconciles over the same objects, plus the release binary sizes. Needs `KUBEBUILDER_ASSETS`.

use anyhow::Context;
use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;
use tandem_bench::operator::{Config, measure, records, table};

#[derive(Parser)]
#[command(name = "operator-bench")]
struct Args {
    /// Objects of each kind (Components and Deployments); repeat for several size points.
    #[arg(long = "n", default_values_t = [1000])]
    sizes: Vec<usize>,
    /// Namespaces the objects are spread over.
    #[arg(long, default_value_t = 4)]
    namespaces: usize,
    /// The operator binary (default: `tandem-operator` next to this one).
    #[arg(long)]
    operator_bin: Option<PathBuf>,
    /// The sidecar binary whose size is reported (default: `tandem-sidecar` next to this one).
    #[arg(long)]
    sidecar_bin: Option<PathBuf>,
    /// Seconds the operator rests after the end before its RSS is read.
    #[arg(long, default_value_t = 5)]
    rest_s: u64,
    /// Give up on one operator run after this many seconds.
    #[arg(long, default_value_t = 300)]
    timeout_s: u64,
    /// An environment variable for the operator, `KEY=VALUE` (repeatable; e.g. MALLOC_ARENA_MAX=2).
    #[arg(long = "operator-env", value_parser = key_value)]
    operator_env: Vec<(String, String)>,
    /// Also append the largest size point's figures to this file as `scripts/bench.sh`
    /// measurement records.
    #[arg(long)]
    records: Option<PathBuf>,
    /// The round number of those records.
    #[arg(long, default_value_t = 1)]
    round: u32,
}

fn key_value(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not KEY=VALUE"))?;
    Ok((key.to_owned(), value.to_owned()))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let here = std::env::current_exe()?;
    let dir = here.parent().context("no directory around this binary")?;
    let operator_bin = args
        .operator_bin
        .unwrap_or_else(|| dir.join("tandem-operator"));
    let sidecar_bin = args
        .sidecar_bin
        .unwrap_or_else(|| dir.join("tandem-sidecar"));
    let config = Config {
        operator_bin: operator_bin.clone(),
        namespaces: args.namespaces,
        rest: Duration::from_secs(args.rest_s),
        timeout: Duration::from_secs(args.timeout_s),
        env: args.operator_env.clone(),
    };
    let mut points = Vec::new();
    for n in &args.sizes {
        points.push(measure(*n, &config).await?);
    }
    let size = |path: &PathBuf| std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let sizes = [
        ("tandem-sidecar", size(&sidecar_bin)),
        ("tandem-operator", size(&operator_bin)),
    ];
    print!("{}", table(&points, &sizes));
    if let Some(path) = &args.records {
        use std::io::Write as _;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        file.write_all(records(&points, args.round).as_bytes())?;
    }
    Ok(())
}
