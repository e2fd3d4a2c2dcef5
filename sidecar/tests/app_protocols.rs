//! `--app-protocol https`, `h2c` and `grpcs`: the sidecar speaks to real apps that accept only
//! that protocol (a TLS-only listener with a self-signed certificate, an HTTP/2-only listener, a
//! gRPC server behind TLS with ALPN h2), so every call that succeeds went over it. Invocation,
//! pub/sub delivery and the app's `dapr-api-token` are checked on the HTTP ones; `OnInvoke`
//! from an HTTP caller and the health check on the gRPC one.

use axum::Router;
use axum::extract::{Request, State};
use axum::routing::{any, get, post};
use dapr::dapr::proto::common::v1 as common;
use dapr::dapr::proto::runtime::v1 as rt;
use dapr::dapr::proto::runtime::v1::app_callback_health_check_server::{
    AppCallbackHealthCheck, AppCallbackHealthCheckServer,
};
use dapr::dapr::proto::runtime::v1::app_callback_server::{AppCallback, AppCallbackServer};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tandem_sidecar::testing::sidecar::{Sidecar, SidecarBuilder};
use tokio::net::TcpListener;
use tonic::{Response, Status};

const BIN: &str = env!("CARGO_BIN_EXE_tandem-sidecar");

/// What an HTTP app saw: for each request its path, HTTP version and `dapr-api-token`.
type Seen = Arc<Mutex<Vec<(String, http::Version, Option<String>)>>>;

fn record(seen: &Seen, req: &Request) {
    let token = req
        .headers()
        .get("dapr-api-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    seen.lock().unwrap_or_else(|p| p.into_inner()).push((
        req.uri().path().to_owned(),
        req.version(),
        token,
    ));
}

/// An HTTP app with one subscription (`pubsub`/`orders` → `/orders`) that echoes everything else.
fn http_app(seen: Seen) -> Router {
    let subscribe = || async {
        axum::Json(serde_json::json!([
            {"pubsubname": "pubsub", "topic": "orders", "route": "/orders"}
        ]))
    };
    let order = |State(seen): State<Seen>, req: Request| async move {
        record(&seen, &req);
        axum::Json(serde_json::json!({"status": "SUCCESS"}))
    };
    let echo = |State(seen): State<Seen>, req: Request| async move {
        record(&seen, &req);
        req.into_body()
    };
    Router::new()
        .route("/dapr/subscribe", get(subscribe))
        .route("/orders", post(order))
        .fallback(any(echo))
        .with_state(seen)
}

/// A self-signed certificate for `localhost` and 127.0.0.1, as apps in development have.
fn tls_acceptor(alpn: &[&[u8]]) -> tokio_rustls::TlsAcceptor {
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let cert = rcgen::generate_simple_self_signed(names).expect("certificate");
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(vec![cert.cert.der().clone()], key)
    .expect("server config");
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// Serves `router` on a free port, over TLS when `tls` is given, else HTTP/2 only (h2c).
async fn serve(router: Router, tls: Option<tokio_rustls::TlsAcceptor>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let service = TowerToHyperService::new(router.clone());
            let tls = tls.clone();
            tokio::spawn(async move {
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                match tls {
                    // A client that does not speak TLS fails its handshake here.
                    Some(tls) => {
                        if let Ok(stream) = tls.accept(tcp).await {
                            let _ = builder
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                    }
                    None => {
                        let _ = builder
                            .http2_only()
                            .serve_connection(TokioIo::new(tcp), service)
                            .await;
                    }
                }
            });
        }
    });
    port
}

fn start_sidecar(dir: &std::path::Path, app: &str, port: u16, protocol: &str) -> Sidecar {
    let sidecar = SidecarBuilder::new(BIN, app, dir)
        .app_port(port)
        .arg("--app-protocol")
        .arg(protocol)
        .env("APP_API_TOKEN", "app-secret")
        .start();
    sidecar.wait_ready(Duration::from_secs(30));
    sidecar
}

/// Invokes `method` on the sidecar's own app and publishes one event; both must reach the app.
async fn invoke_and_publish(sidecar: &Sidecar, seen: &Seen) {
    let client = tandem_sidecar::http_client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    let url = sidecar.url(&format!("/v1.0/invoke/{}/method/echo", sidecar.app_id));
    let answer = client.post(&url).body("ping").send().await.expect("invoke");
    let status = answer.status();
    let body = answer.text().await.unwrap_or_default();
    assert_eq!(status, 200, "{body}\n{}", sidecar.log());
    assert_eq!(body, "ping");
    let published = client
        .post(sidecar.url("/v1.0/publish/pubsub/orders"))
        .json(&serde_json::json!({"id": 7}))
        .send()
        .await
        .expect("publish");
    assert_eq!(published.status(), 204);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !seen_path(seen, "/orders") {
        assert!(Instant::now() < deadline, "no event; {}", sidecar.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn seen_path(seen: &Seen, path: &str) -> bool {
    let seen = seen.lock().unwrap_or_else(|p| p.into_inner());
    seen.iter().any(|(p, _, _)| p == path)
}

fn snapshot(seen: &Seen) -> Vec<(String, http::Version, Option<String>)> {
    seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_app_is_called_over_tls_with_its_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let seen = Seen::default();
    let port = serve(http_app(seen.clone()), Some(tls_acceptor(&[b"http/1.1"]))).await;
    let sidecar = start_sidecar(dir.path(), "secure", port, "https");
    invoke_and_publish(&sidecar, &seen).await;
    for (path, version, token) in snapshot(&seen) {
        assert_eq!(version, http::Version::HTTP_11, "{path}");
        assert_eq!(token.as_deref(), Some("app-secret"), "{path}");
    }
    // The same app behind a sidecar that speaks plain HTTP to it is unreachable: TLS was real.
    let plain = start_sidecar(&dir.path().join("plain"), "plain", port, "http");
    let client = tandem_sidecar::http_client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    let url = plain.url("/v1.0/invoke/plain/method/echo");
    let answer = client.post(&url).body("ping").send().await.expect("invoke");
    assert_eq!(
        answer.status(),
        500,
        "plain HTTP to a TLS-only app must fail"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h2c_app_is_called_over_http2_cleartext() {
    let dir = tempfile::tempdir().expect("tempdir");
    let seen = Seen::default();
    let port = serve(http_app(seen.clone()), None).await;
    let sidecar = start_sidecar(dir.path(), "cleartext", port, "h2c");
    invoke_and_publish(&sidecar, &seen).await;
    let seen = snapshot(&seen);
    assert!(seen.len() >= 2, "{seen:?}");
    for (path, version, token) in seen {
        assert_eq!(version, http::Version::HTTP_2, "{path}");
        assert_eq!(token.as_deref(), Some("app-secret"), "{path}");
    }
}

/// A gRPC app: `OnInvoke` echoes the data with the method name, and it reports healthy.
struct GrpcApp;

#[tonic::async_trait]
impl AppCallback for GrpcApp {
    async fn on_invoke(
        &self,
        request: tonic::Request<common::InvokeRequest>,
    ) -> Result<Response<common::InvokeResponse>, Status> {
        let token = request.metadata().get("dapr-api-token").cloned();
        if token.as_ref().and_then(|t| t.to_str().ok()) != Some("app-secret") {
            return Err(Status::unauthenticated("no app token"));
        }
        let invoke = request.into_inner();
        let data = invoke.data.map(|mut any| {
            any.value
                .extend_from_slice(format!(" via {}", invoke.method).as_bytes());
            any
        });
        Ok(Response::new(common::InvokeResponse {
            data,
            content_type: "text/plain".to_owned(),
        }))
    }

    async fn list_topic_subscriptions(
        &self,
        _request: tonic::Request<()>,
    ) -> Result<Response<rt::ListTopicSubscriptionsResponse>, Status> {
        Ok(Response::new(rt::ListTopicSubscriptionsResponse::default()))
    }

    async fn on_topic_event(
        &self,
        _request: tonic::Request<rt::TopicEventRequest>,
    ) -> Result<Response<rt::TopicEventResponse>, Status> {
        Err(Status::unimplemented("no topics"))
    }

    async fn on_bulk_topic_event(
        &self,
        _request: tonic::Request<rt::TopicEventBulkRequest>,
    ) -> Result<Response<rt::TopicEventBulkResponse>, Status> {
        Err(Status::unimplemented("no topics"))
    }

    async fn on_job_event(
        &self,
        _request: tonic::Request<rt::JobEventRequest>,
    ) -> Result<Response<rt::JobEventResponse>, Status> {
        Err(Status::unimplemented("no jobs"))
    }

    async fn list_input_bindings(
        &self,
        _request: tonic::Request<()>,
    ) -> Result<Response<rt::ListInputBindingsResponse>, Status> {
        Ok(Response::new(rt::ListInputBindingsResponse::default()))
    }

    async fn on_binding_event(
        &self,
        _request: tonic::Request<rt::BindingEventRequest>,
    ) -> Result<Response<rt::BindingEventResponse>, Status> {
        Err(Status::unimplemented("no bindings"))
    }
}

#[tonic::async_trait]
impl AppCallbackHealthCheck for GrpcApp {
    async fn health_check(
        &self,
        _request: tonic::Request<()>,
    ) -> Result<Response<rt::HealthCheckResponse>, Status> {
        Ok(Response::new(rt::HealthCheckResponse {}))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpcs_app_gets_on_invoke_over_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let router = tonic::service::Routes::new(AppCallbackServer::new(GrpcApp))
        .add_service(AppCallbackHealthCheckServer::new(GrpcApp))
        .into_axum_router();
    let port = serve(router, Some(tls_acceptor(&[b"h2"]))).await;
    let sidecar = SidecarBuilder::new(BIN, "grpcs-app", dir.path())
        .app_port(port)
        .arg("--app-protocol")
        .arg("grpcs")
        .arg("--enable-app-health-check")
        .arg("--app-health-probe-interval")
        .arg("1")
        .env("APP_API_TOKEN", "app-secret")
        .start();
    sidecar.wait_ready(Duration::from_secs(30));
    let client = tandem_sidecar::http_client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    let url = sidecar.url("/v1.0/invoke/grpcs-app/method/hello");
    let answer = client.post(&url).body("ping").send().await.expect("invoke");
    let status = answer.status();
    let body = answer.text().await.unwrap_or_default();
    assert_eq!(status, 200, "{body}\n{}", sidecar.log());
    assert_eq!(body, "ping via hello");
    // The health check goes over the same TLS channel: the app is reported healthy.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let metadata: serde_json::Value = client
            .get(sidecar.url("/v1.0/metadata"))
            .send()
            .await
            .expect("metadata")
            .json()
            .await
            .expect("metadata json");
        let health = metadata["appConnectionProperties"]["health"]["status"].clone();
        if health == "HEALTHY" {
            break;
        }
        assert!(Instant::now() < deadline, "{metadata}\n{}", sidecar.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
