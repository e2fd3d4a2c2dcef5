//! Zero trust between sidecars. With `--enable-mtls`, each sidecar holds a SPIFFE identity
//! (`spiffe://<trust-domain>/ns/<namespace>/<app-id>`, [`identity`]) signed by a CA ([`issuer`]:
//! standalone, [`ca`], a local CA in the data directory; Kubernetes, the control plane's CA
//! through the operator), renewed at half-life. The internal port then
//! speaks only mTLS ([`tls`], served by `server::serve_with`): a caller must present a
//! certificate of this trust domain, and the caller's identity travels with each request as a
//! [`PeerIdentity`] that overwrites the caller headers before anything reads them. The peer
//! channel dials with the same identity and accepts only the exact app it meant to reach.
//!
//! On the callee, every invocation passes [`Security::authorize`]: the access-control policy
//! ([`acl`], a pure decision) over the caller's identity: the certificate's with mTLS, the
//! caller headers' without (as daprd, which then trusts what the caller's sidecar wrote).

pub mod acl;
pub mod api_access;
pub mod ca;
pub mod identity;
pub mod issuer;
pub mod metrics;
pub mod refusal;
pub mod spiffe;
pub mod tls;

use crate::blocks::error::{BlockError, Code};
use crate::control_plane::ControlPlane;
use acl::{Acl, AclError, Operation};
use api_access::ApiAccess;
use http::{HeaderMap, HeaderValue};
use identity::Workload;
use issuer::Issuer;
use metrics::SecurityMetrics;
use spiffe::SpiffeId;
use std::sync::{Arc, Mutex};
use tandem_crds::ConfigurationSpec;
use tandem_crds::annotations::headers as dapr_headers;

/// Dapr's namespace for a sidecar started without `NAMESPACE`.
pub const DEFAULT_NAMESPACE: &str = "default";

/// The caller of a request on the internal port, as its verified certificate names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerIdentity(pub SpiffeId);

/// The security state of one sidecar: its identity (when mTLS is on) and the access-control
/// policy compiled from the Configuration of the moment.
pub struct Security {
    workload: Option<Arc<Workload>>,
    metrics: SecurityMetrics,
    /// The last Configuration seen and its compiled policies (recompiled when it is replaced).
    acl: Compiled<Acl>,
    api: Compiled<ApiAccess>,
}

/// A policy compiled from the Configuration of the moment.
struct Compiled<T>(Mutex<Option<CompiledFrom<T>>>);

/// The Configuration a policy was compiled from, and the policy (`None`: nothing to enforce).
type CompiledFrom<T> = (Arc<ConfigurationSpec>, Option<Arc<T>>);

impl<T> Compiled<T> {
    fn new() -> Self {
        Compiled(Mutex::new(None))
    }

    fn get<E>(
        &self,
        config: &Arc<ConfigurationSpec>,
        compile: impl FnOnce(&ConfigurationSpec) -> Result<Option<T>, E>,
    ) -> Result<Option<Arc<T>>, E> {
        let mut cached = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((seen, policy)) = cached.as_ref()
            && Arc::ptr_eq(seen, config)
        {
            return Ok(policy.clone());
        }
        let policy = compile(config)?.map(Arc::new);
        *cached = Some((config.clone(), policy.clone()));
        Ok(policy)
    }
}

/// The trust domain a Configuration gives this app.
pub fn trust_domain(config: &ConfigurationSpec) -> String {
    config
        .access_control
        .as_ref()
        .and_then(|a| a.trust_domain.as_deref())
        .filter(|s| !s.is_empty())
        .unwrap_or(acl::DEFAULT_TRUST_DOMAIN)
        .to_owned()
}

/// Checks a Configuration's access-control and API specs (at start, before any port is bound).
pub fn validate(config: &ConfigurationSpec) -> Result<(), String> {
    Acl::compile(config.access_control.as_ref()).map_err(|e| e.to_string())?;
    ApiAccess::compile(config.api.as_ref())?;
    Ok(())
}

/// Overwrites the caller headers with the identity the certificate proved; a request without
/// one loses them (nothing on the internal port may vouch for itself).
pub fn stamp_caller(headers: &mut HeaderMap, peer: Option<&PeerIdentity>) {
    headers.remove(dapr_headers::CALLER_APP_ID);
    headers.remove(dapr_headers::CALLER_NAMESPACE);
    let Some(PeerIdentity(id)) = peer else { return };
    for (name, value) in [
        (dapr_headers::CALLER_APP_ID, &id.app_id),
        (dapr_headers::CALLER_NAMESPACE, &id.namespace),
    ] {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    }
}

impl Security {
    pub fn new(workload: Option<Arc<Workload>>, metrics: SecurityMetrics) -> Security {
        Security {
            workload,
            metrics,
            acl: Compiled::new(),
            api: Compiled::new(),
        }
    }

    pub fn workload(&self) -> Option<&Arc<Workload>> {
        self.workload.as_ref()
    }

    pub fn mtls(&self) -> bool {
        self.workload.is_some()
    }

    fn policy(&self, config: &Arc<ConfigurationSpec>) -> Result<Option<Arc<Acl>>, AclError> {
        self.acl
            .get(config, |c| Acl::compile(c.access_control.as_ref()))
    }

    /// `spec.api` of the Configuration of the moment, compiled (an error for a spec that does
    /// not compile: the front ends then refuse the API, the safe side).
    pub fn api_access(
        &self,
        config: &Arc<ConfigurationSpec>,
    ) -> Result<Option<Arc<ApiAccess>>, String> {
        self.api.get(config, |c| ApiAccess::compile(c.api.as_ref()))
    }

    /// Whether the caller of a request on the internal port may invoke `op`. With mTLS the
    /// caller is `peer` (and a request without one is refused); without, the caller headers.
    pub fn authorize(
        &self,
        config: &Arc<ConfigurationSpec>,
        peer: Option<&PeerIdentity>,
        headers: &HeaderMap,
        op: Operation<'_>,
    ) -> Result<(), BlockError> {
        let denied = |message: String| BlockError::new(Code::InvokePermissionDenied, message);
        if self.mtls() && peer.is_none() {
            return Err(denied(
                "the caller presented no verified identity".to_owned(),
            ));
        }
        let policy = self
            .policy(config)
            .map_err(|e| denied(format!("the access-control policy is invalid: {e}")))?;
        let Some(policy) = policy else { return Ok(()) };
        let caller = match peer {
            Some(PeerIdentity(id)) => Some(id.clone()),
            None => header(headers, dapr_headers::CALLER_APP_ID).map(|app| {
                let ns =
                    header(headers, dapr_headers::CALLER_NAMESPACE).unwrap_or(DEFAULT_NAMESPACE);
                SpiffeId::new(policy.trust_domain(), ns, app)
            }),
        };
        let (allowed, decided) = policy.decide(caller.as_ref(), op);
        let shown = caller.unwrap_or_else(|| SpiffeId::new(policy.trust_domain(), "", ""));
        self.metrics.acl(decided.as_str(), allowed, &shown);
        match allowed {
            true => Ok(()),
            false => Err(denied(format!(
                "access control policy has denied access to id: {shown} operation: {} verb: {}",
                op.path,
                op.verb.unwrap_or("NONE")
            ))),
        }
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty())
}

/// What mTLS needs to start.
pub struct MtlsStart<'a> {
    pub enabled: bool,
    /// Kubernetes mode: the operator whose CA signs (standalone: `None`, the local CA).
    pub control_plane: Option<&'a ControlPlane>,
    pub ttl: std::time::Duration,
    pub data_dir: &'a std::path::Path,
    pub app_id: &'a str,
    pub namespace: Option<&'a str>,
    pub config: &'a ConfigurationSpec,
}

/// The workload identity when mTLS is on: a first SVID for
/// `spiffe://<trust domain>/ns/<namespace>/<app id>` from the control plane's CA (Kubernetes)
/// or the local CA in `<data-dir>/mtls` (standalone).
pub async fn start_mtls(
    start: MtlsStart<'_>,
    metrics: &SecurityMetrics,
) -> Result<Option<Arc<Workload>>, String> {
    let MtlsStart {
        enabled,
        control_plane,
        ttl,
        data_dir,
        app_id,
        namespace,
        config,
    } = start;
    if !enabled {
        return Ok(None);
    }
    if app_id.is_empty() {
        return Err("--enable-mtls needs an --app-id (it is the SPIFFE identity)".to_owned());
    }
    let id = SpiffeId::new(
        &trust_domain(config),
        namespace.unwrap_or(DEFAULT_NAMESPACE),
        app_id,
    );
    let issuer = match control_plane {
        Some(plane) => Issuer::ControlPlane(plane.clone()),
        None => Issuer::Local(data_dir.join("mtls")),
    };
    let from = issuer.to_string();
    let workload = Workload::start(id, issuer, ttl, metrics.clone())
        .await
        .map_err(|e| format!("mTLS: a workload certificate from {from}: {e}"))?;
    let material = workload.material();
    let life = material
        .not_after
        .duration_since(material.issued)
        .unwrap_or_default();
    tracing::info!(id = %workload.id(), issuer = %from, ?life, "mTLS on: workload certificate issued");
    Ok(Some(workload))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_crds::access_control::AccessControlSpec;

    fn config(access: serde_json::Value) -> Arc<ConfigurationSpec> {
        let access: AccessControlSpec = serde_json::from_value(access).expect("accessControl");
        Arc::new(ConfigurationSpec {
            access_control: Some(access),
            ..ConfigurationSpec::default()
        })
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn metrics() -> SecurityMetrics {
        SecurityMetrics::new(&prometheus::Registry::new()).expect("metrics")
    }

    const OP: Operation<'static> = Operation {
        path: "orders",
        verb: Some("GET"),
    };

    #[test]
    fn the_certificate_overwrites_the_caller_headers() {
        let mut h = headers(&[
            ("dapr-caller-app-id", "trusted-admin"),
            ("dapr-caller-namespace", "kube-system"),
        ]);
        let peer = PeerIdentity(SpiffeId::new("public", "default", "c"));
        stamp_caller(&mut h, Some(&peer));
        assert_eq!(h["dapr-caller-app-id"], "c");
        assert_eq!(h["dapr-caller-namespace"], "default");
        stamp_caller(&mut h, None);
        assert!(h.get("dapr-caller-app-id").is_none() && h.get("dapr-caller-namespace").is_none());
    }

    #[test]
    fn without_mtls_the_policy_reads_the_caller_header() {
        let security = Security::new(None, metrics());
        let only_a = config(serde_json::json!({"defaultAction": "deny", "policies": [
            {"appId": "a", "defaultAction": "allow", "trustDomain": "public", "namespace": "default"}]}));
        let from = |app: &'static str| headers(&[("dapr-caller-app-id", app)]);
        assert!(security.authorize(&only_a, None, &from("a"), OP).is_ok());
        let denied = security.authorize(&only_a, None, &from("b"), OP);
        assert_eq!(
            denied.map_err(|e| e.code),
            Err(Code::InvokePermissionDenied)
        );
        let nobody = security.authorize(&only_a, None, &HeaderMap::new(), OP);
        assert!(nobody.is_err(), "no caller: the global default (deny)");
        let open = Arc::new(ConfigurationSpec::default());
        assert!(security.authorize(&open, None, &from("b"), OP).is_ok());
    }

    #[tokio::test]
    async fn with_mtls_a_request_without_a_verified_peer_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let id = SpiffeId::new("public", "default", "b");
        let workload = Workload::start(
            id,
            Issuer::Local(dir.path().to_owned()),
            std::time::Duration::from_secs(60),
            metrics(),
        )
        .await
        .expect("identity");
        let security = Security::new(Some(workload), metrics());
        let open = Arc::new(ConfigurationSpec::default());
        let forged = headers(&[("dapr-caller-app-id", "a")]);
        assert!(security.authorize(&open, None, &forged, OP).is_err());
        let peer = PeerIdentity(SpiffeId::new("public", "default", "a"));
        assert!(security.authorize(&open, Some(&peer), &forged, OP).is_ok());
    }
}
