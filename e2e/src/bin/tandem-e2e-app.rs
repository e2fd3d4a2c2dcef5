//! `tandem-e2e-app --port <port> [--drain-seconds <s>]`: the end-to-end scenario's app (see
//! `tandem_e2e::test_app`). Its pod name comes from `POD_NAME` or `HOSTNAME`.

use std::time::Duration;
use tandem_e2e::test_app::TestApp;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut port, mut drain) = (8080_u16, 2_u64);
    while let Some(arg) = args.next() {
        let value = args.next().and_then(|v| v.parse::<u64>().ok());
        match (arg.as_str(), value) {
            ("--port", Some(v)) => port = u16::try_from(v).unwrap_or(port),
            ("--drain-seconds", Some(v)) => drain = v,
            _ => {
                eprintln!("usage: tandem-e2e-app --port <port> [--drain-seconds <s>]");
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
    let serving = axum::serve(listener, TestApp::new(pod).router());
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
