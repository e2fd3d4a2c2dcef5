//! gRPC proxying by `dapr-app-id`: a client calls the target app's own services on the caller
//! sidecar's gRPC port, and the calls reach a real tonic server behind a second sidecar run with
//! `--app-protocol grpc` — unary with metadata (text and binary) and statuses, and a
//! bidirectional stream (server reflection) — while calls without the metadata stay local.

use super::BIN;
use dapr::dapr::proto::runtime::v1 as rt;
use dapr::dapr::proto::runtime::v1::app_callback_health_check_client::AppCallbackHealthCheckClient;
use dapr::dapr::proto::runtime::v1::app_callback_health_check_server::{
    AppCallbackHealthCheck, AppCallbackHealthCheckServer,
};
use std::time::Duration;
use tandem_sidecar::testing::free_port;
use tandem_sidecar::testing::sidecar::SidecarBuilder;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::transport::Channel;
use tonic::{Request, Response, Status};
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::{FILE_DESCRIPTOR_SET, ServerReflectionRequest};

/// The app's own unary service: echoes who called and a binary entry, or fails on request.
struct App;

#[tonic::async_trait]
impl AppCallbackHealthCheck for App {
    async fn health_check(
        &self,
        request: Request<()>,
    ) -> Result<Response<rt::HealthCheckResponse>, Status> {
        let md = request.metadata();
        if md.get("x-fail").is_some() {
            return Err(Status::failed_precondition("the app says no"));
        }
        let mut response = Response::new(rt::HealthCheckResponse {});
        if let Some(caller) = md.get("dapr-caller-app-id") {
            response
                .metadata_mut()
                .insert("x-seen-caller", caller.clone());
        }
        if let Some(data) = md.get_bin("x-data-bin") {
            response
                .metadata_mut()
                .insert_bin("x-data-bin", data.clone());
        }
        if let Some(token) = md.get("dapr-api-token") {
            response
                .metadata_mut()
                .insert("x-seen-token", token.clone());
        }
        Ok(response)
    }
}

async fn start_app(port: u16) {
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .build_v1()
        .expect("reflection");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(AppCallbackHealthCheckServer::new(App))
            .add_service(reflection)
            .serve(addr),
    );
}

fn to(target: &str, metadata: &mut MetadataMap) {
    metadata.insert(
        "dapr-app-id",
        MetadataValue::try_from(target).expect("metadata"),
    );
}

/// The services a reflection stream lists, asking twice on one stream.
async fn list_services(channel: Channel, target: Option<&str>, token: &str) -> Vec<String> {
    let asks = (0..2).map(|_| ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    });
    let mut request = Request::new(futures_util::stream::iter(asks));
    request.metadata_mut().insert(
        "dapr-api-token",
        MetadataValue::try_from(token).expect("metadata"),
    );
    if let Some(target) = target {
        to(target, request.metadata_mut());
    }
    let mut stream = ServerReflectionClient::new(channel)
        .server_reflection_info(request)
        .await
        .expect("reflection stream")
        .into_inner();
    let mut lists = Vec::new();
    while let Some(answer) = stream.message().await.expect("stream message") {
        if let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response {
            let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
            names.sort();
            lists.push(names);
        }
    }
    assert_eq!(lists.len(), 2, "one answer per request on the stream");
    assert_eq!(lists[0], lists[1]);
    lists.remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grpc_calls_are_proxied_to_the_app_named_by_dapr_app_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let app_port = free_port();
    start_app(app_port).await;
    let callee = SidecarBuilder::new(BIN, "grpc-target", &data)
        .app_port(app_port)
        .arg("--app-protocol")
        .arg("grpc")
        .env("APP_API_TOKEN", "app-secret")
        .start();
    let caller = SidecarBuilder::new(BIN, "grpc-proxy-caller", &data)
        .env("DAPR_API_TOKEN", "api-secret")
        .start();
    callee.wait_ready(Duration::from_secs(30));
    caller.wait_ready(Duration::from_secs(30));
    let channel = tonic::transport::Endpoint::from_shared(caller.grpc_endpoint())
        .expect("endpoint")
        .timeout(Duration::from_secs(20))
        .connect()
        .await
        .expect("connect");

    // Unary: metadata (text and binary) both ways, identity stamped by the sidecars, the API
    // token taken off and the app's own token put on.
    let mut request = Request::new(());
    to("grpc-target", request.metadata_mut());
    request
        .metadata_mut()
        .insert("dapr-api-token", MetadataValue::from_static("api-secret"));
    request
        .metadata_mut()
        .insert_bin("x-data-bin", MetadataValue::from_bytes(&[0, 159, 255]));
    let response = AppCallbackHealthCheckClient::new(channel.clone())
        .health_check(request)
        .await
        .unwrap_or_else(|e| panic!("proxied call: {e:?}\n{}\n{}", caller.log(), callee.log()));
    let md = response.metadata();
    assert_eq!(
        md.get("x-seen-caller").and_then(|v| v.to_str().ok()),
        Some("grpc-proxy-caller")
    );
    assert_eq!(
        md.get_bin("x-data-bin")
            .and_then(|v| v.to_bytes().ok())
            .map(|b| b.to_vec()),
        Some(vec![0, 159, 255])
    );
    assert_eq!(
        md.get("x-seen-token").and_then(|v| v.to_str().ok()),
        Some("app-secret"),
        "the app gets its own token, never the caller's API token"
    );

    // The app's error status and message come back through both sidecars (in trailers).
    let mut failing = Request::new(());
    to("grpc-target", failing.metadata_mut());
    failing
        .metadata_mut()
        .insert("dapr-api-token", MetadataValue::from_static("api-secret"));
    failing
        .metadata_mut()
        .insert("x-fail", MetadataValue::from_static("1"));
    let status = AppCallbackHealthCheckClient::new(channel.clone())
        .health_check(failing)
        .await
        .expect_err("the app fails it");
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
    assert_eq!(status.message(), "the app says no");

    // The API token gates proxied calls too.
    let mut no_token = Request::new(());
    to("grpc-target", no_token.metadata_mut());
    let status = AppCallbackHealthCheckClient::new(channel.clone())
        .health_check(no_token)
        .await
        .expect_err("no token");
    assert_eq!(status.code(), tonic::Code::Unauthenticated);

    // Streaming: a bidirectional reflection stream reaches the app's server, not the sidecar's.
    let app_services = list_services(channel.clone(), Some("grpc-target"), "api-secret").await;
    // The app registered only reflection's own descriptors; the sidecar lists the Dapr API.
    assert_eq!(app_services, ["grpc.reflection.v1.ServerReflection"]);
    let own = list_services(channel.clone(), None, "api-secret").await;
    assert!(
        own.contains(&"dapr.proto.runtime.v1.Dapr".to_owned()),
        "{own:?}"
    );

    // An unknown app is a gRPC status, not a hang.
    let mut lost = Request::new(());
    to("no-such-app", lost.metadata_mut());
    lost.metadata_mut()
        .insert("dapr-api-token", MetadataValue::from_static("api-secret"));
    let status = AppCallbackHealthCheckClient::new(channel)
        .health_check(lost)
        .await
        .expect_err("no such app");
    assert_ne!(status.code(), tonic::Code::Ok);
}
