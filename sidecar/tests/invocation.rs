//! Service invocation between real sidecar processes and real HTTP apps.

use std::time::{Duration, Instant};
use tandem_sidecar::testing::echo_app::EchoApp;
use tandem_sidecar::testing::sidecar::{Sidecar, SidecarBuilder};

const BIN: &str = env!("CARGO_BIN_EXE_tandem-sidecar");

fn client() -> reqwest::Client {
    tandem_sidecar::http_client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// Two sidecars sharing a registry: `a` (no app) and `b` (in front of an echo app).
async fn pair(dir: &std::path::Path, b_env: &[(&str, &str)]) -> (Sidecar, Sidecar, EchoApp) {
    let app = EchoApp::start().await;
    let a = SidecarBuilder::new(BIN, "a", dir)
        .arg("--max-body-size")
        .arg("64Mi")
        .start();
    let mut b = SidecarBuilder::new(BIN, "b", dir).app_port(app.port);
    for (k, v) in b_env {
        b = b.env(k, v);
    }
    let b = b.start();
    b.wait_ready(Duration::from_secs(30));
    (a, b, app)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn method_path_query_headers_body_and_status_pass_through() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, _b, app) = pair(dir.path(), &[]).await;
    let response = client()
        .patch(a.url("/v1.0/invoke/b/method/orders/42/items?x=1&y=%2F"))
        .header("x-custom", "kept")
        .header("x-status", "201")
        .header("dapr-caller-app-id", "spoofed")
        .header(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        )
        .header("content-type", "text/plain")
        .body("hello body")
        .send()
        .await
        .expect("invoke");
    assert_eq!(response.status().as_u16(), 201);
    let h = response.headers().clone();
    assert_eq!(h["x-echo-method"], "PATCH");
    assert_eq!(h["x-echo-uri"], "/orders/42/items?x=1&y=%2F");
    assert_eq!(h["x-echo-header-x-custom"], "kept");
    assert_eq!(
        h["x-echo-header-dapr-caller-app-id"], "a",
        "the caller id is the sidecar's, not the client's"
    );
    assert_eq!(h["x-echo-header-dapr-callee-app-id"], "b");
    let trace = h["x-echo-header-traceparent"].to_str().expect("text");
    assert!(
        trace.starts_with("00-0af7651916cd43dd8448eb211c80319c-")
            && !trace.contains("b7ad6b7169203331"),
        "{trace}"
    );
    assert_eq!(h["content-type"], "text/plain");
    assert_eq!(response.text().await.expect("body"), "hello body");
    assert_eq!(app.seen().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dapr_app_id_header_routes_any_path_and_is_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, _b, app) = pair(dir.path(), &[]).await;
    let response = client()
        .post(a.url("/hello/world?q=1"))
        .header("dapr-app-id", "b")
        .body("x")
        .send()
        .await
        .expect("invoke");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["x-echo-uri"], "/hello/world?q=1");
    assert!(app.seen()[0].headers.get("dapr-app-id").is_none());
    // No app id at all: Dapr's 404.
    let response = client()
        .get(a.url("/nothing/here"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 404);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["errorCode"], "ERR_DIRECT_INVOKE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn large_bodies_stream_both_ways() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, _b, _app) = pair(dir.path(), &[]).await;
    // 32 MiB in chunks, without a Content-Length: neither sidecar may need it whole.
    let chunk: Vec<u8> = (0..=255u8).cycle().take(1 << 20).collect();
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..32).map(|_| Ok(chunk.clone())).collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let response = client()
        .put(a.url("/v1.0/invoke/b/method/upload"))
        .body(body)
        .send()
        .await
        .expect("invoke");
    assert_eq!(response.status().as_u16(), 200);
    let echoed = response.bytes().await.expect("body");
    assert_eq!(echoed.len(), 32 << 20);
    assert!(
        echoed.chunks(1 << 20).all(|c| c == chunk.as_slice()),
        "body came back altered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn self_invocation_and_tokens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b, app) = pair(
        dir.path(),
        &[
            ("APP_API_TOKEN", "b-app-token"),
            ("DAPR_API_TOKEN", "b-api-token"),
        ],
    )
    .await;
    // a → b: b's app gets b's app token, never the caller's api token.
    let response = client()
        .get(a.url("/v1.0/invoke/b/method/x"))
        .header("dapr-api-token", "leak-me")
        .send()
        .await
        .expect("invoke");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(app.seen()[0].headers["dapr-api-token"], "b-app-token");
    // b → b (self): needs b's api token, which is stripped; the app token is added.
    let response = client()
        .get(b.url("/v1.0/invoke/b/method/self"))
        .send()
        .await
        .expect("invoke");
    assert_eq!(response.status().as_u16(), 401);
    let response = client()
        .get(b.url("/v1.0/invoke/b/method/self"))
        .header("dapr-api-token", "b-api-token")
        .send()
        .await
        .expect("invoke");
    assert_eq!(response.status().as_u16(), 200);
    let seen = app.seen();
    assert_eq!(seen.last().expect("seen").uri, "/self");
    assert_eq!(
        seen.last().expect("seen").headers["dapr-api-token"],
        "b-app-token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_and_dead_targets_fail_fast() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, mut b, _app) = pair(dir.path(), &[]).await;
    for target in ["nobody", "a.b.c", "bad$id"] {
        let started = Instant::now();
        let response = client()
            .get(a.url(&format!("/v1.0/invoke/{target}/method/x")))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status().as_u16(), 500, "{target}");
        let body: serde_json::Value = response.json().await.expect("json");
        assert_eq!(body["errorCode"], "ERR_DIRECT_INVOKE");
        // Fast: no timeout or retry loop waited out (the client would give up at 30 s).
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{target} took {:?}",
            started.elapsed()
        );
    }
    // kill -9: no clean exit, yet the registry entry disappears and calls fail fast.
    let registry = dir.path().join("registry");
    let entry = registry.join(format!("b.{}.json", b.pid()));
    assert!(entry.exists());
    b.signal(nix::sys::signal::Signal::SIGKILL);
    b.wait_exit(Duration::from_secs(30)).expect("killed");
    let started = Instant::now();
    let response = client()
        .get(a.url("/v1.0/invoke/b/method/x"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 500);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // The next lookup (after the resolver's short cache) finds the dead entry and removes it.
    let deadline = Instant::now() + Duration::from_secs(30);
    while entry.exists() {
        assert!(
            Instant::now() < deadline,
            "dead sidecar's registry entry is still there"
        );
        let _ = client().get(a.url("/v1.0/invoke/b/method/x")).send().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn calls_spread_over_instances_of_one_app() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, _b1, app1) = pair(dir.path(), &[]).await;
    let app2 = EchoApp::start().await;
    let b2 = SidecarBuilder::new(BIN, "b", dir.path())
        .app_port(app2.port)
        .start();
    b2.wait_ready(Duration::from_secs(30));
    let c = client();
    for _ in 0..40 {
        let r = c
            .get(a.url("/v1.0/invoke/b/method/x"))
            .send()
            .await
            .expect("invoke");
        assert_eq!(r.status().as_u16(), 200);
    }
    let (n1, n2) = (app1.seen().len(), app2.seen().len());
    assert_eq!(n1 + n2, 40);
    assert!(n1 >= 5 && n2 >= 5, "calls not spread: {n1} / {n2}");
}

/// The peer channel's HTTP/1.1 pool: many calls at once each get their own answer, and after the
/// callee's internal port has closed the idle connections (its 10 s header read timeout), the
/// next calls still go through: the pool drops idle connections before the peer does, so no
/// call is written onto a connection being closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_calls_and_calls_after_idle_connections_close() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, _b, app) = pair(dir.path(), &[]).await;
    let http = client();
    let burst = |round: usize| {
        let calls = (0..64).map(|i| {
            let (http, url) = (http.clone(), a.url(&format!("/v1.0/invoke/b/method/n/{i}")));
            async move {
                let body = format!("round {round} call {i}");
                let response = http.post(url).body(body.clone()).send().await;
                let response = response.expect("invoke");
                assert_eq!(response.status().as_u16(), 200, "call {i}");
                assert_eq!(response.text().await.expect("body"), body, "call {i}");
            }
        });
        futures_util::future::join_all(calls)
    };
    burst(1).await;
    tokio::time::sleep(Duration::from_secs(11)).await;
    burst(2).await;
    assert_eq!(app.seen().len(), 128, "every call reached the app once");
}

/// An instance shutting down gracefully under load loses no call: invocations written to it
/// after its drain began are answered "not run" and go to the other instance, and it closes its
/// idle connections only after the callers' pools have let go of them. Counted at both apps.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_graceful_shutdown_under_load_fails_no_call() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, mut b1, app1) = pair(dir.path(), &[]).await;
    let app2 = EchoApp::start().await;
    let b2 = SidecarBuilder::new(BIN, "b", dir.path())
        .app_port(app2.port)
        .start();
    b2.wait_ready(Duration::from_secs(30));
    let http = client();
    let until = Instant::now() + Duration::from_secs(6);
    let loops = (0..8).map(|worker| {
        let (http, url) = (http.clone(), a.url("/v1.0/invoke/b/method/work"));
        tokio::spawn(async move {
            let (mut ok, mut failed) = (0u32, Vec::new());
            let mut i = 0u32;
            while Instant::now() < until {
                i += 1;
                let body = format!("worker {worker} call {i}");
                match http.post(&url).body(body.clone()).send().await {
                    Ok(r) if r.status().is_success() => {
                        assert_eq!(r.text().await.expect("body"), body);
                        ok += 1;
                    }
                    Ok(r) => failed.push(format!(
                        "{}: {}",
                        r.status(),
                        r.text().await.unwrap_or_default()
                    )),
                    Err(e) => failed.push(e.to_string()),
                }
            }
            (ok, failed)
        })
    });
    let loops: Vec<_> = loops.collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    b1.signal(nix::sys::signal::Signal::SIGTERM);
    let (mut ok, mut failed) = (0u32, Vec::new());
    for handle in loops {
        let (o, f) = handle.await.expect("worker");
        ok += o;
        failed.extend(f);
    }
    assert!(b1.wait_exit(Duration::from_secs(15)).is_some(), "b1 exited");
    assert!(
        failed.is_empty(),
        "{} calls failed, e.g. {:?}",
        failed.len(),
        failed.first()
    );
    let (n1, n2) = (app1.seen().len(), app2.seen().len());
    assert_eq!(
        (n1 + n2) as u32,
        ok,
        "every successful call ran exactly once ({n1} on b1, {n2} on b2)"
    );
    assert!(n1 > 0 && n2 > 0, "both instances served: {n1} / {n2}");
}
