//! Who a sidecar is. It presents its pod's ServiceAccount token; the API server's TokenReview says
//! whose token it is ([`review_token`]), and the pure [`caller_from`] and [`admit`] decide whether
//! that caller may have the resources of the namespace, pod and app id it asks for:
//!
//! - the token is a ServiceAccount's, of the namespace asked for (no cross-namespace reads);
//! - the pod exists there, runs as that ServiceAccount, has Dapr enabled and the app id asked for;
//! - a pod-bound token (the projected volume the injector mounts) must name that very pod, by name
//!   and uid, so a token cannot be replayed for another pod of the same ServiceAccount.

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec, TokenReviewStatus};
use k8s_openapi::api::core::v1::Pod;
use kube::api::PostParams;
use kube::{Api, Client};
use tandem_crds::annotations::{is_truthy, keys};

/// `extra` keys the API server sets for pod-bound ServiceAccount tokens.
const POD_NAME_EXTRA: &str = "authentication.kubernetes.io/pod-name";
const POD_UID_EXTRA: &str = "authentication.kubernetes.io/pod-uid";
const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";

/// A verified token's owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub namespace: String,
    pub service_account: String,
    /// Set for pod-bound tokens.
    pub pod_name: Option<String>,
    pub pod_uid: Option<String>,
}

/// What a sidecar says it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim<'a> {
    pub namespace: &'a str,
    pub pod_name: &'a str,
    pub app_id: &'a str,
}

/// Why a sidecar is turned away. The messages name what to fix; none echo the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error(
        "no bearer token: send the pod's ServiceAccount token as 'Authorization: Bearer <token>'"
    )]
    NoToken,
    #[error("the token was not accepted by the API server{0}")]
    InvalidToken(String),
    #[error("the token was not accepted by the API server: not issued for audience {0:?}")]
    OtherAudience(Vec<String>),
    #[error("the token belongs to '{0}', not to a ServiceAccount")]
    NotServiceAccount(String),
    #[error("the token is of namespace '{token}', the request is for namespace '{asked}'")]
    OtherNamespace { token: String, asked: String },
    #[error("pod {namespace}/{pod} does not exist")]
    NoSuchPod { namespace: String, pod: String },
    #[error("the token is bound to pod '{token}', the request names pod '{asked}'")]
    OtherPod { token: String, asked: String },
    #[error("pod {pod} runs as ServiceAccount '{pod_account}', the token is of '{token_account}'")]
    OtherServiceAccount {
        pod: String,
        pod_account: String,
        token_account: String,
    },
    #[error("pod {pod} does not have dapr.io/enabled set")]
    NotDaprEnabled { pod: String },
    #[error("secret '{0}' is not readable under this pod's Configuration secret scopes")]
    SecretOutOfScope(String),
    #[error("pod {pod} has app id '{pod_app_id}', the request is for '{asked}'")]
    OtherAppId {
        pod: String,
        pod_app_id: String,
        asked: String,
    },
}

impl Denied {
    /// Whether the caller is unknown (401) rather than known but not allowed (403).
    pub fn is_unauthenticated(&self) -> bool {
        matches!(
            self,
            Denied::NoToken
                | Denied::InvalidToken(_)
                | Denied::OtherAudience(_)
                | Denied::NotServiceAccount(_)
        )
    }
}

/// Asks the API server whose token this is. `audiences` empty: the API server's own.
pub async fn review_token(
    client: &Client,
    token: &str,
    audiences: &[String],
) -> Result<TokenReviewStatus, kube::Error> {
    let review = TokenReview {
        spec: TokenReviewSpec {
            token: Some(token.to_owned()),
            audiences: (!audiences.is_empty()).then(|| audiences.to_vec()),
        },
        ..TokenReview::default()
    };
    let reviewed = Api::<TokenReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await?;
    Ok(reviewed.status.unwrap_or_default())
}

/// The caller a TokenReview vouches for.
pub fn caller_from(status: &TokenReviewStatus) -> Result<Caller, Denied> {
    if status.authenticated != Some(true) {
        let why = status
            .error
            .as_deref()
            .filter(|e| !e.is_empty())
            .map(|e| format!(": {e}"))
            .unwrap_or_default();
        return Err(Denied::InvalidToken(why));
    }
    let user = status.user.clone().unwrap_or_default();
    let username = user.username.unwrap_or_default();
    let (namespace, service_account) = username
        .strip_prefix(SERVICE_ACCOUNT_PREFIX)
        .and_then(|rest| rest.split_once(':'))
        .filter(|(ns, name)| !ns.is_empty() && !name.is_empty())
        .ok_or_else(|| Denied::NotServiceAccount(username.clone()))?;
    let extra = |key: &str| {
        user.extra
            .as_ref()
            .and_then(|extra| extra.get(key))
            .and_then(|values| values.first())
            .cloned()
    };
    Ok(Caller {
        namespace: namespace.to_owned(),
        service_account: service_account.to_owned(),
        pod_name: extra(POD_NAME_EXTRA),
        pod_uid: extra(POD_UID_EXTRA),
    })
}

/// The checks that need no pod: the token's namespace and bound pod.
pub fn admit_claim(caller: &Caller, claim: &Claim<'_>) -> Result<(), Denied> {
    if caller.namespace != claim.namespace {
        return Err(Denied::OtherNamespace {
            token: caller.namespace.clone(),
            asked: claim.namespace.to_owned(),
        });
    }
    if let Some(bound) = caller.pod_name.as_deref().filter(|p| *p != claim.pod_name) {
        return Err(Denied::OtherPod {
            token: bound.to_owned(),
            asked: claim.pod_name.to_owned(),
        });
    }
    Ok(())
}

/// Whether `caller` may have what `claim` asks for, given the claimed pod as the API server has it
/// (`None`: no such pod).
pub fn admit(caller: &Caller, claim: &Claim<'_>, pod: Option<&Pod>) -> Result<(), Denied> {
    admit_claim(caller, claim)?;
    let no_such_pod = || Denied::NoSuchPod {
        namespace: claim.namespace.to_owned(),
        pod: claim.pod_name.to_owned(),
    };
    let pod = pod.ok_or_else(no_such_pod)?;
    if let (Some(bound), Some(uid)) = (&caller.pod_uid, &pod.metadata.uid) {
        // Same name, another pod: the token's pod is gone and this one took its name.
        if bound != uid {
            return Err(no_such_pod());
        }
    }
    let pod_account = pod
        .spec
        .as_ref()
        .and_then(|spec| spec.service_account_name.clone())
        .unwrap_or_else(|| "default".to_owned());
    if pod_account != caller.service_account {
        return Err(Denied::OtherServiceAccount {
            pod: claim.pod_name.to_owned(),
            pod_account,
            token_account: caller.service_account.clone(),
        });
    }
    let annotations = pod.metadata.annotations.as_ref();
    let annotation = |key: &str| annotations.and_then(|a| a.get(key)).map(String::as_str);
    if !annotation(keys::ENABLED).is_some_and(is_truthy) {
        return Err(Denied::NotDaprEnabled {
            pod: claim.pod_name.to_owned(),
        });
    }
    // Dapr's default app id is the pod's name.
    let pod_app_id = annotation(keys::APP_ID)
        .filter(|id| !id.is_empty())
        .unwrap_or(claim.pod_name);
    if pod_app_id != claim.app_id {
        return Err(Denied::OtherAppId {
            pod: claim.pod_name.to_owned(),
            pod_app_id: pod_app_id.to_owned(),
            asked: claim.app_id.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
