//! `tandem-e2e-app --port <port> [--drain-seconds <s>] [--actor-type <type>]`: the end-to-end
//! scenario's app (see `tandem_e2e::test_app`), or with `--actor-type` an actor host
//! (`tandem_e2e::test_actor`). Its pod name comes from `POD_NAME` or `HOSTNAME`.

use std::time::Duration;
use tandem_e2e::test_app::TestApp;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut port, mut drain, mut actor_type) = (8080_u16, 2_u64, None);
    while let Some(arg) = args.next() {
        let raw = args.next();
        let value = raw.as_deref().and_then(|v| v.parse::<u64>().ok());
        match (arg.as_str(), value) {
            ("--port", Some(v)) => port = u16::try_from(v).unwrap_or(port),
            ("--drain-seconds", Some(v)) => drain = v,
            ("--actor-type", _) if raw.as_deref().is_some_and(|t| !t.is_empty()) => {
                actor_type = raw;
            }
            _ => {
                eprintln!(
                    "usage: tandem-e2e-app --port <port> [--drain-seconds <s>] [--actor-type <type>]"
                );
                return std::process::ExitCode::from(64);
            }
        }
    }
    let pod = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_default();
    let listener = match tokio::net::TcpListener::bind(("0.0.0.0", port)).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("tandem-e2e-app: cannot listen on port {port}: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    eprintln!("tandem-e2e-app: {pod} listening on {port}");
    let router = match actor_type {
        Some(actor_type) => {
            let dapr_http_port = std::env::var("DAPR_HTTP_PORT")
                .ok()
                .and_then(|p| p.parse().ok())
                .unwrap_or(3500);
            match tandem_e2e::test_actor::router(actor_type, pod, dapr_http_port) {
                Ok(router) => router,
                Err(e) => {
                    eprintln!("tandem-e2e-app: {e}");
                    return std::process::ExitCode::from(1);
                }
            }
        }
        None => TestApp::new(pod).router(),
    };
    let serving = axum::serve(listener, router);
    tokio::select! {
        result = serving => {
            if let Err(e) = result {
                eprintln!("tandem-e2e-app: {e}");
                return std::process::ExitCode::from(1);
            }
        }
        () = stopping(drain) => {}
    }
    std::process::ExitCode::SUCCESS
}

/// SIGTERM, then `drain` seconds more of serving.
async fn stopping(drain: u64) {
    use tokio::signal::unix::{SignalKind, signal};
    if let Ok(mut term) = signal(SignalKind::terminate()) {
        term.recv().await;
    } else {
        std::future::pending::<()>().await;
    }
    eprintln!("tandem-e2e-app: SIGTERM; serving {drain} s more");
    tokio::time::sleep(Duration::from_secs(drain)).await;
}
