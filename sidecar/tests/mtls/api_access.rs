//! `spec.api.denied`: the denied groups disappear from both front ends (HTTP 404
//! `ERR_NOT_FOUND`, gRPC UNIMPLEMENTED), the others stay.

use super::*;
use dapr::dapr::proto::runtime::v1 as rt;
use rt::dapr_client::DaprClient;

const CONFIG: &str = r#"apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata: {name: no-state}
spec:
  api:
    denied:
    - {name: state, version: v1.0, protocol: http}
    - {name: state, version: v1, protocol: grpc}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn denied_groups_disappear_from_both_front_ends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, CONFIG).expect("write config");
    let s = SidecarBuilder::new(BIN, "restricted", &dir.path().join("data"))
        .arg("--config")
        .arg(config.to_str().expect("utf-8 path"))
        .start();

    let denied = client()
        .get(s.url("/v1.0/state/statestore/k"))
        .send()
        .await
        .expect("state get");
    assert_eq!(denied.status().as_u16(), 404);
    let body: serde_json::Value = denied.json().await.expect("json");
    assert_eq!(body["errorCode"], "ERR_NOT_FOUND");
    let save = client()
        .post(s.url("/v1.0/state/statestore"))
        .body(r#"[{"key":"k","value":1}]"#)
        .send()
        .await
        .expect("state save");
    assert_eq!(save.status().as_u16(), 404);
    let metadata = client()
        .get(s.url("/v1.0/metadata"))
        .send()
        .await
        .expect("metadata");
    assert_eq!(metadata.status().as_u16(), 200, "other groups stay");

    let channel = tonic::transport::Endpoint::from_shared(s.grpc_endpoint())
        .expect("endpoint")
        .timeout(Duration::from_secs(20))
        .connect()
        .await
        .expect("connect");
    let mut grpc = DaprClient::new(channel);
    let status = grpc
        .get_state(rt::GetStateRequest {
            store_name: "statestore".into(),
            key: "k".into(),
            ..Default::default()
        })
        .await
        .expect_err("state is denied on gRPC");
    assert_eq!(status.code(), tonic::Code::Unimplemented);
    grpc.get_metadata(rt::GetMetadataRequest {})
        .await
        .expect("metadata stays on gRPC");
}
