//! B9 phase 1: activation (the first call to each of `--ids` fresh ids at `--rate`/s through the
//! caller, against the same calls straight to the app's actor handler) and warm invoke
//! (closed-loop calls to pre-activated ids through the caller, against B1's chain caller → `b` →
//! echo app, in interleaved rounds).

use super::setup::{Apps, Args, ms, row, rss_mib, spec, start_all, until_ok, write_store};
use super::{ACTOR_TYPE, client, closed_loop, open_loop};
use crate::stats::{median, percentile};
use anyhow::bail;
use bytes::Bytes;
use http::Method;
use std::sync::Arc;
use std::time::Duration;

/// Runs phase 1 and prints its rows.
pub async fn run(args: &Args, apps: &Apps) -> anyhow::Result<()> {
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
