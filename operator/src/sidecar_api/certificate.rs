//! The CA's door: a sidecar sends a CSR and its pod's projected ServiceAccount token, and gets a
//! workload certificate for its pod's identity. The token must be valid for this API's audience
//! (the TokenReview is asked for it and must say so), of the namespace in the path, bound to the
//! pod in the path when pod-bound; the pod must exist, run as the token's ServiceAccount, have
//! Dapr enabled and not be finished or deleting. The app id is the pod's `dapr.io/app-id`, the
//! namespace the token's: nothing in the request chooses them. Every request and its outcome is
//! counted under Dapr's Sentry names, a refusal by its [`SignFailure`] reason.

use super::auth::{Caller, Claim, Denied, admit, admit_claim, caller_from, review_token};
use super::routes::{ApiError, bearer_token, respond};
use super::{CACHE_WAIT, SidecarApi};
use crate::ca::{SignError, WorkloadIdentity, sign_csr, workload_ttl};
use crate::metrics::SignFailure;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Json, Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use k8s_openapi::api::authentication::v1::TokenReviewStatus;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use std::sync::Arc;
use std::time::SystemTime;
use tandem_crds::annotations::keys;
use tandem_crds::control_plane::{CertificateRequest, CertificateResponse};

#[tracing::instrument(skip_all, fields(%namespace, %pod))]
pub(crate) async fn certificate(
    State(api): State<Arc<SidecarApi>>,
    Path((namespace, pod)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Json<CertificateRequest>, JsonRejection>,
) -> Response {
    api.metrics.certificate_requested();
    let answer = issue(&api, &namespace, &pod, &headers, body)
        .await
        .map_err(|refused| {
            api.metrics.certificate_refused(refused.reason);
            refused.error
        });
    respond(&api, answer)
}

/// A CSR not signed: the answer, and the reason Dapr's Sentry metric counts it under.
#[derive(Debug)]
struct Refused {
    reason: SignFailure,
    error: ApiError,
}

impl From<Denied> for Refused {
    fn from(denied: Denied) -> Self {
        Refused {
            reason: refusal_reason(&denied),
            error: denied.into(),
        }
    }
}

impl From<ApiError> for Refused {
    fn from(error: ApiError) -> Self {
        let reason = match &error {
            ApiError::Denied(denied) => refusal_reason(denied),
            ApiError::Malformed(_) => SignFailure::MalformedRequest,
            ApiError::Reserved(_) => SignFailure::PodMismatch,
            ApiError::OutOfScope(_) | ApiError::NotFound(_) | ApiError::Unavailable(_) => {
                SignFailure::Unavailable
            }
        };
        Refused { reason, error }
    }
}

/// The metric reason of a refused caller.
pub fn refusal_reason(denied: &Denied) -> SignFailure {
    match denied {
        Denied::NoToken | Denied::InvalidToken(_) | Denied::NotServiceAccount(_) => {
            SignFailure::InvalidToken
        }
        Denied::OtherAudience(_) => SignFailure::WrongAudience,
        Denied::OtherNamespace { .. } => SignFailure::NamespaceMismatch,
        // A caller asking for what is not its own (secret scopes are never checked here).
        Denied::OtherPod { .. }
        | Denied::OtherServiceAccount { .. }
        | Denied::OtherAppId { .. }
        | Denied::SecretOutOfScope(_) => SignFailure::PodMismatch,
        Denied::NoSuchPod { .. } => SignFailure::NoSuchPod,
        Denied::NotDaprEnabled { .. } => SignFailure::NotDaprEnabled,
    }
}

/// The metric reason of a CSR the CA would not sign.
pub fn sign_error_reason(error: &SignError) -> SignFailure {
    match error {
        SignError::Csr(_) => SignFailure::MalformedCsr,
        SignError::Ttl(_) => SignFailure::InvalidTtl,
        SignError::Sign(_) => SignFailure::SignError,
    }
}

fn sign_refused(error: SignError) -> Refused {
    Refused {
        reason: sign_error_reason(&error),
        error: ApiError::Malformed(error.to_string()),
    }
}

async fn issue(
    api: &SidecarApi,
    namespace: &str,
    pod_name: &str,
    headers: &HeaderMap,
    body: Result<Json<CertificateRequest>, JsonRejection>,
) -> Result<Response, Refused> {
    let Some(ca) = api.ca.as_ref().map(|current| current.get()) else {
        return Err(ApiError::Unavailable(
            "this operator runs no CA (mTLS is off in the control plane)".to_owned(),
        )
        .into());
    };
    let token = bearer_token(headers)?;
    if api.audiences.is_empty() {
        return Err(ApiError::Unavailable(
            "the CA signs only for audience-bound tokens: set --sidecar-token-audience".to_owned(),
        )
        .into());
    }
    let reviewed = review_token(&api.client, token, &api.audiences)
        .await
        .map_err(|error| ApiError::Unavailable(format!("TokenReview failed: {error}")))?;
    let caller = audience_bound_caller(&reviewed, &api.audiences)?;
    let Json(request) = body.map_err(|rejection| {
        ApiError::Malformed(format!(
            "{}; expected {{\"certificateSigningRequest\": \"<PEM CSR>\"}}",
            rejection.body_text()
        ))
    })?;
    let unnamed = Claim {
        namespace,
        pod_name,
        app_id: "",
    };
    // Before reading the pod: a token of another namespace learns nothing about this one's pods.
    admit_claim(&caller, &unnamed)?;
    let pod = Api::<Pod>::namespaced(api.client.clone(), namespace)
        .get_opt(pod_name)
        .await
        .map_err(|error| ApiError::Unavailable(format!("reading the pod: {error}")))?;
    let app_id = pod
        .as_ref()
        .map(|p| pod_app_id(p, pod_name))
        .unwrap_or_default();
    let claim = Claim {
        app_id: &app_id,
        ..unnamed
    };
    admit(&caller, &claim, pod.as_ref())?;
    let pod = pod.ok_or_else(|| ApiError::Unavailable("the pod vanished".into()))?;
    if let Some(why) = finished(&pod) {
        return Err(Denied::NoSuchPod {
            namespace: format!("{namespace} ({why})"),
            pod: pod_name.to_owned(),
        }
        .into());
    }
    let config_name = annotation(&pod, keys::CONFIG).filter(|c| !c.is_empty());
    let config = match config_name {
        None => None,
        Some(name) => {
            if !matches!(
                tokio::time::timeout(CACHE_WAIT, api.index.ready()).await,
                Ok(true)
            ) {
                return Err(
                    ApiError::Unavailable("the operator's cache is not ready yet".into()).into(),
                );
            }
            api.index.configuration(namespace, name)
        }
    };
    let spec = config.as_ref().map(|c| &c.spec);
    let id = WorkloadIdentity::new(spec, &caller.namespace, &app_id);
    if api.reserved_id.as_deref() == Some(id.spiffe_id().as_str()) {
        return Err(ApiError::Reserved(id.spiffe_id()).into());
    }
    let ttl = workload_ttl(spec).map_err(sign_refused)?;
    let svid = sign_csr(
        &ca,
        &request.certificate_signing_request,
        &id,
        SystemTime::now(),
        ttl,
    )
    .map_err(sign_refused)?;
    tracing::info!(spiffe_id = %id.spiffe_id(), ?ttl, "signed a workload certificate");
    api.metrics.certificate_signed();
    let response = CertificateResponse {
        workload_certificate: svid.certificate_chain_pem,
        trust_anchors: ca.trust_anchors_pem().to_owned(),
        spiffe_id: id.spiffe_id(),
    };
    Ok(Json(response).into_response())
}

/// The caller, if the TokenReview vouches for the token for one of `audiences` (a token for
/// another audience, e.g. the API server's own, is not a credential for the CA).
pub fn audience_bound_caller(
    status: &TokenReviewStatus,
    audiences: &[String],
) -> Result<Caller, Denied> {
    let caller = caller_from(status)?;
    let granted = status.audiences.as_deref().unwrap_or_default();
    if !granted.iter().any(|a| audiences.contains(a)) {
        return Err(Denied::OtherAudience(audiences.to_vec()));
    }
    Ok(caller)
}

/// Why a pod may no longer hold an identity: deleting, or its containers are done.
pub fn finished(pod: &Pod) -> Option<&'static str> {
    if pod.metadata.deletion_timestamp.is_some() {
        return Some("being deleted");
    }
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    match phase {
        Some("Succeeded") | Some("Failed") => Some("finished"),
        _ => None,
    }
}

/// The pod's app id: its `dapr.io/app-id`, else (Dapr's default) its name.
fn pod_app_id(pod: &Pod, pod_name: &str) -> String {
    annotation(pod, keys::APP_ID)
        .filter(|id| !id.is_empty())
        .unwrap_or(pod_name)
        .to_owned()
}

fn annotation<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

#[cfg(test)]
mod tests;
