//! `bench-util`: small helpers for `scripts/bench.sh`.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;
use tandem_bench::{oha::OhaRun, ports, procfs, report};

#[derive(Parser)]
#[command(name = "bench-util")]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Print N distinct free loopback ports, space separated.
    FreePorts { n: usize },
    /// Summarize an `oha --output-format json` file as `key=value` pairs.
    Oha { file: PathBuf },
    /// Print `pid=… cpu_us=… rss_kb=… hwm_kb=…` for each process.
    Proc {
        #[arg(required = true)]
        pids: Vec<u32>,
    },
    /// Sample RSS every `every_ms` for `duration_s`, then print one summary line per process
    /// (`pid=… samples=… first_kb=… last_kb=… min_kb=… max_kb=… drift_kb=…`).
    Watch {
        #[arg(long, default_value_t = 10_000)]
        every_ms: u64,
        #[arg(long)]
        duration_s: u64,
        /// Print every sample to stderr too.
        #[arg(long)]
        verbose: bool,
        #[arg(required = true)]
        pids: Vec<u32>,
    },
    /// Render a results file as the Markdown report.
    Report {
        #[arg(long)]
        results: PathBuf,
        /// Also write the report here.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    match Args::parse().command {
        Cmd::FreePorts { n } => {
            let ports: Vec<String> = ports::free_ports(n)?.iter().map(u16::to_string).collect();
            println!("{}", ports.join(" "));
        }
        Cmd::Oha { file } => {
            let json = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            println!(
                "{}",
                OhaRun::parse(&json)
                    .with_context(|| format!("in {}", file.display()))?
                    .to_line()
            );
        }
        Cmd::Proc { pids } => {
            for pid in pids {
                println!("{}", procfs::sample(pid)?);
            }
        }
        Cmd::Watch {
            every_ms,
            duration_s,
            verbose,
            pids,
        } => {
            let series = procfs::watch_rss(
                &pids,
                Duration::from_millis(every_ms),
                Duration::from_secs(duration_s),
                |t, samples| {
                    if verbose {
                        for s in samples {
                            eprintln!("t={:.0}s {s}", t.as_secs_f64());
                        }
                    }
                },
            )?;
            for s in series {
                println!("{}", s.summary());
            }
        }
        Cmd::Report { results, out } => {
            let text = std::fs::read_to_string(&results)
                .with_context(|| format!("cannot read {}", results.display()))?;
            let md = report::render(&report::Results::parse(&text));
            if let Some(out) = out {
                if let Some(dir) = out.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                std::fs::write(&out, &md)
                    .with_context(|| format!("cannot write {}", out.display()))?;
            }
            print!("{md}");
        }
    }
    Ok(())
}
