//! The HTTP front end in process: a [`Sidecar`] built without ports over real in-memory and file
//! components, every request through the real router (`oneshot`), answers checked against
//! Dapr's statuses and error codes. Lifecycle, h2c, signals and the token gate over sockets stay
//! in `sidecar/tests/`.

use super::{Shared, api_router, public_router};
use crate::blocks::Sidecar;
use crate::components::Registry;
use crate::components::manifest::{Manifest, Resources};
use crate::components::plan::{PlanContext, plan_resources};
use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::sync::Arc;
use tandem_crds::Component;
use tower::ServiceExt;

struct Fixture {
    sidecar: Shared,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let secrets_file = dir.path().join("secrets.json");
    std::fs::write(&secrets_file, r#"{"db":"s3cret","api":"k"}"#).expect("secrets file");
    let components = vec![
        Component::test("statestore", "state.in-memory"),
        Component::test("pubsub", "pubsub.in-memory"),
        Component::test("vault", "secretstores.local.file")
            .with_metadata("secretsFile", &secrets_file.to_string_lossy()),
    ];
    let manifests = Resources {
        components: components
            .into_iter()
            .map(|component| Manifest {
                file: dir.path().join("inline.yaml"),
                component,
            })
            .collect(),
        subscriptions: Vec::new(),
    };
    let ctx = PlanContext {
        app_id: "order".into(),
        namespace: None,
        pod_name: None,
        resources_paths: Vec::new(),
        data_dir: dir.path().join("data"),
        secrets_from_operator: false,
    };
    let (plan, prebuilt) = plan_resources(&ctx, manifests).expect("plan");
    let registry = Registry::new(plan, prebuilt);
    registry.init_all().await.expect("components start");
    let sidecar = Arc::new(Sidecar::for_tests("order", registry).expect("sidecar"));
    Fixture { sidecar, _dir: dir }
}

async fn call(sc: &Shared, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let request = Request::builder().method(method).uri(path);
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    let response = api_router(sc.clone())
        .oneshot(request.body(body).expect("request"))
        .await
        .expect("infallible router");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, value)
}

fn code(body: &Value) -> &str {
    body["errorCode"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn state_round_trip_with_etags_and_transactions() {
    let f = fixture().await;
    let sc = &f.sidecar;
    let (s, _) = call(
        sc,
        "POST",
        "/v1.0/state/statestore",
        Some(json!([{"key": "a", "value": {"n": 1}}])),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = call(sc, "GET", "/v1.0/state/statestore/a", None).await;
    assert_eq!((s, v), (StatusCode::OK, json!({"n": 1})));
    let (s, v) = call(
        sc,
        "POST",
        "/v1.0/state/statestore",
        Some(json!([{"key": "a", "value": 2, "etag": "999"}])),
    )
    .await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "ERR_STATE_SAVE"));
    let (s, v) = call(
        sc,
        "POST",
        "/v1.0/state/statestore",
        Some(json!([{"key": "a", "value": 2, "etag": "x"}])),
    )
    .await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "ERR_STATE_SAVE"));
    let tx = json!({"operations": [
        {"operation": "upsert", "request": {"key": "b", "value": "x"}},
        {"operation": "delete", "request": {"key": "a"}},
    ]});
    let (s, _) = call(sc, "POST", "/v1.0/state/statestore/transaction", Some(tx)).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = call(
        sc,
        "POST",
        "/v1.0/state/statestore/bulk",
        Some(json!({"keys": ["a", "b"]})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        v,
        json!([{"key": "a"}, {"key": "b", "data": "x", "etag": v[1]["etag"]}])
    );
    let (s, _) = call(sc, "GET", "/v1.0/state/statestore/a", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn state_errors_have_daprs_codes() {
    let f = fixture().await;
    let sc = &f.sidecar;
    let cases: &[(&str, &str, Option<Value>, u16, &str)] = &[
        (
            "GET",
            "/v1.0/state/nope/a",
            None,
            400,
            "ERR_STATE_STORE_NOT_FOUND",
        ),
        (
            "POST",
            "/v1.0/state/statestore",
            Some(json!([{"value": 1}])),
            400,
            "ERR_MALFORMED_REQUEST",
        ),
        (
            "POST",
            "/v1.0/state/statestore",
            Some(json!([["k", 1]])),
            400,
            "ERR_MALFORMED_REQUEST",
        ),
        (
            "POST",
            "/v1.0/state/statestore",
            Some(json!([{"key": "a||b", "value": 1}])),
            400,
            "ERR_MALFORMED_REQUEST",
        ),
        (
            "GET",
            "/v1.0/state/statestore/a?consistency=maybe",
            None,
            400,
            "ERR_MALFORMED_REQUEST",
        ),
        (
            "POST",
            "/v1.0/state/statestore/transaction",
            Some(json!({"operations": [{"operation": "merge", "request": {"key": "a"}}]})),
            400,
            "ERR_NOT_SUPPORTED_STATE_OPERATION",
        ),
    ];
    for (method, path, body, status, error_code) in cases {
        let (s, v) = call(sc, method, path, body.clone()).await;
        assert_eq!(
            (s.as_u16(), code(&v)),
            (*status, *error_code),
            "{method} {path}"
        );
    }
    let (_, v) = call(sc, "GET", "/v1.0/state/nope/a", None).await;
    assert_eq!(v["details"][0]["reason"], "DAPR_STATE_NOT_FOUND");
}

#[tokio::test]
async fn publish_secrets_bindings_and_metadata() {
    let f = fixture().await;
    let sc = &f.sidecar;
    let (s, _) = call(
        sc,
        "POST",
        "/v1.0/publish/pubsub/orders",
        Some(json!({"id": 1})),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = call(sc, "POST", "/v1.0/publish/nope/orders", Some(json!({}))).await;
    assert_eq!((s.as_u16(), code(&v)), (404, "ERR_PUBSUB_NOT_FOUND"));
    let (s, v) = call(sc, "POST", "/v1.0/publish/pubsub", Some(json!({}))).await;
    assert_eq!((s.as_u16(), code(&v)), (404, "ERR_TOPIC_NAME_EMPTY"));
    let entries = json!([{"entryId": "1", "event": "a"}, {"entryId": "1", "event": "b"}]);
    let (s, v) = call(
        sc,
        "POST",
        "/v1.0-alpha1/publish/bulk/pubsub/orders",
        Some(entries),
    )
    .await;
    assert_eq!((s.as_u16(), code(&v)), (400, "ERR_PUBSUB_EVENTS_SER"));

    let (s, v) = call(sc, "GET", "/v1.0/secrets/vault/db", None).await;
    assert_eq!((s, v), (StatusCode::OK, json!({"db": "s3cret"})));
    let (s, v) = call(sc, "GET", "/v1.0/secrets/vault/bulk", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["api"], json!({"api": "k"}));
    let (s, v) = call(sc, "GET", "/v1.0/secrets/nope/db", None).await;
    assert_eq!((s.as_u16(), code(&v)), (401, "ERR_SECRET_STORE_NOT_FOUND"));

    let (s, v) = call(
        sc,
        "POST",
        "/v1.0/bindings/nope",
        Some(json!({"operation": "create"})),
    )
    .await;
    assert_eq!((s.as_u16(), code(&v)), (500, "ERR_INVOKE_OUTPUT_BINDING"));

    let request = Request::put("/v1.0/metadata/color")
        .body(Body::from("blue"))
        .expect("request");
    let response = api_router(sc.clone())
        .oneshot(request)
        .await
        .expect("router");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let (s, v) = call(sc, "GET", "/v1.0/metadata", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["id"], "order");
    assert_eq!(v["extended"]["color"], "blue");
    let mut names: Vec<&str> = v["components"]
        .as_array()
        .map(|c| c.iter().filter_map(|c| c["name"].as_str()).collect())
        .unwrap_or_default();
    names.sort_unstable();
    assert_eq!(names, ["pubsub", "statestore", "vault"]);
}

#[tokio::test]
async fn invocation_without_a_target_and_the_public_port() {
    let f = fixture().await;
    let sc = &f.sidecar;
    let (s, v) = call(sc, "GET", "/no/such/route", None).await;
    assert_eq!((s.as_u16(), code(&v)), (404, "ERR_DIRECT_INVOKE"));
    // No actor state store in this fixture: Dapr's error for a missing actor runtime.
    let (s, v) = call(sc, "PUT", "/v1.0/actors/Cart/1/method/add", Some(json!({}))).await;
    assert_eq!((s.as_u16(), code(&v)), (500, "ERR_ACTOR_RUNTIME_NOT_FOUND"));
    let (s, v) = call(sc, "GET", "/v1.0/configuration/store?key=a", None).await;
    assert_eq!((s.as_u16(), code(&v)), (501, "ERR_API_UNIMPLEMENTED"));
    let (s, v) = call(sc, "POST", "/v1.0/invoke/order/method/x", Some(json!({}))).await;
    assert_eq!((s.as_u16(), code(&v)), (500, "ERR_DIRECT_INVOKE"));
    let (s, _) = call(sc, "GET", "/v1.0/healthz", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = call(sc, "GET", "/v1.0/healthz?appid=other", None).await;
    assert_eq!((s.as_u16(), code(&v)), (500, "ERR_HEALTH_APPID_NOT_MATCH"));
    let request = Request::get("/v1.0/state/statestore/a")
        .body(Body::empty())
        .expect("request");
    let response = public_router(sc.clone())
        .oneshot(request)
        .await
        .expect("router");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn url_metadata_overrides_item_metadata_on_save() {
    let f = fixture().await;
    let sc = &f.sidecar;
    let items = json!([{"key": "t", "value": 1, "metadata": {"ttlInSeconds": "1"}}]);
    let (s, _) = call(
        sc,
        "POST",
        "/v1.0/state/statestore?metadata.ttlInSeconds=100",
        Some(items),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let request = Request::get("/v1.0/state/statestore/t")
        .body(Body::empty())
        .expect("request");
    let response = api_router(sc.clone())
        .oneshot(request)
        .await
        .expect("router");
    assert_eq!(response.status(), StatusCode::OK);
    let expires = response.headers()["metadata.ttlexpiretime"]
        .to_str()
        .expect("text")
        .to_owned();
    let at = chrono::DateTime::parse_from_rfc3339(&expires).expect("RFC 3339");
    let left = at.signed_duration_since(chrono::Utc::now());
    assert!(
        left > chrono::TimeDelta::seconds(50),
        "the URL's 100 s won, not the item's 1 s: {left}"
    );
}
