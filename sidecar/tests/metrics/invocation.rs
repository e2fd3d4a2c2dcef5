//! Service invocation between two real sidecars and a real HTTP app: both sides' counts.

use super::{BIN, promtool_accepts, sample, scrape};
use std::time::Duration;
use tandem_sidecar::testing::echo_app::EchoApp;
use tandem_sidecar::testing::sidecar::SidecarBuilder;

const CALLS: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invocation_is_counted_by_caller_and_callee() {
    let dir = tandem_testkit::fresh_dir("metrics-invoke");
    let app = EchoApp::start().await;
    let config = dir.join("callee.yaml");
    std::fs::write(
        &config,
        "kind: Configuration\nspec:\n  metric: {http: {pathMatching: ['/orders/{id}']}}\n",
    )
    .expect("config");
    let caller = SidecarBuilder::new(BIN, "caller", &dir).start();
    let callee = SidecarBuilder::new(BIN, "callee", &dir)
        .app_port(app.port)
        .arg("--config")
        .arg(&config.to_string_lossy())
        .start();
    callee.wait_ready(Duration::from_secs(30));
    let c = super::common::client();
    for i in 0..CALLS {
        let answer = c
            .get(caller.url(&format!("/v1.0/invoke/callee/method/orders/{i}")))
            .send()
            .await
            .expect("invoke");
        assert_eq!(answer.status().as_u16(), 200);
        answer.bytes().await.expect("body");
    }
    let calls = CALLS as f64;
    let text = scrape(&caller).await;
    promtool_accepts(&text);
    let sent = [("dst_app_id", "callee"), ("type", "unary")];
    assert_eq!(
        sample(
            &text,
            "dapr_runtime_service_invocation_req_sent_total",
            &sent
        ),
        Some(calls),
        "{text}"
    );
    let received = [
        ("src_app_id", "callee"),
        ("status", "200"),
        ("type", "unary"),
    ];
    assert_eq!(
        sample(
            &text,
            "dapr_runtime_service_invocation_res_recv_total",
            &received
        ),
        Some(calls),
        "{text}"
    );
    let latency = [("src_app_id", "callee"), ("status", "200")];
    assert_eq!(
        sample(
            &text,
            "dapr_runtime_service_invocation_res_recv_latency_ms_count",
            &latency
        ),
        Some(calls),
        "{text}"
    );
    // The hop to the other sidecar, without a path (the caller has no pathMatching).
    let hop = [("method", "GET"), ("path", ""), ("status", "200")];
    assert_eq!(
        sample(&text, "dapr_http_client_completed_count", &hop),
        Some(calls),
        "{text}"
    );

    let text = scrape(&callee).await;
    promtool_accepts(&text);
    let recv = [("src_app_id", "caller")];
    assert_eq!(
        sample(
            &text,
            "dapr_runtime_service_invocation_req_recv_total",
            &recv
        ),
        Some(calls),
        "{text}"
    );
    let answered = [("dst_app_id", "caller"), ("status", "200")];
    assert_eq!(
        sample(
            &text,
            "dapr_runtime_service_invocation_res_sent_total",
            &answered
        ),
        Some(calls),
        "{text}"
    );
    // The call to the app, grouped by the callee's pattern.
    let to_app = [
        ("method", "GET"),
        ("path", "/orders/{id}"),
        ("status", "200"),
    ];
    assert_eq!(
        sample(&text, "dapr_http_client_completed_count", &to_app),
        Some(calls),
        "{text}"
    );
    assert_eq!(
        sample(&text, "dapr_http_client_roundtrip_latency_count", &to_app),
        Some(calls),
        "{text}"
    );
}
