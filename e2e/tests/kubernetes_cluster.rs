//! The order/catalog scenario of a Dapr tutorial on a Kubernetes cluster on this machine
//! (`tandem_e2e::one_machine`): the real kube-apiserver, etcd and kube-controller-manager, the
//! chart applied, the operator and injector wired as the chart wires them, a test node agent
//! running pods as processes in their own network namespaces, cluster DNS from Services and
//! Endpoints, real Redis. Components, Subscriptions and Deployments go in with kubectl; the
//! injector adds `daprd` (the `tandem-sidecar` executable), which gets its components from the
//! operator and finds peers by `<app-id>-dapr.<ns>.svc.cluster.local`.
//!
//! Needs root (network namespaces), `KUBEBUILDER_ASSETS` (`scripts/envtest.sh`, which also builds
//! kube-controller-manager) and `TANDEM_TOOLS` (`scripts/k8s-tools.sh`); `scripts/test.sh` provides
//! all three.

#![allow(clippy::unwrap_used, reason = "a test fails on what it unwraps")]

mod cluster_support;

use cluster_support::traffic::{Call, Callers};
use cluster_support::*;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;
use serde_json::json;
use std::time::Instant;
use tandem_e2e::one_machine::OneMachineCluster;
use tandem_e2e::sidecar_http::SidecarClient;
use tandem_envtest::{TestEnv, eventually};
use tandem_testkit::RedisServer;

/// How many calls each caller makes before a pod's deletion and after it.
const PER_STAGE: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn order_catalog_and_shipping_run_on_a_one_machine_cluster() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the node agent needs root for network namespaces"
    );
    let env = TestEnv::start().await;
    let cluster = OneMachineCluster::start(&env)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let shop = namespace(&env, "shop").await;
    let other = namespace(&env, "other").await;
    let address = cluster.address();
    let redis = tokio::task::spawn_blocking(move || RedisServer::start_on(address))
        .await
        .unwrap();
    let guard = Logs {
        cluster: &cluster,
        namespace: shop.clone(),
    };

    apply(&env, &shop, &shop_manifest(&redis.addr())).await;
    apply(&env, &other, "apiVersion: v1\nkind: Secret\nmetadata: {name: only-in-other}\nstringData: {password: elsewhere}\n").await;
    let rollout = Instant::now();
    for app in ["order", "catalog", "shipping"] {
        apply(&env, &shop, &deployment(app, 1)).await;
    }
    let order_pod = ready_pods(&env, &shop, "order", 1).await.remove(0);
    let catalog_pod = ready_pods(&env, &shop, "catalog", 1).await.remove(0);
    let shipping_pod = ready_pods(&env, &shop, "shipping", 1).await.remove(0);
    for app in ["order", "catalog", "shipping"] {
        endpoints(&env, &shop, app, 1).await;
    }
    eprintln!(
        "three Deployments applied → pods ready, in their Endpoints: {:?}",
        rollout.elapsed()
    );
    let order = format!("http://{}:3500", order_pod.1);
    let catalog = format!("http://{}:3500", catalog_pod.1);
    let order_pids = cluster.node.pids(&shop, &order_pod.0);
    assert!(
        order_pids.contains_key("daprd"),
        "the injector added daprd: {order_pids:?}"
    );

    let metrics_client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap();
    for pod in [&order_pod, &catalog_pod] {
        assert_mtls_on(&metrics_client, &pod.1).await;
    }
    assert_control_plane_verified(&env, &cluster, &shop, &order_pod.0).await;
    let shipping_app = format!("http://{}:8080/_e2e/seen", shipping_pod.1);
    let scenario = Scenario {
        http: SidecarClient::new(),
        env: &env,
        cluster: &cluster,
        shop: shop.clone(),
        other,
        redis: &redis,
        order,
        catalog,
        order_pod,
        catalog_pod,
        shipping_pod,
        shipping_app,
        order_pids,
    };
    calls_state_events_scopes_and_secrets(&scenario).await;
    component_and_subscription_changes(&scenario).await;
    scale_out_and_delete_mid_traffic(&scenario).await;
    drop(guard);
}

/// What the phases share: the cluster, the namespaces, the apps' pods and sidecar URLs.
struct Scenario<'a> {
    /// The test's one HTTP client, for every call to a sidecar or an app.
    http: SidecarClient,
    env: &'a TestEnv,
    cluster: &'a OneMachineCluster,
    shop: String,
    other: String,
    redis: &'a RedisServer,
    /// order's sidecar, `http://<pod IP>:3500`.
    order: String,
    catalog: String,
    /// (name, IP).
    order_pod: (String, String),
    catalog_pod: (String, String),
    shipping_pod: (String, String),
    /// shipping's app, `GET /_e2e/seen`.
    shipping_app: String,
    order_pids: std::collections::BTreeMap<String, u32>,
}

/// Invocation by app id through DNS, state in Redis, an event to a third app, scopes, secrets, an
/// unknown app id.
async fn calls_state_events_scopes_and_secrets(scenario: &Scenario<'_>) {
    let Scenario {
        http,
        shop,
        other,
        redis,
        order,
        catalog,
        catalog_pod,
        shipping_app,
        ..
    } = scenario;
    // order → catalog by app id, through cluster DNS to catalog's pod.
    let (status, answer) = http
        .call(
            reqwest::Method::POST,
            &format!("{order}/v1.0/invoke/catalog/method/items"),
            Some(json!({"sku": 7})),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (answer["pod"].as_str(), answer["path"].as_str()),
        (Some(catalog_pod.0.as_str()), Some("/items"))
    );
    assert_eq!(answer["body"], json!({"sku": 7}));
    let (status, _) = http
        .call(
            reqwest::Method::GET,
            &format!("{order}/v1.0/invoke/catalog.{shop}/method/items"),
            None,
        )
        .await;
    assert_eq!(status, 200, "catalog.<namespace> reaches it too");

    // State in Redis, under Dapr's key `<app-id>||<key>`.
    let (status, body) = http
        .call(
            reqwest::Method::POST,
            &format!("{order}/v1.0/state/statestore"),
            Some(json!([{"key": "order-1", "value": {"total": 42}}])),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let (status, value) = http
        .call(
            reqwest::Method::GET,
            &format!("{order}/v1.0/state/statestore/order-1"),
            None,
        )
        .await;
    assert_eq!((status, value), (200, json!({"total": 42})));
    assert!(redis_has(redis, "order||order-1"), "the state is in Redis");

    // An event published by order reaches shipping (Subscription scoped to it) through Redis.
    let (status, body) = http
        .call(
            reqwest::Method::POST,
            &format!("{order}/v1.0/publish/pubsub/orders"),
            Some(json!({"orderId": 1})),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let event = eventually("shipping to receive the order event", REACT, || async {
        let (_, seen) = http.call(reqwest::Method::GET, shipping_app, None).await;
        seen.as_array()?
            .iter()
            .find(|r| r["path"] == "/orders")
            .cloned()
    })
    .await;
    assert_eq!(event["body"]["data"], json!({"orderId": 1}), "{event}");
    assert_eq!(event["body"]["source"], "order", "{event}");

    // Scopes: `audit` is order's only.
    assert!(
        http.component_names(order)
            .await
            .contains(&"audit".to_owned())
    );
    assert!(
        !http
            .component_names(catalog)
            .await
            .contains(&"audit".to_owned())
    );

    // Secrets: the pod's own namespace through the built-in store; never another namespace's.
    let (status, secret) = http
        .call(
            reqwest::Method::GET,
            &format!("{order}/v1.0/secrets/kubernetes/app-secret"),
            None,
        )
        .await;
    assert_eq!(
        (status, secret["password"].as_str()),
        (200, Some("s3cret")),
        "{secret}"
    );
    for path in [
        "only-in-other",
        &format!("only-in-other?metadata.namespace={other}"),
    ] {
        let (status, body) = http
            .call(
                reqwest::Method::GET,
                &format!("{order}/v1.0/secrets/kubernetes/{path}"),
                None,
            )
            .await;
        assert_ne!(status, 200, "{path}: {body}");
        assert!(!body.to_string().contains("elsewhere"), "{body}");
    }

    // An app id nobody has: ERR_DIRECT_INVOKE, never a hang (it takes milliseconds; the limit
    // leaves a loaded machine room).
    let took = http.invoke_unknown_app(order, REACT).await;
    eprintln!("unknown app id → ERR_DIRECT_INVOKE in {took:?}");
}

/// Components and Subscriptions changed with kubectl take effect without restarts.
async fn component_and_subscription_changes(scenario: &Scenario<'_>) {
    let Scenario {
        http,
        env,
        cluster,
        shop,
        redis,
        order,
        order_pod,
        shipping_pod,
        shipping_app,
        order_pids,
        ..
    } = scenario;
    // A Component edited with kubectl: keys without the app-id prefix from now on, no restart.
    apply(env, shop, &edited_statestore(&redis.addr())).await;
    let edited = Instant::now();
    eventually(
        "order's sidecar to use the edited statestore",
        REACT,
        || async {
            let (status, _) = http
                .call(
                    reqwest::Method::POST,
                    &format!("{order}/v1.0/state/statestore"),
                    Some(json!([{"key": "edited", "value": 1}])),
                )
                .await;
            (status == 204 && redis_has(redis, "edited")).then_some(())
        },
    )
    .await;
    eprintln!(
        "Component edit applied by the sidecar within {:?}",
        edited.elapsed()
    );
    assert_eq!(
        cluster.node.pids(shop, &order_pod.0),
        *order_pids,
        "no container restarted"
    );

    // Subscriptions follow changes as components do: the pubsub Component edited (shipping's
    // subscription moves to the new instance) and a Subscription added, without restarts.
    let shipping_pids = cluster.node.pids(shop, &shipping_pod.0);
    apply(env, shop, &edited_pubsub_and_refunds(&redis.addr())).await;
    let reloaded = Instant::now();
    for (topic, n) in [("orders", 2), ("refunds", 3)] {
        eventually(
            &format!("shipping to receive {topic} event {n}"),
            REACT,
            || async {
                // Published again until it arrives: the change reaches the sidecars asynchronously.
                let url = format!("{order}/v1.0/publish/pubsub/{topic}");
                let (_, seen) = http.call(reqwest::Method::GET, shipping_app, None).await;
                let arrived = seen
                    .as_array()?
                    .iter()
                    .any(|r| r["path"] == format!("/{topic}") && r["body"]["data"]["orderId"] == n);
                if !arrived {
                    http.call(reqwest::Method::POST, &url, Some(json!({"orderId": n})))
                        .await;
                }
                arrived.then_some(())
            },
        )
        .await;
    }
    eprintln!(
        "pubsub edit + new Subscription delivering within {:?}",
        reloaded.elapsed()
    );
    assert_eq!(
        cluster.node.pids(shop, &shipping_pod.0),
        shipping_pids,
        "shipping did not restart"
    );
}

/// Scaling spreads calls; a pod deleted mid-traffic costs no call; nothing restarted.
async fn scale_out_and_delete_mid_traffic(scenario: &Scenario<'_>) {
    let Scenario {
        http,
        env,
        cluster,
        shop,
        order,
        order_pod,
        order_pids,
        ..
    } = scenario;
    // catalog scaled 1 → 3: calls spread over the three pods.
    kubectl(env, shop, &["scale", "deployment/catalog", "--replicas=3"]).await;
    let catalogs = ready_pods(env, shop, "catalog", 3).await;
    endpoints(env, shop, "catalog", 3).await;
    let answered = std::sync::Mutex::new(std::collections::BTreeSet::new());
    let url = format!("{order}/v1.0/invoke/catalog/method/whoami");
    eventually("calls to reach all three catalog pods", REACT, || async {
        let (status, answer) = http.call(reqwest::Method::GET, &url, None).await;
        let mut answered = answered.lock().unwrap();
        if status == 200 {
            answered.insert(answer["pod"].as_str().unwrap_or_default().to_owned());
        }
        (answered.len() == 3).then_some(())
    })
    .await;
    let answered = answered.into_inner().unwrap();
    let expected: std::collections::BTreeSet<String> =
        catalogs.iter().map(|(name, _)| name.clone()).collect();
    assert_eq!(answered, expected);

    // One catalog pod deleted mid-traffic: every call still succeeds. Four callers call catalog
    // through order, one call after another, before the deletion, while the pod shuts down and
    // after it is gone. The stages before and after last until each caller has made PER_STAGE
    // calls in them; the one in between lasts as long as the pod takes to stop (its app drains
    // for 2 s), so there each caller must have a call in flight, however slow the machine.
    let url = format!("{order}/v1.0/invoke/catalog/method/items");
    let callers = Callers::start(http, &url, 4);
    callers
        .wait_for("calls before the deletion", PER_STAGE, REACT, |_| true)
        .await;
    let victim = catalogs[0].0.clone();
    let deleting = Instant::now();
    kubectl(env, shop, &["delete", "pod", &victim, "--wait=true"]).await;
    let deleted = Instant::now();
    callers
        .wait_for("calls after the deletion", PER_STAGE, REACT, |c| {
            c.started >= deleted
        })
        .await;
    let per_caller = callers.stop().await;
    let outcomes: Vec<&Call> = per_caller.iter().flatten().collect();
    let failed: Vec<_> = outcomes
        .iter()
        .filter(|c| c.status != 200)
        .map(|c| (c.status, &c.answer))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} calls failed: {failed:?}",
        failed.len(),
        outcomes.len()
    );
    let before = |c: &&Call| c.ended < deleting;
    let during = |c: &&Call| c.started < deleted && c.ended >= deleting;
    let after = |c: &&Call| c.started >= deleted;
    let mut stages = Vec::new();
    for (n, calls) in per_caller.iter().enumerate() {
        let count = |stage: &dyn Fn(&&Call) -> bool| calls.iter().filter(|c| stage(c)).count();
        let counts = (count(&before), count(&during), count(&after));
        assert!(
            counts.0 >= PER_STAGE && counts.1 >= 1 && counts.2 >= PER_STAGE,
            "caller {n}: calls before, during and after the deletion: {counts:?}"
        );
        assert!(
            calls.iter().filter(after).all(|c| c.pod != victim),
            "caller {n}: calls moved off the deleted pod"
        );
        stages.push(counts);
    }
    let mut by_pod = std::collections::BTreeMap::<&str, usize>::new();
    for call in &outcomes {
        *by_pod.entry(call.pod.as_str()).or_default() += 1;
    }
    eprintln!(
        "calls while {victim} was deleted: {} (0 failed), per caller (before, during, after) \
         {stages:?}, by pod {by_pod:?}; the deletion took {:?}",
        outcomes.len(),
        deleted - deleting
    );

    // No sidecar restarted: the same order process throughout, restart counts all 0.
    assert_eq!(cluster.node.pids(shop, &order_pod.0), *order_pids);
    let pods: Api<Pod> = Api::namespaced(env.client(), shop);
    let listed = pods.list(&ListParams::default()).await.unwrap().items;
    assert!(
        restart_counts(&listed).iter().all(|c| *c == 0),
        "{:?}",
        restart_counts(&listed)
    );
}
