//! gRPC proxying (`dapr-app-id` metadata) over mTLS, with the callee's access-control policy on
//! gRPC method names: an allowed caller reaches the app's service, a caller without a policy
//! and a method no rule allows get PERMISSION_DENIED; `InvokeService` refused by the policy of
//! an HTTP callee is PERMISSION_DENIED too.

use super::*;
use dapr::dapr::proto::common::v1::InvokeRequest;
use dapr::dapr::proto::runtime::v1 as rt;
use dapr::dapr::proto::runtime::v1::app_callback_client::AppCallbackClient;
use dapr::dapr::proto::runtime::v1::app_callback_health_check_client::AppCallbackHealthCheckClient;
use dapr::dapr::proto::runtime::v1::app_callback_health_check_server::{
    AppCallbackHealthCheck, AppCallbackHealthCheckServer,
};
use tandem_sidecar::testing::free_port;
use tonic::metadata::MetadataValue;

const POLICY: &str = r#"apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata: {name: grpc-callee}
spec:
  accessControl:
    defaultAction: deny
    policies:
    - appId: a
      defaultAction: deny
      trustDomain: public
      namespace: default
      operations:
      - {name: /dapr.proto.runtime.v1.AppCallbackHealthCheck/HealthCheck, action: allow}
"#;

/// Answers health checks, echoing the caller the sidecar vouched for.
struct App;

#[tonic::async_trait]
impl AppCallbackHealthCheck for App {
    async fn health_check(
        &self,
        request: tonic::Request<()>,
    ) -> Result<tonic::Response<rt::HealthCheckResponse>, tonic::Status> {
        let mut response = tonic::Response::new(rt::HealthCheckResponse {});
        if let Some(caller) = request.metadata().get("dapr-caller-app-id") {
            response
                .metadata_mut()
                .insert("x-seen-caller", caller.clone());
        }
        Ok(response)
    }
}

async fn channel(s: &Sidecar) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(s.grpc_endpoint())
        .expect("endpoint")
        .timeout(Duration::from_secs(20))
        .connect()
        .await
        .expect("connect")
}

fn to_callee<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("dapr-app-id", MetadataValue::from_static("g"));
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn proxied_grpc_goes_over_mtls_and_obeys_the_policy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let config = dir.path().join("g.yaml");
    std::fs::write(&config, POLICY).expect("write config");
    let app_port = free_port();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(AppCallbackHealthCheckServer::new(App))
            .serve(std::net::SocketAddr::from(([127, 0, 0, 1], app_port))),
    );
    let g = mtls_sidecar("g", &data)
        .app_port(app_port)
        .arg("--app-protocol")
        .arg("grpc")
        .arg("--config")
        .arg(config.to_str().expect("utf-8 path"))
        .start();
    g.wait_ready(Duration::from_secs(30));
    let a = mtls_sidecar("a", &data).start();
    let c = mtls_sidecar("c", &data).start();

    let answer = AppCallbackHealthCheckClient::new(channel(&a).await)
        .health_check(to_callee(()))
        .await
        .unwrap_or_else(|e| panic!("a may call HealthCheck: {e}\n{}", g.log()));
    let seen = answer
        .metadata()
        .get("x-seen-caller")
        .and_then(|v| v.to_str().ok());
    assert_eq!(seen, Some("a"));

    let denied = AppCallbackHealthCheckClient::new(channel(&c).await)
        .health_check(to_callee(()))
        .await
        .expect_err("c has no policy");
    assert_eq!(denied.code(), tonic::Code::PermissionDenied, "{denied:?}");
    let other_method = AppCallbackClient::new(channel(&a).await)
        .list_topic_subscriptions(to_callee(()))
        .await
        .expect_err("no rule allows this method");
    assert_eq!(
        other_method.code(),
        tonic::Code::PermissionDenied,
        "{other_method:?}"
    );

    // InvokeService to the same callee: the policy decides on the HTTP method path.
    let invoke = rt::dapr_client::DaprClient::new(channel(&c).await)
        .invoke_service(rt::InvokeServiceRequest {
            id: "g".into(),
            message: Some(InvokeRequest {
                method: "anything".into(),
                ..Default::default()
            }),
        })
        .await
        .expect_err("c has no policy");
    assert_eq!(invoke.code(), tonic::Code::PermissionDenied, "{invoke:?}");

    assert_eq!(acl_outcomes(&g).await, (1.0, 3.0));
}
