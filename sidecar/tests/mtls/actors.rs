//! Actor calls forwarded to the host placement chose go over mTLS too.

use super::*;
use std::sync::Arc;
use tandem_sidecar::testing::actor_app::{ActorApp, ActorLog};

const CONFIG: &str = r#"{"entities":["Counter"],"actorIdleTimeout":"1h"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actor_calls_reach_another_host_over_mtls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let app = ActorApp::start("h1", CONFIG, Arc::new(ActorLog::default())).await;
    let host = mtls_sidecar("counter", &data).app_port(app.port).start();
    app.set_sidecar(&host.url(""));
    host.wait_ready(Duration::from_secs(30));
    let caller = mtls_sidecar("caller", &data).start();
    caller.wait_ready(Duration::from_secs(30));
    for want in ["1", "2", "3"] {
        let response = client()
            .post(caller.url("/v1.0/actors/Counter/x/method/increment"))
            .send()
            .await
            .expect("actor call");
        assert_eq!(response.status().as_u16(), 200, "{}", caller.log());
        assert_eq!(response.text().await.expect("body"), want);
    }
    let refused = "dapr_runtime_mtls_peer_refused_total";
    assert_eq!(metric(&caller, refused, &[]).await, 0.0);
    assert_eq!(metric(&host, refused, &[]).await, 0.0);
    // The same forwarded call in plaintext, straight to the host's internal port, is refused.
    let forged = raw_request(
        host.internal_port,
        false,
        None,
        "PUT /v1.0/actors/Counter/x/method/increment HTTP/1.1\r\ntandem-actor-forwarded: 1",
    )
    .await;
    assert_eq!(forged.status, None);
    let response = client()
        .post(caller.url("/v1.0/actors/Counter/x/method/increment"))
        .send()
        .await
        .expect("actor call");
    assert_eq!(
        response.text().await.expect("body"),
        "4",
        "the forged call did nothing"
    );
}
