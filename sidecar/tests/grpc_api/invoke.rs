//! `InvokeService` through two sidecars to a real HTTP app (the echo app): verb, query string,
//! content type, data and metadata reach it; its status, headers and body come back as daprd
//! maps them.

use super::{BIN, assert_status, connect};
use dapr::dapr::proto::common::v1::{HttpExtension, InvokeRequest, http_extension::Verb};
use dapr::dapr::proto::runtime::v1 as rt;
use std::time::Duration;
use tandem_sidecar::testing::echo_app::EchoApp;
use tandem_sidecar::testing::sidecar::SidecarBuilder;
use tonic::Code;
use tonic_types::StatusExt;

fn call(
    id: &str,
    method: &str,
    verb: Option<Verb>,
    query: &str,
    body: &[u8],
) -> rt::InvokeServiceRequest {
    rt::InvokeServiceRequest {
        id: id.into(),
        message: Some(InvokeRequest {
            method: method.into(),
            data: Some(prost_types::Any {
                type_url: String::new(),
                value: body.to_vec(),
            }),
            content_type: "application/json".into(),
            http_extension: verb.map(|v| HttpExtension {
                verb: v as i32,
                querystring: query.into(),
            }),
        }),
    }
}

fn text<'a>(md: &'a tonic::metadata::MetadataMap, name: &str) -> &'a str {
    md.get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} in {md:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoke_service_reaches_the_app_and_maps_its_answer() {
    let app = EchoApp::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let callee = SidecarBuilder::new(BIN, "grpc-callee", &data)
        .app_port(app.port)
        .start();
    callee.wait_ready(Duration::from_secs(10));
    let caller = SidecarBuilder::new(BIN, "grpc-caller", &data)
        .env("DAPR_API_TOKEN", "caller-token")
        .start();
    let mut c = connect(&caller).await;
    let token = |mut req: tonic::Request<rt::InvokeServiceRequest>| {
        req.metadata_mut()
            .insert("dapr-api-token", "caller-token".parse().expect("ascii"));
        req
    };

    let body = br#"{"order":42,"note":"caf\u00e9"}"#;
    let mut req = tonic::Request::new(call(
        "grpc-callee",
        "orders/42",
        Some(Verb::Put),
        "q=1&tag=v-1.2",
        body,
    ));
    req.metadata_mut()
        .insert("x-custom", "kept".parse().expect("ascii"));
    let answer = c.invoke_service(token(req)).await.expect("invoke");
    let md = answer.metadata().clone();
    let message = answer.into_inner();
    assert_eq!(message.data.map(|d| d.value).unwrap_or_default(), body);
    assert_eq!(message.content_type, "application/json");
    assert_eq!(text(&md, "dapr-http-status"), "200");
    assert_eq!(text(&md, "x-echo-method"), "PUT");
    assert_eq!(text(&md, "x-echo-uri"), "/orders/42?q=1&tag=v-1.2");
    assert_eq!(text(&md, "x-echo-header-x-custom"), "kept");
    assert_eq!(text(&md, "x-echo-header-content-type"), "application/json");
    assert_eq!(text(&md, "x-echo-header-dapr-caller-app-id"), "grpc-caller");
    assert_eq!(text(&md, "dapr-content-type"), "application/json");
    assert!(
        md.get("x-echo-header-dapr-api-token").is_none(),
        "the token reached the app"
    );

    // No HTTP extension: POST, as daprd does.
    let req = tonic::Request::new(call("grpc-callee", "plain", None, "", b"x"));
    let answer = c.invoke_service(token(req)).await.expect("invoke");
    assert_eq!(text(answer.metadata(), "x-echo-method"), "POST");

    // The app's 404 is NOT_FOUND, with the HTTP code and the body's start in the ErrorInfo.
    let mut req = tonic::Request::new(call(
        "grpc-callee",
        "missing",
        Some(Verb::Get),
        "",
        b"no such order",
    ));
    req.metadata_mut()
        .insert("x-status", "404".parse().expect("ascii"));
    let status = c
        .invoke_service(token(req))
        .await
        .expect_err("the app answered 404");
    assert_eq!(
        (status.code(), status.message()),
        (Code::NotFound, "Not Found")
    );
    let info = status.get_details_error_info().expect("an ErrorInfo");
    assert_eq!(info.metadata["http.code"], "404");
    assert_eq!(info.metadata["http.error_message"], "no such order");
    assert_eq!(text(status.metadata(), "dapr-http-status"), "404");

    let req = tonic::Request::new(call("nobody-home", "x", Some(Verb::Get), "", b""));
    let message = assert_status(
        c.invoke_service(token(req)).await,
        Code::Internal,
        "ERR_DIRECT_INVOKE",
    );
    assert!(message.contains("nobody-home"), "{message}");

    let calls: Vec<String> = app
        .seen()
        .iter()
        .map(|s| format!("{} {}", s.method, s.uri))
        .collect();
    assert_eq!(
        calls,
        [
            "PUT /orders/42?q=1&tag=v-1.2",
            "POST /plain",
            "GET /missing"
        ]
    );
}
