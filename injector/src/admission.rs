//! Pure: an HTTP request body → the AdmissionReview answer, in Dapr's order
//! (reliability.md 1.6): empty body 400 → non-JSON Content-Type 415 → malformed JSON 400 →
//! no `request` 400 → kind ≠ Pod allowed → not `dapr.io/enabled` allowed → requester not
//! allowed: allowed without a patch (warning) → the patch; a pod the patch cannot serve is
//! refused (`allowed: false`) with a message a person can act on. The response always echoes
//! the request's `uid` and `apiVersion` (v1 or v1beta1). Each answer says, for Dapr's
//! `dapr_injector_sidecar_injection_*` metrics, whether a sidecar was injected ([`Injection`]).

use crate::config::InjectorConfig;
use crate::patch::{self, PatchError};
use base64::Engine;
use http::StatusCode;
use k8s_openapi::api::core::v1::Pod;
use serde::Deserialize;
use serde_json::{Value, json};
use tandem_crds::annotations::{is_truthy, keys};

/// Why a review ended the way it did; the `result` label of `tandem_injector_admission_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdmissionResult {
    Injected,
    AlreadyInjected,
    NotPod,
    NotDapr,
    Unauthorized,
    Denied,
    BadRequest,
    UnsupportedMediaType,
}

impl AdmissionResult {
    pub const ALL: [AdmissionResult; 8] = [
        AdmissionResult::Injected,
        AdmissionResult::AlreadyInjected,
        AdmissionResult::NotPod,
        AdmissionResult::NotDapr,
        AdmissionResult::Unauthorized,
        AdmissionResult::Denied,
        AdmissionResult::BadRequest,
        AdmissionResult::UnsupportedMediaType,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AdmissionResult::Injected => "injected",
            AdmissionResult::AlreadyInjected => "already_injected",
            AdmissionResult::NotPod => "not_pod",
            AdmissionResult::NotDapr => "not_dapr",
            AdmissionResult::Unauthorized => "unauthorized_requester",
            AdmissionResult::Denied => "denied",
            AdmissionResult::BadRequest => "bad_request",
            AdmissionResult::UnsupportedMediaType => "unsupported_media_type",
        }
    }
}

/// Why no sidecar could be injected into a pod that asked for one (or into what may have been
/// one): the `reason` of `dapr_injector_sidecar_injection_failed_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InjectionFailure {
    /// The request is not an AdmissionReview with a request (empty, malformed, too large).
    BadRequest,
    /// The request is not `application/json`.
    UnsupportedMediaType,
    /// The pod's creator may not create Dapr pods: admitted without a sidecar.
    UnauthorizedRequester,
    /// The pod's JSON cannot be read as a Pod.
    InvalidPod,
    /// A `dapr.io/*` annotation has a value the injector refuses.
    InvalidAnnotation,
    /// The pod spec cannot take the sidecar (no containers, missing or clashing volumes).
    InvalidPodSpec,
    /// The control plane's trust anchors are not known yet: no unverified sidecar is injected.
    NoTrustAnchors,
}

impl InjectionFailure {
    pub const ALL: [InjectionFailure; 7] = [
        InjectionFailure::BadRequest,
        InjectionFailure::UnsupportedMediaType,
        InjectionFailure::UnauthorizedRequester,
        InjectionFailure::InvalidPod,
        InjectionFailure::InvalidAnnotation,
        InjectionFailure::InvalidPodSpec,
        InjectionFailure::NoTrustAnchors,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            InjectionFailure::BadRequest => "bad_request",
            InjectionFailure::UnsupportedMediaType => "unsupported_media_type",
            InjectionFailure::UnauthorizedRequester => "unauthorized_requester",
            InjectionFailure::InvalidPod => "invalid_pod",
            InjectionFailure::InvalidAnnotation => "invalid_annotation",
            InjectionFailure::InvalidPodSpec => "invalid_pod_spec",
            InjectionFailure::NoTrustAnchors => "no_trust_anchors",
        }
    }

    /// The reason a patch could not be made.
    pub fn of_patch_error(error: &PatchError) -> InjectionFailure {
        match error {
            PatchError::Settings(_) => InjectionFailure::InvalidAnnotation,
            PatchError::NoTrustAnchors { .. } => InjectionFailure::NoTrustAnchors,
            _ => InjectionFailure::InvalidPodSpec,
        }
    }
}

/// What a review did about a sidecar, as Dapr's injector counts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Injection {
    /// Nothing to inject: not a pod, not a Dapr pod, or one that has its sidecar already.
    NotAttempted,
    Succeeded {
        app_id: String,
    },
    /// `app_id` is the pod's `dapr.io/app-id` (else its name), empty when unknown.
    Failed {
        app_id: String,
        reason: InjectionFailure,
    },
}

/// The HTTP answer to one `/mutate` request.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    /// An AdmissionReview for 200, a plain-text reason otherwise.
    pub body: Value,
    pub result: AdmissionResult,
    pub injection: Injection,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Review {
    api_version: Option<String>,
    request: Option<Request>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Request {
    uid: String,
    #[serde(default)]
    kind: Option<GroupVersionKind>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    user_info: UserInfo,
    /// Kept raw: most pods are not Dapr's, and only their annotations need reading.
    #[serde(default)]
    object: Option<Box<serde_json::value::RawValue>>,
}

/// Just the name and annotations of an object; everything else is skipped without being built.
#[derive(Debug, Default, Deserialize)]
struct AnnotationsOnly {
    #[serde(default)]
    metadata: MetadataAnnotations,
}

#[derive(Debug, Default, Deserialize)]
struct MetadataAnnotations {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    annotations: Option<std::collections::BTreeMap<String, Value>>,
}

impl MetadataAnnotations {
    fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key)?.as_str()
    }

    /// The app id to label a failure with: `dapr.io/app-id`, else the pod's name (Dapr's
    /// default), at most a DNS label long so a hostile value cannot blow up the series.
    fn app_id_label(&self) -> String {
        let id = self
            .annotation(keys::APP_ID)
            .filter(|id| !id.is_empty())
            .or(self.name.as_deref())
            .unwrap_or_default();
        truncate(id, 63)
    }
}

#[derive(Debug, Deserialize)]
struct GroupVersionKind {
    #[serde(default)]
    group: String,
    #[serde(default)]
    kind: String,
}

#[derive(Debug, Default, Deserialize)]
struct UserInfo {
    #[serde(default)]
    username: String,
    #[serde(default)]
    groups: Vec<String>,
}

/// Answers one `/mutate` request.
pub fn review(body: &[u8], content_type: Option<&str>, cfg: &InjectorConfig) -> Answer {
    let plain = |status: StatusCode, result, reason, message: &str| Answer {
        status,
        body: Value::String(message.to_owned()),
        result,
        injection: Injection::Failed {
            app_id: String::new(),
            reason,
        },
    };
    if body.is_empty() {
        return plain(
            StatusCode::BAD_REQUEST,
            AdmissionResult::BadRequest,
            InjectionFailure::BadRequest,
            "empty body",
        );
    }
    if !content_type.is_some_and(is_json) {
        return plain(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AdmissionResult::UnsupportedMediaType,
            InjectionFailure::UnsupportedMediaType,
            "Content-Type must be application/json",
        );
    }
    let review: Review = match serde_json::from_slice(body) {
        Ok(review) => review,
        Err(error) => {
            let message = format!("the body is not an AdmissionReview: {error}");
            return plain(
                StatusCode::BAD_REQUEST,
                AdmissionResult::BadRequest,
                InjectionFailure::BadRequest,
                &message,
            );
        }
    };
    let api_version = match review.api_version.as_deref() {
        Some(v @ ("admission.k8s.io/v1" | "admission.k8s.io/v1beta1")) => v.to_owned(),
        _ => "admission.k8s.io/v1".to_owned(),
    };
    let Some(request) = review.request else {
        return plain(
            StatusCode::BAD_REQUEST,
            AdmissionResult::BadRequest,
            InjectionFailure::BadRequest,
            "the AdmissionReview has no request",
        );
    };
    let respond = |result, injection, response: Value| Answer {
        status: StatusCode::OK,
        body: json!({"apiVersion": api_version, "kind": "AdmissionReview", "response": response}),
        result,
        injection,
    };
    let uid = request.uid.clone();
    let allowed = |result| {
        respond(
            result,
            Injection::NotAttempted,
            json!({"uid": uid, "allowed": true}),
        )
    };

    let is_pod = request
        .kind
        .as_ref()
        .is_some_and(|k| k.group.is_empty() && k.kind == "Pod");
    if !is_pod {
        return allowed(AdmissionResult::NotPod);
    }
    let Some(object) = request.object else {
        return allowed(AdmissionResult::NotDapr);
    };
    // Read only the annotations first: most pods are not Dapr's and need no full decode.
    let metadata = serde_json::from_str::<AnnotationsOnly>(object.get())
        .map(|o| o.metadata)
        .unwrap_or_default();
    if !metadata.annotation(keys::ENABLED).is_some_and(is_truthy) {
        return allowed(AdmissionResult::NotDapr);
    }
    let failed = |reason| Injection::Failed {
        app_id: metadata.app_id_label(),
        reason,
    };
    if !requester_allowed(&request.user_info, cfg) {
        tracing::warn!(
            user = %request.user_info.username,
            namespace = request.namespace.as_deref().unwrap_or(""),
            "a requester that is not allowed to create Dapr pods created one; no sidecar injected"
        );
        return respond(
            AdmissionResult::Unauthorized,
            failed(InjectionFailure::UnauthorizedRequester),
            json!({
                "uid": uid,
                "allowed": true,
                "warnings": [format!(
                    "no Dapr sidecar injected: {:?} may not create Dapr pods (only workload controllers, system:masters and --allowed-service-accounts may)",
                    truncate(&request.user_info.username, 80)
                )],
            }),
        );
    }
    let deny = |reason, message: String| {
        respond(
            AdmissionResult::Denied,
            failed(reason),
            json!({"uid": uid, "allowed": false, "status": {"code": 400, "reason": "BadRequest", "message": message}}),
        )
    };
    let pod: Pod = match serde_json::from_str(object.get()) {
        Ok(pod) => pod,
        Err(error) => {
            return deny(
                InjectionFailure::InvalidPod,
                format!("the pod cannot be read: {error}"),
            );
        }
    };
    let namespace = request
        .namespace
        .as_deref()
        .or(pod.metadata.namespace.as_deref())
        .unwrap_or("default");
    match patch::plan(&pod, cfg) {
        Ok(None) => allowed(AdmissionResult::AlreadyInjected),
        Ok(Some(plan)) => {
            let patch = serde_json::to_vec(&plan.operations).unwrap_or_default();
            let mut response = json!({
                "uid": uid,
                "allowed": true,
                "patchType": "JSONPatch",
                "patch": base64::engine::general_purpose::STANDARD.encode(patch),
            });
            if !plan.warnings.is_empty() {
                response["warnings"] = json!(plan.warnings);
            }
            tracing::debug!(app_id = %plan.app_id, %namespace, "sidecar injected");
            let injection = Injection::Succeeded {
                app_id: plan.app_id,
            };
            respond(AdmissionResult::Injected, injection, response)
        }
        Err(error) => deny(
            InjectionFailure::of_patch_error(&error),
            format!("cannot add the Dapr sidecar: {error}"),
        ),
    }
}

/// Dapr's rule: a built-in or configured controller ServiceAccount, or `system:masters`.
fn requester_allowed(user: &UserInfo, cfg: &InjectorConfig) -> bool {
    if user.groups.iter().any(|g| g == "system:masters") {
        return true;
    }
    let Some(account) = user.username.strip_prefix("system:serviceaccount:") else {
        return false;
    };
    let Some((namespace, name)) = account.split_once(':') else {
        return false;
    };
    cfg.allowed_service_accounts
        .iter()
        .any(|p| p.matches(namespace, name))
}

fn is_json(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}
