//! The operator ↔ sidecar contract: how a sidecar in Kubernetes mode asks the operator for what it
//! should load, and what it gets back. The operator serves it (`tandem-operator`'s `sidecar_api`),
//! the sidecar reads it; both take the shapes from here.
//!
//! `GET {resources_path}?appId=<id>[&config=<name>][&watch=true]` with
//! `Authorization: Bearer <the pod's ServiceAccount token>` (audience
//! [`crate::annotations::defaults::OPERATOR_TOKEN_AUDIENCE`]) answers one [`Resources`] as JSON, or
//! with `watch=true` a stream of them, one per line (`application/x-ndjson`).

use crate::{Component, Configuration, Subscription};
use serde::{Deserialize, Serialize};

/// The media type of a watch stream.
pub const STREAM_CONTENT_TYPE: &str = "application/x-ndjson";

/// The operator's SPIFFE ID, what its sidecar API's TLS certificate carries and what sidecars
/// given trust anchors accept: `spiffe://<trust_domain>/ns/<namespace>/tandem-operator`.
pub fn operator_spiffe_id(trust_domain: &str, namespace: &str) -> String {
    format!(
        "spiffe://{trust_domain}/ns/{namespace}/{}",
        crate::annotations::defaults::CONTROL_PLANE_APP_ID
    )
}

/// The path of one pod's resources.
pub fn resources_path(namespace: &str, pod: &str) -> String {
    format!("/v1/namespaces/{namespace}/pods/{pod}/resources")
}

/// The path of the Kubernetes Secrets a pod's sidecar may read (its own namespace's):
/// `GET {secrets_path}/{name}?appId=<id>` answers one Secret as `{"<key>": "<value>"}`,
/// `GET {secrets_path}?appId=<id>` all of them as `{"<secret>": {"<key>": "<value>"}}`. This is the
/// built-in `kubernetes` secret store of Kubernetes mode.
pub fn secrets_path(namespace: &str, pod: &str) -> String {
    format!("/v1/namespaces/{namespace}/pods/{pod}/secrets")
}

/// One message to a sidecar: everything it should load, complete (not a delta).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    /// In-scope Components, `secretKeyRef`s to Kubernetes Secrets already resolved.
    #[serde(default)]
    pub components: Vec<Component>,
    /// The Configuration the sidecar asked for, if it asked and it exists.
    #[serde(default)]
    pub configuration: Option<Configuration>,
    /// In-scope Subscriptions, at the storage version (v2alpha1).
    #[serde(default)]
    pub subscriptions: Vec<Subscription>,
}

/// The path where a pod's sidecar gets its workload certificate (mTLS in Kubernetes mode):
/// `POST {certificate_path}` with the token (as above) and a [`CertificateRequest`] answers a
/// [`CertificateResponse`]. The identity in the certificate is the pod's own
/// (`spiffe://<trust domain>/ns/<the token's namespace>/<the pod's dapr.io/app-id>`), whatever the
/// CSR asks for.
pub fn certificate_path(namespace: &str, pod: &str) -> String {
    format!("/v1/namespaces/{namespace}/pods/{pod}/certificate")
}

/// A sidecar's request for a workload certificate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateRequest {
    /// A PEM certificate signing request over the sidecar's public key (its key never leaves it).
    pub certificate_signing_request: String,
}

/// The control-plane CA's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateResponse {
    /// The workload certificate (PEM), then any intermediates.
    pub workload_certificate: String,
    /// The roots peers are checked against (PEM; several while the CA is rotated).
    pub trust_anchors: String,
    /// The SPIFFE ID the certificate carries.
    pub spiffe_id: String,
}
