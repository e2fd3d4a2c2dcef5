//! Dapr's Grafana dashboards against Tandem: a real Prometheus scrapes a real sidecar that hosts
//! actors for a real app, after HTTP, gRPC, actor, timer and reminder traffic; every query in
//! `dashboard_queries.txt` must return data over Prometheus's HTTP API.
//!
//! With `TANDEM_DASHBOARDS_DIR` set to a folder of Grafana dashboards (Dapr's `grafana/`), the
//! same test also reports, per dashboard, how many panels have data (`scripts/dashboards-check.sh`).

use super::prometheus::{Prometheus, Target};
use super::{BIN, sample, scrape};
use dapr::dapr::proto::runtime::v1 as rt;
use dapr::dapr::proto::runtime::v1::dapr_client::DaprClient;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tandem_sidecar::testing::actor_app::{ActorApp, ActorLog};
use tandem_sidecar::testing::sidecar::{Sidecar, SidecarBuilder};

const APP_ID: &str = "dash";
const NAMESPACE: &str = "default";
const ACTOR_TYPE: &str = "Counter";
/// A short idle timeout so the test sees deactivations.
const ACTORS: &str =
    r#"{"entities":["Counter"],"actorIdleTimeout":"1s","drainOngoingCallTimeout":"5s"}"#;
/// Dapr's default (`increasedCardinality: true`): the dashboards filter on `path`.
const METRIC: &str = "{http: {increasedCardinality: true}}";

/// The queries of `dashboard_queries.txt` (comments and blank lines skipped).
fn listed_queries() -> Vec<&'static str> {
    include_str!("dashboard_queries.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// Fills in the dashboards' Grafana variables as a user who picked this sidecar would.
fn fill_variables(query: &str) -> String {
    query
        .replace("$dapr_app_id", APP_ID)
        .replace("$namespace", NAMESPACE)
        .replace("$dapr_actor_type", ACTOR_TYPE)
        .replace("$__rate_interval", "5m")
        .replace("$__interval", "1m")
}

async fn request(verb: reqwest::Method, sc: &Sidecar, path: &str, body: &str) -> u16 {
    super::common::client()
        .request(verb, sc.url(path))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

/// State, publish and actor calls over HTTP, state over gRPC.
async fn traffic(sc: &Sidecar) {
    use reqwest::Method as M;
    let state = r#"[{"key":"k1","value":{"n":1}}]"#;
    assert_eq!(
        request(M::POST, sc, "/v1.0/state/statestore", state).await,
        204
    );
    for _ in 0..5 {
        assert_eq!(
            request(M::GET, sc, "/v1.0/state/statestore/k1", "").await,
            200
        );
    }
    assert_eq!(
        request(M::POST, sc, "/v1.0/publish/pubsub/orders", "{}").await,
        204
    );
    // Concurrent calls on one actor queue for its turn (the pending-calls gauge).
    let calls = (0..8).map(|_| {
        request(
            M::POST,
            sc,
            "/v1.0/actors/Counter/busy/method/increment",
            "",
        )
    });
    for status in futures_util::future::join_all(calls).await {
        assert_eq!(status, 200);
    }
    for id in ["a", "b", "c"] {
        let path = format!("/v1.0/actors/Counter/{id}/method/increment");
        assert_eq!(request(M::POST, sc, &path, "").await, 200);
    }
    let mut grpc = DaprClient::connect(sc.grpc_endpoint())
        .await
        .expect("connect");
    for _ in 0..3 {
        grpc.get_state(rt::GetStateRequest {
            store_name: "statestore".into(),
            key: "k1".into(),
            ..Default::default()
        })
        .await
        .expect("GetState");
    }
}

/// An actor app and its sidecar, with timers and reminders firing.
async fn actor_host(dir: &std::path::Path, log: &Arc<ActorLog>) -> (Sidecar, ActorApp) {
    let app = ActorApp::start("h1", ACTORS, log.clone()).await;
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        format!("apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata: {{name: m}}\nspec:\n  metric: {METRIC}\n"),
    )
    .expect("write config");
    let sidecar = SidecarBuilder::new(BIN, APP_ID, &dir.join("data"))
        .app_port(app.port)
        .arg("--config")
        .arg(&config.to_string_lossy())
        .start();
    app.set_sidecar(&sidecar.url(""));
    sidecar.wait_ready(Duration::from_secs(30));
    (sidecar, app)
}

/// A panel's title and its queries, variables filled in.
type Panel = (String, Vec<String>);

/// Each dashboard of `dir`: its file name and its panels that have queries.
fn dashboard_panels(dir: &str) -> Vec<(String, Vec<Panel>)> {
    fn walk(panels: &[Value], out: &mut Vec<Panel>) {
        for p in panels {
            let exprs: Vec<String> = p["targets"]
                .as_array()
                .map(|t| {
                    t.iter()
                        .filter_map(|t| t["expr"].as_str())
                        .map(fill_variables)
                        .collect()
                })
                .unwrap_or_default();
            if !exprs.is_empty() {
                out.push((p["title"].as_str().unwrap_or("").to_owned(), exprs));
            }
            walk(p["panels"].as_array().map_or(&[][..], Vec::as_slice), out);
        }
    }
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("TANDEM_DASHBOARDS_DIR")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| {
            let json: Value = serde_json::from_str(&std::fs::read_to_string(f).expect("read"))
                .expect("dashboard JSON");
            let mut panels = Vec::new();
            walk(
                json["panels"].as_array().map_or(&[][..], Vec::as_slice),
                &mut panels,
            );
            let name = f.file_name().map(|n| n.to_string_lossy().into_owned());
            (name.unwrap_or_default(), panels)
        })
        .collect()
}

/// Prints, per dashboard, how many panels have data (any of their queries returns a series).
async fn report_dashboards(prometheus: &Prometheus, dir: &str) {
    for (name, panels) in dashboard_panels(dir) {
        let mut misses = Vec::new();
        for (title, exprs) in &panels {
            let mut data = false;
            for e in exprs {
                data |= prometheus.query(e).await.is_ok_and(|r| !r.is_empty());
            }
            if !data {
                misses.push(format!("{title:?}: {}", exprs[0]));
            }
        }
        let with_data = panels.len() - misses.len();
        println!(
            "dashboard {name}: {with_data}/{} panels with data",
            panels.len()
        );
        for m in misses {
            println!("dashboard {name}:   no data: {m}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dapr_dashboard_queries_answer_from_a_real_prometheus() {
    let dir = tandem_testkit::fresh_dir("metrics-dashboards");
    let log = Arc::new(ActorLog::default());
    let (sc, _app) = actor_host(&dir, &log).await;
    use reqwest::Method as M;
    let timer = r#"{"dueTime":"0s","period":"200ms","callback":"cb"}"#;
    assert_eq!(
        request(M::PUT, &sc, "/v1.0/actors/Counter/t/timers/beat", timer).await,
        204
    );
    let reminder = r#"{"dueTime":"0s","period":"300ms"}"#;
    assert_eq!(
        request(
            M::PUT,
            &sc,
            "/v1.0/actors/Counter/r/reminders/tick",
            reminder
        )
        .await,
        204
    );
    traffic(&sc).await;
    let prometheus = Prometheus::start(
        &dir.join("prometheus"),
        &[Target {
            address: format!("127.0.0.1:{}", sc.metrics_port),
            namespace: NAMESPACE.to_owned(),
            service: format!("{APP_ID}-dapr"),
        }],
    );
    prometheus.wait_scrapes(1, 2).await;
    // More traffic between scrapes, so every rate() has an increase to see.
    traffic(&sc).await;
    prometheus.wait_scrapes(1, 2).await;

    let queries = listed_queries();
    assert!(queries.len() >= 25, "{} queries listed", queries.len());
    let mut empty = Vec::new();
    for q in &queries {
        let filled = fill_variables(q);
        match prometheus.query(&filled).await {
            Ok(result) if !result.is_empty() => {}
            Ok(_) => empty.push(format!("no data: {filled}")),
            Err(e) => empty.push(e),
        }
    }
    assert!(
        empty.is_empty(),
        "{} of {} queries failed:\n{}",
        empty.len(),
        queries.len(),
        empty.join("\n")
    );
    if let Ok(grafana) = std::env::var("TANDEM_DASHBOARDS_DIR") {
        report_dashboards(&prometheus, &grafana).await;
    }

    // The actor series behind those panels count what happened.
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = scrape(&sc).await;
        let deactivated = sample(
            &text,
            "dapr_runtime_actor_deactivated_total",
            &[("actor_type", ACTOR_TYPE)],
        );
        if deactivated.unwrap_or(0.0) >= 1.0 || Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let value = |name: &str, labels: &[(&str, &str)]| sample(&text, name, labels).unwrap_or(-1.0);
    let fired = [("actor_type", ACTOR_TYPE), ("success", "true")];
    assert!(
        value("dapr_runtime_actor_timers_fired_total", &fired) >= 2.0,
        "{text}"
    );
    assert!(
        value("dapr_runtime_actor_reminders_fired_total", &fired) >= 2.0,
        "{text}"
    );
    let failed = [("actor_type", ACTOR_TYPE), ("success", "false")];
    assert_eq!(value("dapr_runtime_actor_timers_fired_total", &failed), 0.0);
    assert!(
        value(
            "dapr_runtime_actor_status_report_total",
            &[("operation", "heartbeat")]
        ) >= 1.0
    );
    assert!(
        value(
            "dapr_runtime_actor_status_report_total",
            &[("operation", "leases")]
        ) >= 1.0
    );
    let update = [("actor_type", ACTOR_TYPE), ("operation", "update")];
    assert!(value("dapr_runtime_actor_table_operation_recv_total", &update) >= 1.0);
    let acquired = [("actor_type", ACTOR_TYPE), ("change", "acquired")];
    assert!(
        value("tandem_actor_shards_changed_total", &acquired) >= 1.0,
        "{text}"
    );
    // Every call that waited for a turn stopped waiting.
    let pending = value(
        "dapr_runtime_actor_pending_actor_calls",
        &[("actor_type", ACTOR_TYPE)],
    );
    assert_eq!(pending, 0.0);
    assert!(
        value(
            "dapr_runtime_actor_deactivated_total",
            &[("actor_type", ACTOR_TYPE)]
        ) >= 1.0,
        "{text}"
    );
    assert!(
        !text.contains("placement_table_updates"),
        "the old name is gone"
    );
    drop(prometheus);
    let _ = std::fs::remove_dir_all(&dir);
}
