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

use clap::Parser;
use std::time::Instant;
use tandem_bench::actors::setup::{Apps, Args};
use tandem_bench::actors::{ActorApp, invoke_phase, reminder_phase};

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
    invoke_phase::run(&args, &apps).await?;
    let after_invoke = load("after the invoke phase");
    reminder_phase::run(&args, &apps).await?;
    println!("\n{at_start}; {after_invoke}; {}", load("at the end"));
    Ok(())
}
