//! Keeping `subscriptions.dapr.io`'s `spec.conversion` pointing at this webhook with the current
//! CA. The CRD is watched by name; whenever it (or the CA) changes and `spec.conversion` differs
//! from [`desired_conversion`], it is merge-patched. Writes after the first are spaced by a
//! doubling delay (reset once the CRD is seen up to date), so a fight with another writer, or an
//! apiserver that rewrites the value, can never become a hot loop.

use super::{CRD_NAME, PATH};
use futures_util::StreamExt;
use k8s_openapi::ByteString;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceConversion, CustomResourceDefinition, ServiceReference, WebhookClientConfig,
    WebhookConversion,
};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use std::sync::Arc;
use std::time::Duration;
use tandem_webhook_tls::Certificates;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The first delay between two writes that did not settle the CRD, and the longest.
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(60);
/// The field manager of the patch.
const FIELD_MANAGER: &str = "tandem-operator";

/// Where the apiserver sends `ConversionReview`s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientTarget {
    /// The webhook's Service (port 443, path `/convert`).
    Service { namespace: String, name: String },
    /// A URL (tests outside a cluster).
    Url(String),
}

/// `spec.conversion` as it should be: webhook conversion, review version v1, `target`, and
/// `ca_pem` as the caBundle.
pub fn desired_conversion(target: &ClientTarget, ca_pem: &[u8]) -> CustomResourceConversion {
    let (service, url) = match target {
        ClientTarget::Service { namespace, name } => {
            let service = ServiceReference {
                namespace: namespace.clone(),
                name: name.clone(),
                path: Some(PATH.to_owned()),
                port: Some(443),
            };
            (Some(service), None)
        }
        ClientTarget::Url(url) => (None, Some(url.clone())),
    };
    CustomResourceConversion {
        strategy: "Webhook".to_owned(),
        webhook: Some(WebhookConversion {
            client_config: Some(WebhookClientConfig {
                ca_bundle: Some(ByteString(ca_pem.to_vec())),
                service,
                url,
            }),
            conversion_review_versions: vec!["v1".to_owned()],
        }),
    }
}

/// Whether `crd`'s `spec.conversion` is `desired`.
pub fn up_to_date(crd: &CustomResourceDefinition, desired: &CustomResourceConversion) -> bool {
    crd.spec.conversion.as_ref() == Some(desired)
}

/// The JSON merge patch that makes `spec.conversion` exactly `desired`: the client config option
/// not chosen (`url` or `service`) is removed explicitly, since merging would keep it.
pub fn merge_patch(desired: &CustomResourceConversion) -> serde_json::Value {
    let mut conversion = serde_json::to_value(desired).unwrap_or_default();
    if let Some(config) = conversion
        .pointer_mut("/webhook/clientConfig")
        .and_then(serde_json::Value::as_object_mut)
    {
        for option in ["url", "service"] {
            config.entry(option).or_insert(serde_json::Value::Null);
        }
    }
    serde_json::json!({"spec": {"conversion": conversion}})
}

/// Keeps the CRD's conversion at [`desired_conversion`] for `target` and the current CA of
/// `certificates` until `shutdown` is cancelled or the certificates' sender is gone.
pub async fn keep_crd_conversion(
    client: kube::Client,
    target: ClientTarget,
    mut certificates: watch::Receiver<Arc<Certificates>>,
    shutdown: CancellationToken,
) {
    let api = Api::<CustomResourceDefinition>::all(client);
    let by_name = watcher::Config::default().fields(&format!("metadata.name={CRD_NAME}"));
    let mut crds = watcher(api.clone(), by_name)
        .default_backoff()
        .applied_objects()
        .boxed();
    let mut current: Option<CustomResourceDefinition> = None;
    let mut delay = Duration::ZERO;
    let mut not_before = Instant::now();
    let mut recheck: Option<Instant> = None;
    loop {
        let wake = recheck;
        tokio::select! {
            () = shutdown.cancelled() => return,
            event = crds.next() => match event {
                Some(Ok(crd)) => current = Some(crd),
                Some(Err(error)) => {
                    tracing::warn!(%error, "watching {CRD_NAME}");
                    continue;
                }
                None => return,
            },
            changed = certificates.changed() => if changed.is_err() {
                return;
            },
            () = sleep_until(wake), if wake.is_some() => recheck = None,
        }
        let Some(crd) = &current else {
            continue;
        };
        let ca_pem = certificates.borrow_and_update().ca_pem.clone();
        let desired = desired_conversion(&target, ca_pem.as_bytes());
        if up_to_date(crd, &desired) {
            delay = Duration::ZERO;
            recheck = None;
            continue;
        }
        let now = Instant::now();
        if now < not_before {
            recheck = Some(not_before);
            continue;
        }
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        };
        let patch = Patch::Merge(merge_patch(&desired));
        let patched = api.patch(CRD_NAME, &params, &patch).await;
        match patched {
            Ok(crd) => {
                tracing::info!("{CRD_NAME}: conversion set to this webhook");
                current = Some(crd);
            }
            Err(error) => tracing::warn!(%error, "patching the conversion of {CRD_NAME}"),
        }
        delay = (delay * 2).clamp(FIRST_RETRY, MAX_RETRY);
        not_before = now + delay;
        recheck = Some(not_before);
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn desired_for_a_service_and_for_a_url() {
        let service = ClientTarget::Service {
            namespace: "tandem".into(),
            name: "tandem-webhook".into(),
        };
        let value = serde_json::to_value(desired_conversion(&service, b"PEM")).expect("json");
        assert_eq!(
            value,
            json!({"strategy": "Webhook", "webhook": {"conversionReviewVersions": ["v1"], "clientConfig": {
                "caBundle": "UEVN",
                "service": {"namespace": "tandem", "name": "tandem-webhook", "path": "/convert", "port": 443}}}})
        );
        let url = ClientTarget::Url("https://127.0.0.1:1/convert".into());
        let patch = merge_patch(&desired_conversion(&url, b"PEM"));
        assert_eq!(
            patch["spec"]["conversion"]["webhook"]["clientConfig"],
            json!({"caBundle": "UEVN", "url": "https://127.0.0.1:1/convert", "service": null})
        );
        let patch = merge_patch(&desired_conversion(&service, b"PEM"));
        assert_eq!(
            patch["spec"]["conversion"]["webhook"]["clientConfig"]["url"],
            json!(null)
        );
    }

    #[test]
    fn up_to_date_only_when_equal() {
        let target = ClientTarget::Url("https://x/convert".into());
        let desired = desired_conversion(&target, b"CA1");
        let mut crd = tandem_crds_subscription_crd();
        assert!(!up_to_date(&crd, &desired), "strategy None");
        crd.spec.conversion = Some(desired.clone());
        assert!(up_to_date(&crd, &desired));
        assert!(
            !up_to_date(&crd, &desired_conversion(&target, b"CA2")),
            "a new CA"
        );
        let other = ClientTarget::Url("https://y/convert".into());
        assert!(!up_to_date(&crd, &desired_conversion(&other, b"CA1")));
    }

    fn tandem_crds_subscription_crd() -> CustomResourceDefinition {
        use kube::core::crd::CustomResourceExt;
        tandem_crds::Subscription::crd()
    }
}
