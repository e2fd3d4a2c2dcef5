//! How a sidecar in Kubernetes mode knows its control plane is the real one (daprd's names): the
//! trust anchors the injector passes in `DAPR_TRUST_ANCHORS`, and the control plane's namespace
//! and trust domain, which make the operator's SPIFFE ID
//! (`spiffe://<trust domain>/ns/<namespace>/tandem-operator`). Without anchors the operator is
//! reached over plain HTTP, unverified.

use clap::Args;
use tandem_crds::annotations::defaults;

#[derive(Debug, Clone, Default, Args)]
pub struct ControlPlaneTrustArgs {
    /// Kubernetes mode: the control plane's trust anchors (PEM). Given, the operator is reached
    /// over TLS and must present a certificate chaining to them with its SPIFFE ID.
    #[arg(
        long = "trust-anchors",
        env = "DAPR_TRUST_ANCHORS",
        hide_env_values = true
    )]
    pub trust_anchors: Option<String>,
    /// Kubernetes mode: the control plane's namespace (part of the operator's SPIFFE ID).
    #[arg(long = "control-plane-namespace", env = "DAPR_CONTROLPLANE_NAMESPACE")]
    pub control_plane_namespace: Option<String>,
    /// Kubernetes mode: the control plane's trust domain (part of the operator's SPIFFE ID).
    #[arg(
        long = "control-plane-trust-domain",
        env = "DAPR_CONTROLPLANE_TRUST_DOMAIN",
        default_value = defaults::CONTROL_PLANE_TRUST_DOMAIN
    )]
    pub control_plane_trust_domain: String,
}
