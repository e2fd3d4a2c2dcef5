//! The gRPC API as a user first meets it with `grpcurl` (the real binary, from
//! `scripts/lib/deps.sh`'s `ensure_grpcurl`): server reflection lists and describes
//! `dapr.proto.runtime.v1.Dapr`, and JSON calls made from the reflected schema round-trip state.

use std::process::Command;
use std::time::Duration;
use tandem_sidecar::testing::sidecar::Sidecar;

/// The grpcurl binary `ensure_grpcurl` exported.
fn grpcurl() -> String {
    std::env::var("TANDEM_GRPCURL").unwrap_or_else(|_| {
        panic!(
            "TANDEM_GRPCURL is not set: run `source scripts/lib/deps.sh && root=$PWD && ensure_grpcurl` \
             (scripts/test.sh does) to install grpcurl and export its path"
        )
    })
}

/// Runs `grpcurl -plaintext <before_address> <sidecar's gRPC address> <after_address>`;
/// returns its standard output, failing on a non-zero exit.
fn run(sc: &Sidecar, before_address: &[&str], after_address: &[&str]) -> String {
    let endpoint = sc.grpc_endpoint();
    let address = endpoint.trim_start_matches("http://");
    let output = Command::new(grpcurl())
        .args(["-plaintext", "-max-time", "20"])
        .args(before_address)
        .arg(address)
        .args(after_address)
        .output()
        .expect("run grpcurl");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "grpcurl {before_address:?} {address} {after_address:?} failed: {}\n{stdout}\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
        sc.log()
    );
    stdout
}

#[test]
fn grpcurl_lists_describes_and_calls_the_api_through_reflection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sc = super::everyday_sidecar(dir.path(), "grpcurl");
    sc.wait_ready(Duration::from_secs(30));

    let services = run(&sc, &[], &["list"]);
    assert!(
        services
            .lines()
            .any(|l| l.trim() == "dapr.proto.runtime.v1.Dapr"),
        "list: {services}"
    );
    let methods = run(&sc, &[], &["list", "dapr.proto.runtime.v1.Dapr"]);
    for method in ["SaveState", "GetState", "PublishEvent"] {
        let full = format!("dapr.proto.runtime.v1.Dapr.{method}");
        assert!(
            methods.lines().any(|l| l.trim() == full),
            "{full} not in {methods}"
        );
    }
    let service = run(&sc, &[], &["describe", "dapr.proto.runtime.v1.Dapr"]);
    assert!(
        service.contains("rpc GetState ( .dapr.proto.runtime.v1.GetStateRequest ) returns ( .dapr.proto.runtime.v1.GetStateResponse );"),
        "describe: {service}"
    );
    let message = run(
        &sc,
        &[],
        &["describe", "dapr.proto.runtime.v1.GetStateRequest"],
    );
    assert!(
        message.contains("string store_name = 1;"),
        "describe: {message}"
    );

    let save = r#"{"storeName":"statestore","states":[{"key":"greeting","value":"aGVsbG8gZ3JwY3VybA=="}]}"#;
    let saved = run(
        &sc,
        &["-d", save],
        &["dapr.proto.runtime.v1.Dapr/SaveState"],
    );
    let saved: serde_json::Value = serde_json::from_str(&saved).expect("SaveState answers JSON");
    assert_eq!(
        saved,
        serde_json::json!({}),
        "SaveState answers an empty message"
    );
    let get = r#"{"storeName":"statestore","key":"greeting"}"#;
    let got = run(&sc, &["-d", get], &["dapr.proto.runtime.v1.Dapr/GetState"]);
    let got: serde_json::Value = serde_json::from_str(&got).expect("GetState answers JSON");
    // grpcurl prints bytes as base64: "hello grpcurl".
    assert_eq!(got["data"], "aGVsbG8gZ3JwY3VybA==", "{got}");
    assert!(got["etag"].as_str().is_some_and(|e| !e.is_empty()), "{got}");
}
