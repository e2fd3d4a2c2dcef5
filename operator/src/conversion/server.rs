//! `POST /convert`: the apiserver's `ConversionReview` in, the answer out. A body that is not a
//! `ConversionReview` gets 400 with the reason; conversion problems are answered inside the review
//! (a `Failure` result), as the apiserver expects.

use super::{PATH, convert};
use axum::Json;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use kube::core::conversion::ConversionReview;

/// A LIST read at v1alpha1 sends every object of the list in one review.
const MAX_BODY: usize = 32 << 20;

/// The webhook's router.
pub fn router() -> Router {
    // The limit first: nothing reads a body bigger than it.
    Router::new()
        .route(PATH, post(convert_review))
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

#[tracing::instrument(skip_all)]
async fn convert_review(review: Result<Json<ConversionReview>, JsonRejection>) -> Response {
    match review {
        Ok(Json(review)) => {
            let answer = convert(review);
            if let Some(failed) = answer.response.as_ref().filter(|r| r.result.is_failure()) {
                tracing::warn!(uid = %failed.uid, message = %failed.result.message, "conversion failed");
            }
            Json(answer).into_response()
        }
        Err(rejection) => {
            let message = format!("not a ConversionReview: {}", rejection.body_text());
            tracing::warn!(%message, "bad conversion request");
            (StatusCode::BAD_REQUEST, message).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use serde_json::{Value, json};
    use tower::ServiceExt;

    async fn post(body: &str, content_type: &str) -> (StatusCode, String) {
        let request = Request::post(PATH)
            .header("content-type", content_type)
            .body(Body::from(body.to_owned()))
            .expect("request");
        let response = router().oneshot(request).await.expect("response");
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), MAX_BODY)
            .await
            .expect("body");
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn converts_a_review_from_the_apiserver() {
        let review = json!({
            "kind": "ConversionReview", "apiVersion": "apiextensions.k8s.io/v1",
            "request": {"uid": "abc", "desiredAPIVersion": "dapr.io/v2alpha1", "objects": [{
                "apiVersion": "dapr.io/v1alpha1", "kind": "Subscription",
                "metadata": {"name": "s", "namespace": "n"},
                "spec": {"pubsubname": "p", "topic": "t", "route": "/r"}}]}
        });
        let (status, body) = post(&review.to_string(), "application/json").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let answer: Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(answer["response"]["uid"], "abc");
        assert_eq!(answer["response"]["result"]["status"], "Success");
        let object = &answer["response"]["convertedObjects"][0];
        assert_eq!(object["spec"]["routes"]["default"], "/r");
    }

    #[tokio::test]
    async fn malformed_bodies_get_400_with_the_reason() {
        let cases = [
            ("{", "application/json", "not a ConversionReview"),
            ("{\"kind\": 3}", "application/json", "expected a string"),
            ("{}", "text/plain", "Content-Type"),
        ];
        for (body, content_type, want) in cases {
            let (status, message) = post(body, content_type).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert!(
                message.contains(want),
                "{message:?} should contain {want:?}"
            );
        }
    }

    #[tokio::test]
    async fn only_post_on_the_path() {
        let request = Request::get(PATH).body(Body::empty()).expect("request");
        let response = router().oneshot(request).await.expect("response");
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    }
}
