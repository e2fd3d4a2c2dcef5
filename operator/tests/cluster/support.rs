//! Shared by the cluster tests: a running operator, waiting on conditions, and a client that
//! records every write it sends.

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::Resource;
use kube::api::{Api, ListParams};
use kube::core::object::HasStatus;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tandem_crds::Status;
use tandem_envtest::{TestEnv, eventually};
use tandem_operator::Operator;
use tandem_operator::metrics::Metrics;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long a test waits for the operator to react to a change: generous for a loaded machine,
/// yet far below the 5-minute resync, so a change the watches missed still fails the test.
pub const REACT: Duration = Duration::from_secs(30);

/// Held while the dapr.io CRDs are installed, and by the conversion test for as long as it points
/// `subscriptions.dapr.io` at its webhook: installing sets the conversion strategy to `None`,
/// which the apiserver refuses next to a webhook config, and would cut the test short.
pub static CRD_CONVERSION: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A test's control plane with the dapr.io CRDs installed.
pub async fn env_with_crds() -> TestEnv {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("tandem_operator=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
    let env = TestEnv::start().await;
    let _no_conversion_test = CRD_CONVERSION.lock().await;
    env.install_crds(&tandem_crds::crd::all())
        .await
        .expect("the CRDs install");
    env
}

/// The operator's controllers running in this process.
pub struct RunningOperator {
    pub metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    task: JoinHandle<tandem_operator::Result<()>>,
}

impl RunningOperator {
    /// Starts the controllers over `namespace` with `client` and waits until they are ready.
    pub async fn start(client: kube::Client, namespace: &str) -> RunningOperator {
        let operator = Operator::new(client, Some(namespace.to_owned())).expect("operator");
        let (metrics, readiness) = (operator.metrics(), operator.readiness());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(operator.run(shutdown.clone()));
        let started = Instant::now();
        eventually("the operator's caches to sync", REACT, || {
            let ready = readiness.is_ready();
            async move { ready.then_some(()) }
        })
        .await;
        eprintln!("operator ready after {:?}", started.elapsed());
        RunningOperator {
            metrics,
            shutdown,
            task,
        }
    }

    /// Stops the controllers and checks they stopped cleanly.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let outcome = tokio::time::timeout(REACT, self.task)
            .await
            .expect("the operator stops in time")
            .expect("the operator task did not panic");
        outcome.expect("a clean stop");
    }
}

/// Waits until `name`'s `Ready` condition has `status` and `reason`; returns the condition.
pub async fn wait_ready<K>(api: &Api<K>, name: &str, status: &str, reason: &str) -> Condition
where
    K: Resource + HasStatus<Status = Status> + Clone + DeserializeOwned + Debug,
{
    let what = format!("{name} Ready={status} ({reason})");
    let started = Instant::now();
    let condition = eventually(&what, REACT, || async {
        let object = api.get(name).await.ok()?;
        let condition = ready_condition(&object)?;
        (condition.status == status && condition.reason == reason).then_some(condition)
    })
    .await;
    eprintln!(
        "{what} after {:?}: {}",
        started.elapsed(),
        condition.message
    );
    condition
}

/// The `Ready` condition of an object, if it has one.
pub fn ready_condition<K: HasStatus<Status = Status>>(object: &K) -> Option<Condition> {
    let status = object.status()?;
    status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .cloned()
}

/// The Events about the object called `name` with `reason`, in the test's namespace.
pub async fn events(env: &TestEnv, name: &str, reason: &str) -> Vec<Event> {
    let selector = format!("involvedObject.name={name},reason={reason}");
    let api: Api<Event> = env.namespaced();
    let listed = api.list(&ListParams::default().fields(&selector)).await;
    listed.expect("list events").items
}

/// Waits until there is at least one such Event; returns them all.
pub async fn wait_events(env: &TestEnv, name: &str, reason: &str) -> Vec<Event> {
    let what = format!("an Event {reason} about {name}");
    eventually(&what, REACT, || async {
        let found = events(env, name, reason).await;
        (!found.is_empty()).then_some(found)
    })
    .await
}

/// Every request but GET (and HEAD/OPTIONS) that a client made: `METHOD path`.
#[derive(Debug, Clone, Default)]
pub struct WriteLog(Arc<Mutex<Vec<String>>>);

impl WriteLog {
    pub fn writes(&self) -> Vec<String> {
        self.0.lock().map(|w| w.clone()).unwrap_or_default()
    }

    fn record(&self, write: String) {
        if let Ok(mut writes) = self.0.lock() {
            writes.push(write);
        }
    }
}

/// `client` behind a layer that records each write request in `log`.
pub fn recording_writes(client: kube::Client, log: WriteLog) -> kube::Client {
    let namespace = client.default_namespace().to_owned();
    let service = tower::service_fn(move |request: http::Request<kube::client::Body>| {
        let (client, log) = (client.clone(), log.clone());
        async move {
            let method = request.method().clone();
            if !matches!(
                method,
                http::Method::GET | http::Method::HEAD | http::Method::OPTIONS
            ) {
                log.record(format!("{method} {}", request.uri()));
            }
            client.send(request).await
        }
    });
    kube::Client::new(service, namespace)
}

/// `Api<K>` in the test's namespace.
pub fn api<K>(env: &TestEnv) -> Api<K>
where
    K: Resource<Scope = NamespaceResourceScope>,
    K::DynamicType: Default,
{
    env.namespaced()
}

/// Waits until no sidecar update stream is open.
pub async fn eventually_zero_streams(metrics: &Metrics) {
    eventually("every sidecar stream to close", REACT, || {
        let open = metrics.sidecar_streams();
        async move { (open == 0).then_some(()) }
    })
    .await;
}
