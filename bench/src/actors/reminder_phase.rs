//! B9 phase 2, on fresh hosts and a fresh store: `--reminders` reminders registered through the
//! two hosts (latency of each registration), all due at about the same moment with a period of an
//! hour (so each fires once); triggers per second as the app receives them; each host's RSS
//! before registering, after registering, and after they fired.

use super::setup::{Apps, Args, ms, row, rss_mib, spec, start_all, until_ok, write_store};
use super::{ACTOR_TYPE, client, closed_loop_n, peak_per_second};
use crate::procfs;
use crate::sidecar_proc::SidecarProc;
use crate::stats::percentile;
use anyhow::bail;
use bytes::Bytes;
use http::Method;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Runs phase 2 and prints its rows.
pub async fn run(args: &Args, apps: &Apps) -> anyhow::Result<()> {
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
    eprintln!(
        "registered {n} reminders; due in {:?}",
        due_at.saturating_duration_since(Instant::now())
    );
    tokio::time::sleep_until(due_at.into()).await;
    let got = apps
        .actor
        .wait_fired(n as usize, Duration::from_secs(10))
        .await;
    eprintln!("{got} reminders fired");
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
