//! `/mutate` through the real Router (`oneshot`), with AdmissionReviews shaped like
//! kube-apiserver's; and T14: 10 000 generated reviews, no panic, uid always echoed, never
//! injected twice, malformed input 400/415 and never 500.

#![allow(clippy::unwrap_used, reason = "tests may unwrap")]

mod common;

use axum::body::Body;
use common::{PodBuilder, apply_response, config, controller, review, user};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::sync::Arc;
use tandem_injector::admission::{AdmissionResult, InjectionFailure};
use tandem_injector::metrics::Metrics;
use tandem_injector::server::{WebhookState, router};
use tower::ServiceExt;

fn state() -> WebhookState {
    WebhookState {
        config: Arc::new(config()),
        metrics: Arc::new(Metrics::new().unwrap()),
    }
}

async fn send(
    state: &WebhookState,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut request = Request::post("/mutate");
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let response = router(state.clone())
        .oneshot(request.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, body)
}

async fn post_review(state: &WebhookState, review: &Value) -> (StatusCode, Value) {
    send(
        state,
        Some("application/json"),
        serde_json::to_vec(review).unwrap(),
    )
    .await
}

#[tokio::test]
async fn injects_a_dapr_pod_created_by_a_controller() {
    let state = state();
    let pod = PodBuilder::dapr("shop-1", "shop").json();
    let (status, body) = post_review(
        &state,
        &review("admission.k8s.io/v1", "u-1", pod.clone(), controller()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(body["kind"], "AdmissionReview");
    assert_eq!(body["response"]["uid"], "u-1");
    assert_eq!(body["response"]["allowed"], true);
    assert_eq!(body["response"]["patchType"], "JSONPatch");
    let patched = apply_response(&pod, &body);
    assert_eq!(patched["spec"]["containers"][1]["name"], "daprd");
    assert_eq!(state.metrics.admissions(AdmissionResult::Injected), 1);
    assert_eq!(state.metrics.injection_requests(), 1);
    assert_eq!(state.metrics.injections_succeeded("shop"), 1);
}

#[tokio::test]
async fn system_masters_may_create_dapr_pods() {
    let (_, body) = post_review(
        &state(),
        &review(
            "admission.k8s.io/v1",
            "u-2",
            PodBuilder::dapr("p", "shop").json(),
            user("admin", &["system:masters", "system:authenticated"]),
        ),
    )
    .await;
    assert_eq!(body["response"]["patchType"], "JSONPatch");
}

#[tokio::test]
async fn a_non_dapr_pod_is_allowed_untouched() {
    let state = state();
    for pod in [
        PodBuilder::new("plain").json(),
        PodBuilder::new("off")
            .annotation("dapr.io/enabled", "false")
            .json(),
        PodBuilder::new("typo")
            .annotation("dapr.io/enabled", "ture")
            .json(),
    ] {
        let (status, body) = post_review(
            &state,
            &review("admission.k8s.io/v1", "u-3", pod, user("someone", &[])),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["response"], json!({"uid": "u-3", "allowed": true}));
    }
    assert_eq!(state.metrics.admissions(AdmissionResult::NotDapr), 3);
    assert_eq!(state.metrics.injection_requests(), 3);
    let text = state.metrics.render().unwrap();
    assert!(
        !text.contains("dapr_injector_sidecar_injection_succeeded_total")
            && !text.contains("dapr_injector_sidecar_injection_failed_total"),
        "no injection attempted for a pod that is not Dapr's:\n{text}"
    );
}

#[tokio::test]
async fn an_unauthorised_requester_gets_no_sidecar_and_a_warning() {
    let state = state();
    for who in [
        "system:serviceaccount:shop:default",
        "jane",
        "system:serviceaccount:kube-system:evil",
    ] {
        let (status, body) = post_review(
            &state,
            &review(
                "admission.k8s.io/v1",
                "u-4",
                PodBuilder::dapr("p", "shop").json(),
                user(who, &["system:authenticated"]),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["response"]["allowed"], true);
        assert!(body["response"].get("patch").is_none(), "{who}");
        assert!(
            body["response"]["warnings"][0]
                .as_str()
                .unwrap()
                .contains("no Dapr sidecar injected")
        );
    }
    assert_eq!(state.metrics.admissions(AdmissionResult::Unauthorized), 3);
    assert_eq!(
        state
            .metrics
            .injections_failed("shop", InjectionFailure::UnauthorizedRequester),
        3
    );
    assert_eq!(state.metrics.injections_succeeded("shop"), 0);
}

#[tokio::test]
async fn allowed_service_accounts_glob() {
    let state = WebhookState {
        config: Arc::new(common::config_with(&[
            "--allowed-service-accounts",
            "ci-*:deployer",
        ])),
        metrics: Arc::new(Metrics::new().unwrap()),
    };
    let pod = PodBuilder::dapr("p", "shop").json();
    let (_, ok) = post_review(
        &state,
        &review(
            "admission.k8s.io/v1",
            "a",
            pod.clone(),
            user("system:serviceaccount:ci-7:deployer", &[]),
        ),
    )
    .await;
    assert_eq!(ok["response"]["patchType"], "JSONPatch");
    let (_, no) = post_review(
        &state,
        &review(
            "admission.k8s.io/v1",
            "b",
            pod,
            user("system:serviceaccount:ci-7:other", &[]),
        ),
    )
    .await;
    assert!(no["response"].get("patch").is_none());
}

#[tokio::test]
async fn an_invalid_app_id_is_refused_with_a_message() {
    let state = state();
    let pod = PodBuilder::dapr("p", "Shop_Cart").json();
    let (status, body) = post_review(
        &state,
        &review("admission.k8s.io/v1", "u-5", pod, controller()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["response"]["uid"], "u-5");
    assert_eq!(body["response"]["allowed"], false);
    let message = body["response"]["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("dapr.io/app-id") && message.contains("Shop_Cart"),
        "{message}"
    );
    assert_eq!(
        state
            .metrics
            .injections_failed("Shop_Cart", InjectionFailure::InvalidAnnotation),
        1
    );
}

#[tokio::test]
async fn malformed_requests() {
    let state = state();
    let cases: [(Option<&str>, &[u8], StatusCode); 7] = [
        (Some("application/json"), b"", StatusCode::BAD_REQUEST),
        (None, b"", StatusCode::BAD_REQUEST),
        (
            Some("text/plain"),
            b"{}",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (None, b"{}", StatusCode::UNSUPPORTED_MEDIA_TYPE),
        (
            Some("application/json"),
            b"{\"request\": ",
            StatusCode::BAD_REQUEST,
        ),
        (
            Some("application/json; charset=utf-8"),
            b"{\"kind\":\"AdmissionReview\"}",
            StatusCode::BAD_REQUEST,
        ),
        (
            Some("application/json"),
            b"[1,2,3]",
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (content_type, body, expected) in cases {
        let (status, _) = send(&state, content_type, body.to_vec()).await;
        assert_eq!(
            status,
            expected,
            "{content_type:?} {:?}",
            String::from_utf8_lossy(body)
        );
    }
    let (status, _) = send(&state, Some("application/json"), vec![b' '; 5 << 20]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let failed = |reason| state.metrics.injections_failed("", reason);
    assert_eq!(state.metrics.injection_requests(), 8);
    assert_eq!(
        failed(InjectionFailure::BadRequest),
        6,
        "5 malformed + 1 too large"
    );
    assert_eq!(failed(InjectionFailure::UnsupportedMediaType), 2);
}

#[tokio::test]
async fn v1beta1_is_echoed_and_other_kinds_are_allowed() {
    let state = state();
    let (_, body) = post_review(
        &state,
        &review(
            "admission.k8s.io/v1beta1",
            "u-6",
            PodBuilder::dapr("p", "shop").json(),
            controller(),
        ),
    )
    .await;
    assert_eq!(body["apiVersion"], "admission.k8s.io/v1beta1");
    assert_eq!(body["response"]["uid"], "u-6");
    assert_eq!(body["response"]["patchType"], "JSONPatch");
    let mut not_pod = review(
        "admission.k8s.io/v1",
        "u-7",
        json!({"kind": "Service"}),
        controller(),
    );
    not_pod["request"]["kind"] = json!({"group": "", "version": "v1", "kind": "Service"});
    let (_, body) = post_review(&state, &not_pod).await;
    assert_eq!(body["response"], json!({"uid": "u-7", "allowed": true}));
}

/// The kinds of review T14 mixes.
#[derive(Clone, Copy, Debug)]
enum Case {
    Valid,
    NonDapr,
    AlreadyInjected,
    Reinvoked,
    MalformedJson,
    MissingRequest,
    NotPod,
    HugeAnnotations,
    InvalidAppId,
    Unauthorised,
    WrongContentType,
    V1beta1,
}

const CASES: [Case; 12] = [
    Case::Valid,
    Case::NonDapr,
    Case::AlreadyInjected,
    Case::Reinvoked,
    Case::MalformedJson,
    Case::MissingRequest,
    Case::NotPod,
    Case::HugeAnnotations,
    Case::InvalidAppId,
    Case::Unauthorised,
    Case::WrongContentType,
    Case::V1beta1,
];

fn random_pod(rng: &mut StdRng) -> PodBuilder {
    let id = format!("app-{}", rng.random_range(0..1000));
    let mut pod = PodBuilder::dapr(&format!("{id}-{}", rng.random_range(0..99999)), &id);
    for _ in 0..rng.random_range(0..3) {
        pod = pod.container(&format!("c{}", rng.random_range(0..1_000_000)));
    }
    let optional = [
        ("dapr.io/app-port", "8080"),
        ("dapr.io/app-protocol", "grpc"),
        ("dapr.io/log-level", "debug"),
        ("dapr.io/env", "A=1,B=2"),
        ("dapr.io/sidecar-cpu-limit", "500m"),
        ("dapr.io/enable-api-logging", "true"),
        ("dapr.io/app-port", "notaport"),
        ("dapr.io/unknown", "x"),
    ];
    for (key, value) in optional {
        if rng.random_bool(0.2) {
            pod = pod.annotation(key, value);
        }
    }
    if rng.random_bool(0.3) {
        pod = pod.label("app", "x");
    }
    pod
}

#[tokio::test]
async fn t14_ten_thousand_generated_reviews() {
    let state = state();
    let mut rng = StdRng::seed_from_u64(0x7a4d);
    let huge = "x".repeat(1 << 20);
    let (mut injected, mut echoed) = (0, 0);
    for n in 0..10_000 {
        let case = CASES[rng.random_range(0..CASES.len())];
        let uid = format!("uid-{n}");
        let pod = random_pod(&mut rng);
        let (content_type, body, parsable) = match case {
            Case::Valid | Case::Reinvoked | Case::AlreadyInjected => (
                "application/json",
                review("admission.k8s.io/v1", &uid, pod.json(), controller()),
                true,
            ),
            Case::NonDapr => (
                "application/json",
                review(
                    "admission.k8s.io/v1",
                    &uid,
                    PodBuilder::new("plain").json(),
                    user("bob", &[]),
                ),
                true,
            ),
            Case::NotPod => {
                let mut r = review(
                    "admission.k8s.io/v1",
                    &uid,
                    json!({"kind": "ConfigMap"}),
                    controller(),
                );
                r["request"]["kind"]["kind"] = json!("ConfigMap");
                ("application/json", r, true)
            }
            Case::HugeAnnotations => (
                "application/json",
                review(
                    "admission.k8s.io/v1",
                    &uid,
                    pod.clone().annotation("big", &huge).json(),
                    controller(),
                ),
                true,
            ),
            Case::InvalidAppId => (
                "application/json",
                review(
                    "admission.k8s.io/v1",
                    &uid,
                    pod.clone()
                        .annotation("dapr.io/app-id", "Not_Valid!")
                        .json(),
                    controller(),
                ),
                true,
            ),
            Case::Unauthorised => (
                "application/json",
                review(
                    "admission.k8s.io/v1",
                    &uid,
                    pod.json(),
                    user("system:serviceaccount:x:y", &[]),
                ),
                true,
            ),
            Case::V1beta1 => (
                "application/json",
                review("admission.k8s.io/v1beta1", &uid, pod.json(), controller()),
                true,
            ),
            Case::MissingRequest => (
                "application/json",
                json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}),
                false,
            ),
            Case::MalformedJson | Case::WrongContentType => ("", Value::Null, false),
        };
        let (status, response) = match case {
            Case::MalformedJson => {
                let text = serde_json::to_string(&review(
                    "admission.k8s.io/v1",
                    &uid,
                    pod.json(),
                    controller(),
                ))
                .unwrap();
                let cut = rng.random_range(0..text.len());
                send(
                    &state,
                    Some("application/json"),
                    text.as_bytes()[..cut].to_vec(),
                )
                .await
            }
            Case::WrongContentType => {
                send(
                    &state,
                    Some("application/x-yaml"),
                    b"kind: AdmissionReview".to_vec(),
                )
                .await
            }
            Case::Reinvoked => {
                // The API server sends the already-patched pod again.
                let (_, first) = post_review(&state, &body).await;
                let patched = apply_response(&body["request"]["object"], &first);
                let mut again = body.clone();
                again["request"]["object"] = patched;
                post_review(&state, &again).await
            }
            Case::AlreadyInjected => {
                let mut r = body.clone();
                r["request"]["object"] = pod.clone().container("daprd").json();
                post_review(&state, &r).await
            }
            _ => {
                send(
                    &state,
                    Some(content_type),
                    serde_json::to_vec(&body).unwrap(),
                )
                .await
            }
        };
        assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "{case:?}");
        if !parsable {
            assert!(
                matches!(
                    status,
                    StatusCode::BAD_REQUEST | StatusCode::UNSUPPORTED_MEDIA_TYPE
                ),
                "{case:?}: {status}"
            );
            continue;
        }
        assert_eq!(status, StatusCode::OK, "{case:?}: {response}");
        assert_eq!(response["response"]["uid"], uid, "{case:?}");
        echoed += 1;
        let patched = apply_response(&body["request"]["object"], &response);
        let sidecars = patched["spec"]["containers"]
            .as_array()
            .map_or(0, |c| c.iter().filter(|c| c["name"] == "daprd").count());
        assert!(sidecars <= 1, "{case:?}: injected twice");
        match case {
            // A reinvoked pod whose first review was refused (bad port) is refused again.
            Case::Reinvoked => assert!(
                response["response"].get("patch").is_none(),
                "{case:?}: {response}"
            ),
            Case::AlreadyInjected | Case::NonDapr | Case::NotPod | Case::Unauthorised => {
                assert!(
                    response["response"].get("patch").is_none(),
                    "{case:?}: {response}"
                );
                assert_eq!(response["response"]["allowed"], true);
            }
            Case::InvalidAppId => assert_eq!(response["response"]["allowed"], false),
            _ => {
                if response["response"]["patch"].is_string() {
                    injected += 1;
                } else {
                    // Only the notaport annotation makes a valid-looking pod fail.
                    assert_eq!(
                        response["response"]["allowed"], false,
                        "{case:?}: {response}"
                    );
                }
            }
        }
    }
    assert!(injected > 1500, "{injected}");
    assert!(echoed > 7000, "{echoed}");
}
