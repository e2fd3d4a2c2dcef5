//! One watch per dapr.io kind: the controllers and the sidecar API read the same caches, so the
//! operator lists and watches Components, Configurations and Subscriptions once each, however
//! many of its parts read them (before, each kind was listed and watched by its controller, by the
//! sidecar API's index, and Components a third time by the Subscription controller). Measured with
//! a client layer that records every request.

use crate::support::{REACT, api, env_with_crds, wait_ready};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tandem_crds::{Component, Subscription};
use tandem_envtest::eventually;
use tandem_operator::Operator;
use tandem_operator::cache::Caches;
use tandem_operator::controller::Scope;
use tandem_operator::sidecar_api::{Index, Wanted};
use tokio_util::sync::CancellationToken;

/// Every request a client made: `METHOD path?query`.
#[derive(Debug, Clone, Default)]
struct RequestLog(Arc<Mutex<Vec<(String, String)>>>);

impl RequestLog {
    /// How many collection requests (lists and watches) went to a path ending in `/plural`.
    fn collection_requests(&self, plural: &str) -> BTreeMap<&'static str, usize> {
        let requests = self.0.lock().map(|r| r.clone()).unwrap_or_default();
        let mut counted = BTreeMap::new();
        for (path, query) in requests {
            if !path.ends_with(&format!("/{plural}")) {
                continue;
            }
            let what = if query.contains("watch=true") {
                "watch"
            } else {
                "list"
            };
            *counted.entry(what).or_default() += 1;
        }
        counted
    }
}

fn recording(client: kube::Client, log: RequestLog) -> kube::Client {
    let namespace = client.default_namespace().to_owned();
    let service = tower::service_fn(move |request: http::Request<kube::client::Body>| {
        let (client, log) = (client.clone(), log.clone());
        async move {
            let uri = request.uri();
            let entry = (uri.path().to_owned(), uri.query().unwrap_or("").to_owned());
            if let Ok(mut requests) = log.0.lock() {
                requests.push(entry);
            }
            client.send(request).await
        }
    });
    kube::Client::new(service, namespace)
}

const MANIFESTS: &str = r#"
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: pubsub}
spec: {type: pubsub.in-memory, version: v1}
---
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata: {name: orders}
spec: {pubsubname: pubsub, topic: orders, routes: {default: /orders}}
---
apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata: {name: appconfig}
spec: {tracing: {samplingRate: "1"}}
"#;

#[tokio::test]
async fn the_controllers_and_the_sidecar_api_share_one_watch_per_kind() {
    let env = env_with_crds().await;
    let log = RequestLog::default();
    let client = recording(env.client(), log.clone());
    let scope = Scope::new(Some(env.namespace().to_owned()));
    let (caches, feeding) = Caches::start(&client, &scope);
    let feeding = tokio::spawn(feeding);
    let index = Index::new(&caches);
    let operator = Operator::new(client, Some(env.namespace().to_owned()))
        .expect("operator")
        .with_caches(caches);
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(operator.run(shutdown.clone()));

    env.kubectl_apply(MANIFESTS).await.expect("apply");
    wait_ready(&api::<Component>(&env), "pubsub", "True", "Valid").await;
    wait_ready(&api::<Subscription>(&env), "orders", "True", "Valid").await;
    // The sidecar API sees what the controllers judged, from the same store.
    let wanted = Wanted {
        namespace: env.namespace(),
        app_id: "checkout",
        configuration: Some("appconfig"),
    };
    let seen = eventually("the index to hold all three", REACT, || {
        let resources = index.resources(&wanted);
        async move {
            let whole = resources.components.len() == 1
                && resources.subscriptions.len() == 1
                && resources.configuration.is_some();
            whole.then_some(resources)
        }
    })
    .await;
    assert_eq!(seen.components[0].metadata.name.as_deref(), Some("pubsub"));
    assert_eq!(
        seen.components[0].metadata.managed_fields, None,
        "cached without managedFields"
    );

    for plural in ["components", "configurations", "subscriptions"] {
        let counted = log.collection_requests(plural);
        eprintln!("{plural}: {counted:?}");
        assert_eq!(counted.get("list"), Some(&1), "{plural}: one list");
        assert_eq!(counted.get("watch"), Some(&1), "{plural}: one watch");
    }
    shutdown.cancel();
    let stopped = tokio::time::timeout(REACT, running).await;
    stopped
        .expect("stops in time")
        .expect("no panic")
        .expect("a clean stop");
    feeding.abort();
}
