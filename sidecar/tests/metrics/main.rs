//! Dapr's metrics against real sidecar processes: real HTTP and gRPC traffic, then a scrape of
//! the metrics port that `promtool check metrics` (Debian's prometheus package) must accept,
//! with counts equal to the traffic made, and the Configuration's `spec.metric` knobs
//! (`increasedCardinality`, `pathMatching`, `enabled: false`) changing what is exposed.

#[path = "../common/mod.rs"]
mod common;
mod dashboards;
mod invocation;
mod prometheus;

use dapr::dapr::proto::runtime::v1 as rt;
use dapr::dapr::proto::runtime::v1::dapr_client::DaprClient;
use std::path::Path;
use std::time::Duration;
use tandem_crds::Component;
use tandem_sidecar::testing::sidecar::{Sidecar, SidecarBuilder};

const BIN: &str = env!("CARGO_BIN_EXE_tandem-sidecar");

/// A sidecar with an in-memory state store and pub/sub, and `metric` as `spec.metric`.
fn sidecar(dir: &Path, app_id: &str, metric: &str) -> Sidecar {
    let res = dir.join("resources");
    for c in [
        Component::test("statestore", "state.in-memory"),
        Component::test("pubsub", "pubsub.in-memory"),
    ] {
        let file = format!("{}.yaml", c.metadata.name.clone().unwrap_or_default());
        common::write_component(&res, &file, &common::manifest(&c));
    }
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        format!("apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata: {{name: m}}\nspec:\n  metric: {metric}\n"),
    )
    .expect("write config");
    SidecarBuilder::new(BIN, app_id, &dir.join("data"))
        .resources(&res)
        .arg("--config")
        .arg(&config.to_string_lossy())
        .start()
}

async fn scrape(s: &Sidecar) -> String {
    common::client()
        .get(format!("http://127.0.0.1:{}/metrics", s.metrics_port))
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text")
}

/// The value of the sample `name` whose labels include every one of `labels`.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (metric, rest) = series.split_once('{').unwrap_or((series, "}"));
        let pairs: Vec<&str> = rest.trim_end_matches('}').split(',').collect();
        let has_all = labels
            .iter()
            .all(|(k, v)| pairs.contains(&format!("{k}=\"{v}\"").as_str()));
        (metric == name && has_all).then(|| value.parse().ok())?
    })
}

/// Every `dapr_*` series name with its label names (`le` left out), one per line, sorted.
fn label_sets(text: &str) -> std::collections::BTreeSet<String> {
    text.lines()
        .filter(|l| l.starts_with("dapr_"))
        .filter_map(|l| {
            let series = l.rsplit_once(' ')?.0;
            let (name, rest) = series.split_once('{').unwrap_or((series, "}"));
            let mut labels: Vec<&str> = rest
                .trim_end_matches('}')
                .split(',')
                .filter_map(|p| p.split_once('=').map(|(k, _)| k))
                .filter(|k| *k != "le")
                .collect();
            labels.sort_unstable();
            Some(format!("{name}{{{}}}", labels.join(",")))
        })
        .collect()
}

/// `promtool check metrics` on the scrape: 0 is clean, 3 is lint only (Dapr's counter names
/// have no `_total`); anything else is a format error.
fn promtool_accepts(text: &str) {
    use std::io::Write;
    let promtool = std::env::var("TANDEM_PROMTOOL").unwrap_or_else(|_| "promtool".to_owned());
    let mut child = std::process::Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{promtool} (scripts/lib/deps.sh ensure_promtool): {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("promtool");
    let code = out.status.code();
    assert!(
        matches!(code, Some(0) | Some(3)),
        "promtool exit {code:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Saves one key, reads it 7 times over HTTP and 3 times over gRPC, publishes once.
async fn traffic(s: &Sidecar) {
    let c = common::client();
    let saved = c
        .post(s.url("/v1.0/state/statestore"))
        .json(&serde_json::json!([{"key": "k1", "value": {"n": 1}}]))
        .send()
        .await
        .expect("save");
    assert_eq!(saved.status().as_u16(), 204);
    for _ in 0..7 {
        let got = c
            .get(s.url("/v1.0/state/statestore/k1"))
            .send()
            .await
            .expect("get");
        assert_eq!(got.status().as_u16(), 200);
    }
    let published = c
        .post(s.url("/v1.0/publish/pubsub/orders"))
        .json(&serde_json::json!({"id": 1}))
        .send()
        .await
        .expect("publish");
    assert_eq!(published.status().as_u16(), 204);
    let mut grpc = DaprClient::connect(s.grpc_endpoint())
        .await
        .expect("connect");
    for _ in 0..3 {
        let got = grpc
            .get_state(rt::GetStateRequest {
                store_name: "statestore".into(),
                key: "k1".into(),
                ..Default::default()
            })
            .await
            .expect("GetState");
        assert!(!got.into_inner().data.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_is_counted_with_dapr_names_and_labels() {
    let dir = tandem_testkit::fresh_dir("metrics-default");
    let s = sidecar(&dir, "counted", "{}");
    traffic(&s).await;
    let text = scrape(&s).await;
    promtool_accepts(&text);
    let http_gets = [
        ("app_id", "counted"),
        ("method", "GET"),
        ("path", ""),
        ("status", "200"),
    ];
    assert_eq!(
        sample(&text, "dapr_http_server_request_count", &http_gets),
        Some(7.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "dapr_http_server_latency_count", &http_gets),
        Some(7.0),
        "{text}"
    );
    let state_gets = [
        ("component", "statestore"),
        ("operation", "get"),
        ("success", "true"),
    ];
    assert_eq!(
        sample(&text, "dapr_component_state_count", &state_gets),
        Some(10.0),
        "{text}"
    );
    let grpc_gets = [
        ("grpc_server_method", "/dapr.proto.runtime.v1.Dapr/GetState"),
        ("grpc_server_status", "OK"),
    ];
    assert_eq!(
        sample(&text, "dapr_grpc_io_server_completed_rpcs", &grpc_gets),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "dapr_grpc_io_server_server_latency_count",
            &grpc_gets
        ),
        Some(3.0),
        "{text}"
    );
    let received = [("grpc_server_method", "/dapr.proto.runtime.v1.Dapr/GetState")];
    assert_eq!(
        sample(
            &text,
            "dapr_grpc_io_server_received_bytes_per_rpc_count",
            &received
        ),
        Some(3.0),
        "{text}"
    );
    let egress = [
        ("component", "pubsub"),
        ("topic", "orders"),
        ("success", "true"),
    ];
    assert_eq!(
        sample(&text, "dapr_component_pubsub_egress_count", &egress),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "dapr_runtime_component_loaded", &[]),
        Some(2.0),
        "{text}"
    );
    let init = [("component", "state.in-memory")];
    assert_eq!(
        sample(&text, "dapr_runtime_component_init_total", &init),
        Some(1.0),
        "{text}"
    );
    // Exactly the series this traffic makes, by name and label names.
    let golden: std::collections::BTreeSet<String> = include_str!("golden.txt")
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    let exposed = label_sets(&text);
    let exposed_text: Vec<&str> = exposed.iter().map(String::as_str).collect();
    assert_eq!(exposed, golden, "exposed:\n{}", exposed_text.join("\n"));
    // Low cardinality by default: no key, store or raw path anywhere in a label.
    assert!(
        !text.contains("k1") && !text.contains("/v1.0/state"),
        "{text}"
    );
    // Dapr's default buckets, in ms, up to 100 s.
    assert!(
        text.contains("dapr_http_server_latency_bucket{") && text.contains("le=\"100000\""),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn increased_cardinality_and_path_matching_change_the_path_label() {
    let dir = tandem_testkit::fresh_dir("metrics-cardinality");
    let raw = sidecar(
        &dir.join("raw"),
        "raw",
        "{http: {increasedCardinality: true}}",
    );
    let grouped = sidecar(
        &dir.join("grouped"),
        "grouped",
        "{http: {pathMatching: ['/v1.0/state/{store}/{key}'], excludeVerbs: true}}",
    );
    traffic(&raw).await;
    traffic(&grouped).await;
    let text = scrape(&raw).await;
    promtool_accepts(&text);
    let gets = [
        ("method", "GET"),
        ("path", "/v1.0/state/statestore"),
        ("status", "200"),
    ];
    assert_eq!(
        sample(&text, "dapr_http_server_request_count", &gets),
        Some(7.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "dapr_http_server_response_count", &gets),
        Some(7.0),
        "{text}"
    );
    let text = scrape(&grouped).await;
    promtool_accepts(&text);
    let gets = [
        ("method", ""),
        ("path", "/v1.0/state/{store}/{key}"),
        ("status", "200"),
    ];
    assert_eq!(
        sample(&text, "dapr_http_server_request_count", &gets),
        Some(7.0),
        "{text}"
    );
    assert!(!text.contains("dapr_http_server_response_count"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_metrics_open_no_port() {
    let dir = tandem_testkit::fresh_dir("metrics-off");
    let s = sidecar(&dir, "quiet", "{enabled: false}");
    traffic(&s).await;
    let scraped = common::client()
        .get(format!("http://127.0.0.1:{}/metrics", s.metrics_port))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(scraped.is_err(), "the metrics port answered: {scraped:?}");
}
