//! The HTTP surface: the routes, and the one place where its errors become responses.

use super::auth::{Claim, Denied, admit, admit_claim, caller_from, review_token};
use super::feed::Feed;
use super::resources::Wanted;
use super::{CACHE_WAIT, SidecarApi};
use axum::Router;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use serde::Deserialize;
use std::sync::Arc;
use tandem_crds::control_plane::{
    STREAM_CONTENT_TYPE, certificate_path, resources_path, secrets_path,
};

/// The sidecar API's router.
pub fn router(api: Arc<SidecarApi>) -> Router {
    Router::new()
        .route(&resources_path("{namespace}", "{pod}"), get(resources))
        .route(
            &secrets_path("{namespace}", "{pod}"),
            get(super::secrets::all_secrets),
        )
        .route(
            &format!("{}/{{name}}", secrets_path("{namespace}", "{pod}")),
            get(super::secrets::one_secret),
        )
        .route(
            &certificate_path("{namespace}", "{pod}"),
            post(super::certificate::certificate),
        )
        .with_state(api)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResourcesQuery {
    app_id: String,
    #[serde(default)]
    config: Option<String>,
    #[serde(default)]
    watch: bool,
}

/// Why a request fails, and its status, `errorCode` and metric label.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    #[error(transparent)]
    Denied(#[from] Denied),
    #[error("namespace '{0}' is not watched by this operator")]
    OutOfScope(String),
    #[error("{0}")]
    Malformed(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unavailable(String),
    /// The control plane's own identity, which no workload may hold.
    #[error("{0} is the control plane's identity; no workload is signed for it")]
    Reserved(String),
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::Denied(denied) if denied.is_unauthenticated() => (
                StatusCode::UNAUTHORIZED,
                "ERR_UNAUTHENTICATED",
                "unauthenticated",
            ),
            ApiError::Denied(_) | ApiError::OutOfScope(_) | ApiError::Reserved(_) => {
                (StatusCode::FORBIDDEN, "ERR_PERMISSION_DENIED", "forbidden")
            }
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "ERR_SECRET_NOT_FOUND", "not_found"),
            ApiError::Malformed(_) => (
                StatusCode::BAD_REQUEST,
                "ERR_MALFORMED_REQUEST",
                "bad_request",
            ),
            ApiError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "ERR_UNAVAILABLE",
                "unavailable",
            ),
        }
    }

    /// The bounded metric label.
    pub(crate) fn label(&self) -> &'static str {
        self.parts().2
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, _) = self.parts();
        let body = serde_json::json!({"errorCode": code, "message": self.to_string()});
        (status, axum::Json(body)).into_response()
    }
}

#[tracing::instrument(skip_all, fields(%namespace, %pod))]
async fn resources(
    State(api): State<Arc<SidecarApi>>,
    Path((namespace, pod)): Path<(String, String)>,
    query: Result<Query<ResourcesQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let answer = answer(&api, &namespace, &pod, query, &headers).await;
    respond(&api, answer)
}

async fn answer(
    api: &Arc<SidecarApi>,
    namespace: &str,
    pod: &str,
    query: Result<Query<ResourcesQuery>, QueryRejection>,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|rejection| {
        ApiError::Malformed(format!(
            "{}; expected ?appId=<app id>[&config=<name>][&watch=true]",
            rejection.body_text()
        ))
    })?;
    if query.app_id.is_empty() {
        return Err(ApiError::Malformed("appId must not be empty".into()));
    }
    let claim = Claim {
        namespace,
        pod_name: pod,
        app_id: &query.app_id,
    };
    authenticate(api, &claim, headers).await?;
    if !api.scope.contains(namespace) {
        return Err(ApiError::OutOfScope(namespace.to_owned()));
    }
    match tokio::time::timeout(CACHE_WAIT, api.index.ready()).await {
        Ok(true) => {}
        _ => {
            return Err(ApiError::Unavailable(
                "the operator's cache is not ready yet".into(),
            ));
        }
    }
    let wanted = Wanted {
        namespace,
        app_id: &query.app_id,
        configuration: query.config.as_deref().filter(|c| !c.is_empty()),
    };
    let mut feed = Feed::new(Arc::clone(api), &wanted);
    let first = feed.next_resources().await?;
    if !query.watch {
        return Ok(axum::Json(first).into_response());
    }
    let body = Body::from_stream(feed.into_lines(first));
    Ok(([(CONTENT_TYPE, STREAM_CONTENT_TYPE)], body).into_response())
}

/// Verifies the bearer token and that its owner may ask for `claim`; returns the pod.
pub(crate) async fn authenticate(
    api: &SidecarApi,
    claim: &Claim<'_>,
    headers: &HeaderMap,
) -> Result<Pod, ApiError> {
    let token = bearer_token(headers)?;
    let reviewed = review_token(&api.client, token, &api.audiences)
        .await
        .map_err(|error| ApiError::Unavailable(format!("TokenReview failed: {error}")))?;
    let caller = caller_from(&reviewed)?;
    // Before reading the pod: a token of another namespace learns nothing about this one's pods.
    admit_claim(&caller, claim)?;
    let pod = Api::<Pod>::namespaced(api.client.clone(), claim.namespace)
        .get_opt(claim.pod_name)
        .await
        .map_err(|error| ApiError::Unavailable(format!("reading the pod: {error}")))?;
    admit(&caller, claim, pod.as_ref())?;
    pod.ok_or_else(|| ApiError::Unavailable("the pod vanished".into()))
}

/// The bearer token of a request.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Result<&str, Denied> {
    headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .ok_or(Denied::NoToken)
}

/// Counts a request by its result and turns its error into the response.
pub(crate) fn respond(api: &SidecarApi, answer: Result<Response, ApiError>) -> Response {
    let label = match &answer {
        Ok(_) => "ok",
        Err(error) => {
            tracing::info!(%error, "sidecar refused");
            error.label()
        }
    };
    api.metrics.sidecar_api_request(label);
    answer.unwrap_or_else(IntoResponse::into_response)
}
