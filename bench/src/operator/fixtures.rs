//! B10's cluster: the dapr.io CRDs, N Components (every [`INVALID_EVERY`]th of an unknown type)
//! and N Dapr-annotated Deployments spread over a few namespaces, created concurrently.

use futures_util::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use std::time::{Duration, Instant};
use tandem_crds::Component;

/// Every this-many-th Component has a type Tandem does not know (it gets `Ready=False`).
pub const INVALID_EVERY: usize = 10;
/// How many creates are in flight at once while filling the cluster.
const CREATE_CONCURRENCY: usize = 32;

/// The namespace of object `i`.
pub fn namespace_of(i: usize, namespaces: usize) -> String {
    format!("bench-{}", i % namespaces.max(1))
}

/// Component `i`: `state.in-memory`, or an unknown type for every [`INVALID_EVERY`]th.
pub fn component(i: usize) -> serde_json::Value {
    let type_ = if i % INVALID_EVERY == INVALID_EVERY - 1 {
        "state.no-such-store"
    } else {
        "state.in-memory"
    };
    serde_json::json!({
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": format!("store-{i}")},
        "spec": {"type": type_, "version": "v1", "metadata": []},
    })
}

/// Deployment `i`, Dapr-enabled with app id `app-<i>` (no pods: envtest has no controllers).
pub fn deployment(i: usize) -> serde_json::Value {
    let app = format!("app-{i}");
    serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": app},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": app}},
            "template": {
                "metadata": {
                    "labels": {"app": app},
                    "annotations": {"dapr.io/enabled": "true", "dapr.io/app-id": app},
                },
                "spec": {"containers": [{"name": "app", "image": "app:1"}]},
            },
        },
    })
}

pub(super) async fn install_crds(client: &kube::Client) -> anyhow::Result<()> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let api = Api::<CustomResourceDefinition>::all(client.clone());
    let params = kube::api::PatchParams::apply("operator-bench").force();
    let crds = tandem_crds::crd::all();
    for crd in &crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        api.patch(&name, &params, &kube::api::Patch::Apply(crd))
            .await?;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    for crd in &crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        loop {
            let status = api.get(&name).await?.status.and_then(|s| s.conditions);
            let established = status
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True");
            if established {
                break;
            }
            if Instant::now() > deadline {
                anyhow::bail!("CRD {name} not established after 30 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(())
}

pub(super) async fn fill(client: &kube::Client, n: usize, namespaces: usize) -> anyhow::Result<()> {
    let ns_api = Api::<Namespace>::all(client.clone());
    for i in 0..namespaces.max(1) {
        let ns: Namespace = serde_json::from_value(
            serde_json::json!({"metadata": {"name": namespace_of(i, namespaces)}}),
        )?;
        ns_api.create(&PostParams::default(), &ns).await?;
    }
    let creates = (0..n)
        .flat_map(|i| [(i, true), (i, false)])
        .map(|(i, is_component)| {
            let namespace = namespace_of(i, namespaces);
            let client = client.clone();
            async move {
                let params = PostParams::default();
                if is_component {
                    let object: Component = serde_json::from_value(component(i))?;
                    Api::namespaced(client, &namespace)
                        .create(&params, &object)
                        .await?;
                } else {
                    let object: Deployment = serde_json::from_value(deployment(i))?;
                    Api::namespaced(client, &namespace)
                        .create(&params, &object)
                        .await?;
                }
                anyhow::Ok(())
            }
        });
    stream::iter(creates)
        .buffer_unordered(CREATE_CONCURRENCY)
        .try_collect::<()>()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixtures_are_valid_objects() {
        let c: Component = serde_json::from_value(component(9)).expect("component");
        assert_eq!(c.spec.type_, "state.no-such-store");
        let c: Component = serde_json::from_value(component(3)).expect("component");
        assert_eq!(c.spec.type_, "state.in-memory");
        let d: Deployment = serde_json::from_value(deployment(7)).expect("deployment");
        let template = d.spec.expect("spec").template.metadata.expect("meta");
        let annotations = template.annotations.expect("annotations");
        assert_eq!(annotations["dapr.io/app-id"], "app-7");
        assert_eq!(namespace_of(7, 4), "bench-3");
    }
}
