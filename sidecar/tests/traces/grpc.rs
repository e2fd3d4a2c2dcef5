//! The gRPC API: `grpc-trace-bin` (daprd reads it first) names the parent, and the answer
//! carries the server span's context back.

use super::*;
use base64::Engine;
use dapr::dapr::proto::runtime::v1 as rt;
use dapr::dapr::proto::runtime::v1::dapr_client::DaprClient;

fn trace_bin(trace: &str, span: &str) -> String {
    let hex = |s: &str| {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect::<Vec<u8>>()
    };
    let mut bytes = vec![0, 0];
    bytes.extend(hex(trace));
    bytes.push(1);
    bytes.extend(hex(span));
    bytes.extend([2, 1]);
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grpc_trace_bin_names_the_parent_of_a_grpc_api_call() {
    let receiver = Receiver::otlp();
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), "tracing", &otlp_grpc(&receiver, "1"));
    let sc = sidecar(dir.path(), "grpc-caller", &cfg, None).start();
    let channel = tonic::transport::Endpoint::from_shared(sc.grpc_endpoint())
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let mut request = tonic::Request::new(rt::GetMetadataRequest::default());
    let bin = trace_bin("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    request.metadata_mut().insert_bin(
        "grpc-trace-bin",
        tonic::metadata::BinaryMetadataValue::from_bytes(
            &base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(&bin)
                .expect("base64"),
        ),
    );
    // A traceparent naming another trace loses to grpc-trace-bin.
    request
        .metadata_mut()
        .insert("traceparent", ROOT.parse().expect("ascii"));
    let response = DaprClient::new(channel)
        .get_metadata(request)
        .await
        .expect("GetMetadata");
    let echoed = response
        .metadata()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let spans = receiver
        .wait_for(WAIT, |s| !in_trace(s, trace).is_empty())
        .await;
    let span = find(&in_trace(&spans, trace), "grpc-caller", SERVER);
    assert_eq!(
        str_of(span, "name"),
        "/dapr.proto.runtime.v1.Dapr/GetMetadata"
    );
    assert_eq!(str_of(span, "parentSpanId"), "00f067aa0ba902b7");
    assert_eq!(attr(span, "rpc.method"), "GetMetadata");
    assert!(
        in_trace(&spans, TRACE).is_empty(),
        "traceparent was not used"
    );
    assert_eq!(
        span_id_of(&echoed),
        str_of(span, "spanId"),
        "the answer names the server span"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grpc_invoke_service_is_named_after_the_call() {
    let receiver = Receiver::otlp();
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), "tracing", &otlp_grpc(&receiver, "1"));
    let app = TracedApp::start().await;
    let a = sidecar(dir.path(), "grpc-a", &cfg, None).start();
    let b = sidecar(dir.path(), "grpc-b", &cfg, Some(app.port)).start();
    b.wait_ready(WAIT);
    let channel = tonic::transport::Endpoint::from_shared(a.grpc_endpoint())
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let mut request = tonic::Request::new(rt::InvokeServiceRequest {
        id: "grpc-b".into(),
        message: Some(dapr::dapr::proto::common::v1::InvokeRequest {
            method: "orders".into(),
            http_extension: Some(dapr::dapr::proto::common::v1::HttpExtension {
                verb: 2, // POST
                querystring: String::new(),
            }),
            ..Default::default()
        }),
    });
    request
        .metadata_mut()
        .insert("traceparent", ROOT.parse().expect("ascii"));
    DaprClient::new(channel)
        .invoke_service(request)
        .await
        .expect("InvokeService");
    let spans = receiver
        .wait_for(WAIT, |s| in_trace(s, TRACE).len() >= 3)
        .await;
    let trace = in_trace(&spans, TRACE);
    let server = find(&trace, "grpc-a", SERVER);
    assert_eq!(str_of(server, "name"), "CallLocal/grpc-b/orders");
    assert_eq!(attr(server, "rpc.method"), "InvokeService");
    let client_span = find(&trace, "grpc-a", CLIENT);
    let callee = find(&trace, "grpc-b", SERVER);
    assert_eq!(
        str_of(callee, "parentSpanId"),
        str_of(client_span, "spanId")
    );
}
