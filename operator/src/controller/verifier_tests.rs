//! The reconcile flows against a scripted API server (kube's `ApiServerVerifier` pattern, with
//! `tower-test`): each test states the requests a reconcile must make, in order, answers them, and
//! fails on any other request. Steady state is checked the same way: no request at all.

use super::{Context, RESYNC, validated, workload};
use crate::cache::TrimmedWorkload;
use crate::metrics::Metrics;
use http::{Method, Request, Response, StatusCode};
use k8s_openapi::api::apps::v1::Deployment;
use kube::client::Body;
use kube::runtime::controller::Action;
use serde_json::{Value, json};
use std::future::Future;
use std::sync::Arc;
use tandem_crds::Component;
use tower_test::mock::{self, Handle};

type ApiServer = Handle<Request<Body>, Response<Body>>;

fn context() -> (Arc<Context>, ApiServer) {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    let metrics = Arc::new(Metrics::new().expect("metrics"));
    (Arc::new(Context::new(client, metrics)), handle)
}

/// One expected request: its method and path (query included), answered with `status` and `body`.
/// Returns the request's JSON body.
async fn expect(
    server: &mut ApiServer,
    method: Method,
    path: &str,
    status: u16,
    body: Value,
) -> Value {
    let (request, respond) = server.next_request().await.expect("a request");
    let uri = request.uri().to_string();
    assert_eq!(
        (request.method(), uri.as_str()),
        (&method, path),
        "unexpected request"
    );
    let bytes = request
        .into_body()
        .collect_bytes()
        .await
        .expect("request body");
    let sent = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let response = Response::builder()
        .status(StatusCode::from_u16(status).expect("status"))
        .body(Body::from(serde_json::to_vec(&body).expect("json")))
        .expect("response");
    respond.send_response(response);
    sent
}

/// Runs `reconcile` while `script` answers its requests; fails if the reconcile makes a request
/// after the script is done.
async fn verify<R, S>(
    server: ApiServer,
    reconcile: R,
    script: impl FnOnce(ApiServer) -> S,
) -> Action
where
    R: Future<Output = crate::Result<Action>>,
    S: Future<Output = ApiServer> + Send + 'static,
{
    let scripted = tokio::spawn(script(server));
    let action = tokio::time::timeout(std::time::Duration::from_secs(10), reconcile)
        .await
        .expect("the reconcile finishes")
        .expect("the reconcile succeeds");
    let mut server = scripted.await.expect("the script ran");
    let extra =
        tokio::time::timeout(std::time::Duration::from_millis(50), server.next_request()).await;
    if let Ok(Some((request, _))) = extra {
        panic!(
            "unexpected extra request {} {}",
            request.method(),
            request.uri()
        );
    }
    action
}

fn not_found() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404})
}

fn statestore() -> Component {
    let mut component =
        Component::test("statestore", "state.redis").with_metadata("redisHost", "localhost:6379");
    component.spec.metadata.push(tandem_crds::MetadataItem {
        name: "redisPassword".into(),
        secret_key_ref: Some(tandem_crds::SecretKeyRef {
            name: "redis".into(),
            key: "password".into(),
        }),
        ..Default::default()
    });
    component.metadata.namespace = Some("shop".into());
    component.metadata.uid = Some("c-1".into());
    component.metadata.generation = Some(3);
    component
}

#[tokio::test]
async fn a_component_with_a_missing_secret_gets_ready_false_and_one_event() {
    let (ctx, server) = context();
    let component = Arc::new(statestore());
    let reconcile = validated::reconcile(Arc::clone(&component), Arc::clone(&ctx));
    let action = verify(server, reconcile, |mut server| async move {
        expect(&mut server, Method::GET, "/api/v1/namespaces/shop/secrets/redis", 404, not_found()).await;
        let status_path = "/apis/dapr.io/v1alpha1/namespaces/shop/components/statestore/status?&force=true&fieldManager=tandem-operator";
        let applied = expect(&mut server, Method::PATCH, status_path, 200, serde_json::to_value(statestore()).expect("json")).await;
        let condition = &applied["status"]["conditions"][0];
        assert_eq!(condition["type"], "Ready");
        assert_eq!(condition["status"], "False");
        assert_eq!(condition["reason"], "SecretNotFound");
        assert_eq!(applied["status"]["observedGeneration"], 3);
        let event = expect(&mut server, Method::POST, "/apis/events.k8s.io/v1/namespaces/shop/events?", 201, json!({})).await;
        assert_eq!(event["type"], "Warning");
        assert_eq!(event["reason"], "SecretNotFound");
        server
    })
    .await;
    assert_eq!(action, kube::runtime::controller::Action::requeue(RESYNC));
    assert_eq!(ctx.metrics.reconciles("component"), 1);
}

#[tokio::test]
async fn a_component_whose_status_is_current_costs_reads_only() {
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "redis", "namespace": "shop"}, "data": {"password": "czNjcmV0"}});
    let status_path = "/apis/dapr.io/v1alpha1/namespaces/shop/components/statestore/status?&force=true&fieldManager=tandem-operator";
    // First pass: the Secret exists; capture the status the operator applies.
    let (ctx, server) = context();
    let written = Arc::new(std::sync::Mutex::new(Value::Null));
    let captured = Arc::clone(&written);
    let first_secret = secret.clone();
    let reconcile = validated::reconcile(Arc::new(statestore()), ctx);
    verify(server, reconcile, move |mut server| async move {
        expect(
            &mut server,
            Method::GET,
            "/api/v1/namespaces/shop/secrets/redis",
            200,
            first_secret,
        )
        .await;
        let answer = serde_json::to_value(statestore()).expect("json");
        let applied = expect(&mut server, Method::PATCH, status_path, 200, answer).await;
        assert_eq!(applied["status"]["conditions"][0]["status"], "True");
        *captured.lock().expect("lock") = applied;
        expect(
            &mut server,
            Method::POST,
            "/apis/events.k8s.io/v1/namespaces/shop/events?",
            201,
            json!({}),
        )
        .await;
        server
    })
    .await;
    // Second pass, with that status on the object: the Secret is read, nothing is written.
    let mut current = statestore();
    let status = written.lock().expect("lock")["status"].clone();
    current.status = Some(serde_json::from_value(status).expect("a status"));
    let (ctx, server) = context();
    let reconcile = validated::reconcile(Arc::new(current), ctx);
    verify(server, reconcile, |mut server| async move {
        expect(
            &mut server,
            Method::GET,
            "/api/v1/namespaces/shop/secrets/redis",
            200,
            secret,
        )
        .await;
        server
    })
    .await;
}

/// A Deployment as the workload controller caches it (decoded from the API's JSON).
fn deployment(annotations: Value) -> TrimmedWorkload<Deployment> {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "order", "namespace": "shop", "uid": "d-1"},
        "spec": {
            "selector": {"matchLabels": {"app": "order"}},
            "template": {
                "metadata": {"labels": {"app": "order"}, "annotations": annotations},
                "spec": {"containers": [{"name": "app", "image": "order:1"}]}
            }
        }
    }))
    .expect("a deployment")
}

#[tokio::test]
async fn an_annotated_deployment_gets_its_headless_service() {
    let (ctx, server) = context();
    let order = Arc::new(deployment(
        json!({"dapr.io/enabled": "true", "dapr.io/app-id": "order"}),
    ));
    let reconcile = workload::reconcile(order, Arc::clone(&ctx));
    verify(server, reconcile, |mut server| async move {
        expect(
            &mut server,
            Method::GET,
            "/api/v1/namespaces/shop/services/order-dapr",
            404,
            not_found(),
        )
        .await;
        let path =
            "/api/v1/namespaces/shop/services/order-dapr?&force=true&fieldManager=tandem-operator";
        let service = expect(&mut server, Method::PATCH, path, 200, json!({})).await;
        assert_eq!(service["spec"]["clusterIP"], "None");
        assert_eq!(service["spec"]["selector"], json!({"app": "order"}));
        assert_eq!(service["metadata"]["ownerReferences"][0]["uid"], "d-1");
        let ports: Vec<_> = service["spec"]["ports"]
            .as_array()
            .expect("ports")
            .iter()
            .map(|p| p["name"].clone())
            .collect();
        assert_eq!(
            ports,
            ["dapr-http", "dapr-grpc", "dapr-internal", "dapr-metrics"]
        );
        // Stale Services come from the watched cache: no list.
        server
    })
    .await;
}

/// A labelled Service owned by the workload with `owner` uid.
fn owned(name: &str, uid: &str, owner: &str) -> k8s_openapi::api::core::v1::Service {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "shop", "uid": uid,
            "labels": {"dapr.io/enabled": "true"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "x", "uid": owner, "controller": true}]}
    }))
    .expect("a service")
}

#[tokio::test]
async fn a_deployment_that_drops_the_annotation_loses_its_service_and_only_its_own() {
    let (services, mut writer) = kube::runtime::reflector::store();
    for service in [
        owned("order-dapr", "s-1", "d-1"),
        owned("catalog-dapr", "s-2", "d-2"),
    ] {
        writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(service));
    }
    let (ctx, server) = context();
    let ctx = Arc::new(
        Arc::into_inner(ctx)
            .expect("one owner")
            .with_services(services),
    );
    let order = Arc::new(deployment(json!({})));
    let reconcile = workload::reconcile(order, Arc::clone(&ctx));
    verify(server, reconcile, |mut server| async move {
        let delete = expect(
            &mut server,
            Method::DELETE,
            "/api/v1/namespaces/shop/services/order-dapr?",
            200,
            json!({}),
        )
        .await;
        assert_eq!(
            delete["preconditions"]["uid"], "s-1",
            "deletes exactly the Service it saw"
        );
        server
    })
    .await;
}
