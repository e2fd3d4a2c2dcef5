//! Reliability T1: the `DAPR_API_TOKEN` gate and the app token, against real sidecar processes.
//!
//! Every route of the router × every method × path tricks × token variants is sent as raw bytes
//! (so no client normalises the path), plus an HTTP/2 pass. Without a valid token only exactly
//! `GET /v1.0/healthz` and `GET /v1.0/healthz/outbound` may answer anything but a JSON 401, and no
//! request may reach the app. Then the tokens' travel: the app only ever sees its own
//! `APP_API_TOKEN`, never a client's or another sidecar's token.

#[path = "../common/mod.rs"]
mod common;
mod h2;
mod judge;
mod leaks;
mod matrix;
mod tok;

use common::raw_http;
use judge::Tally;
use std::time::{Duration, Instant};
use tandem_sidecar::testing::echo_app::EchoApp;
use tandem_sidecar::testing::sidecar::{Sidecar, SidecarBuilder};

const BIN: &str = env!("CARGO_BIN_EXE_tandem-sidecar");

struct Cluster {
    _dir: tempfile::TempDir,
    a: Sidecar,
    b: Sidecar,
    c: Sidecar,
    b_app: EchoApp,
    c_app: EchoApp,
}

/// `a`: `DAPR_API_TOKEN=tok-a`, no app. `b`: `DAPR_API_TOKEN=tok-b`, `APP_API_TOKEN=app-b`, in
/// front of an echo app. `c`: no tokens at all, in front of another echo app. One registry.
async fn cluster() -> Cluster {
    let dir = tempfile::tempdir().expect("tempdir");
    let resources = dir.path().join("resources");
    common::write_component(
        &resources,
        "components.yaml",
        common::components::STATE_AND_SECRETS,
    );
    let data = dir.path().join("data");
    let b_app = EchoApp::start().await;
    let c_app = EchoApp::start().await;
    let a = SidecarBuilder::new(BIN, "a", &data)
        .resources(&resources)
        .env("DAPR_API_TOKEN", "tok-a")
        .spawn();
    let b = SidecarBuilder::new(BIN, "b", &data)
        .resources(&resources)
        .app_port(b_app.port)
        .env("DAPR_API_TOKEN", "tok-b")
        .env("APP_API_TOKEN", "app-b")
        .spawn();
    let c = SidecarBuilder::new(BIN, "c", &data)
        .resources(&resources)
        .app_port(c_app.port)
        .spawn();
    for s in [&a, &b, &c] {
        s.wait_ready(Duration::from_secs(20));
    }
    Cluster {
        _dir: dir,
        a,
        b,
        c,
        b_app,
        c_app,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn token_gate_has_no_bypass() {
    let started = Instant::now();
    let mut c = cluster().await;

    // The exempt checks really work without a token.
    for s in [&c.a, &c.b] {
        for path in ["/v1.0/healthz", "/v1.0/healthz/outbound"] {
            let bytes = raw_http::request("GET", path, &[], b"");
            let r = judge::send_raw(s.http_port, bytes, false)
                .await
                .expect("health");
            assert_eq!(r.status, 204, "{path} on {} without a token", s.app_id);
        }
    }

    let mut refused = Tally::default();
    let cases = matrix::matrix(&c, false);
    judge::run_matrix(&cases, &mut refused).await;
    let h1_sent = refused.sent;
    h2::run_h2(&c, &mut refused).await;
    let app_hits = c.b_app.seen().len() + c.c_app.seen().len();

    // Both token-holding sidecars are still up: no shutdown got through.
    assert!(
        matches!(c.a.child.try_wait(), Ok(None)),
        "sidecar a exited during the matrix:\n{}",
        c.a.log()
    );
    assert!(
        matches!(c.b.child.try_wait(), Ok(None)),
        "sidecar b exited during the matrix:\n{}",
        c.b.log()
    );

    let mut accepted = Tally::default();
    let valid_cases = matrix::matrix(&c, true);
    judge::run_matrix(&valid_cases, &mut accepted).await;

    println!(
        "T1 gate: {} requests without a valid token ({} HTTP/1.1 raw, {} HTTP/2): {} refused with JSON 401, {} exempt health GETs answered 204, {} failures",
        refused.sent,
        h1_sent,
        refused.sent - h1_sent,
        refused.refused_401_json,
        refused.exempt_ok,
        refused.failures.len()
    );
    println!("T1 gate: by token variant {:?}", refused.by_tok);
    println!("T1 gate: 401 errorCodes {:?}", refused.codes);
    println!(
        "T1 gate: {} requests with a valid token under another header-name case: {} accepted, {} failures",
        accepted.sent,
        accepted.accepted_valid,
        accepted.failures.len()
    );
    println!(
        "T1 gate: app requests during the refused phase: {app_hits}; took {:?}",
        started.elapsed()
    );

    let total = refused.sent + accepted.sent;
    assert!(total >= 5_000, "only {total} requests");
    assert!(refused.exempt_ok > 0, "no exempt health request was sent");
    let mut failures = refused.failures;
    failures.extend(accepted.failures);
    assert!(
        failures.is_empty(),
        "{} failures (0 bypasses allowed), first 40:\n{}",
        failures.len(),
        failures
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(app_hits, 0, "requests without a valid token reached an app");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn apps_see_only_their_own_app_token() {
    let c = cluster().await;
    let client = common::client();
    let app_b = ["app-b".to_owned()];
    let none: [String; 0] = [];
    let mut report = Vec::new();
    let mut total_leaks = 0;
    for leaks::Leg {
        label,
        port,
        target,
        token,
        n,
        app,
        want,
    } in leaks::legs(&c, &app_b, &none)
    {
        let from = app.seen().len();
        let ok = leaks::calls(&client, port, target, token, n, label).await;
        let (count, by_value, leaks) = leaks::seen_tokens(app, from);
        let wrong: usize = by_value
            .iter()
            .filter(|(values, _)| *values != want)
            .map(|(_, n)| n)
            .sum();
        report.push(format!(
            "{label}: {ok}/{n} answered 200, app saw {count}, dapr-api-token values {by_value:?}, wrong {wrong}, leaked client/sidecar tokens {}",
            leaks.len()
        ));
        total_leaks += wrong + leaks.len();
        assert_eq!(ok, n, "{label}: not every call succeeded");
        assert_eq!(count, n, "{label}: the app did not see every call");
        assert_eq!(
            wrong, 0,
            "{label}: the app saw tokens {by_value:?}, want {want:?} on every call"
        );
        assert!(
            leaks.is_empty(),
            "{label}: tokens leaked to the app: {:?}",
            &leaks[..leaks.len().min(10)]
        );
    }
    for line in &report {
        println!("T1 tokens: {line}");
    }
    println!("T1 tokens: total token leaks {total_leaks}");
}
