//! Two operators in one namespace, with short leader election timings: exactly one reconciles;
//! when it dies the other takes over after the Lease expires, and when it stops gracefully (and
//! releases the Lease) the other takes over within about one retry period.

use crate::support::{REACT, WriteLog, api, env_with_crds, recording_writes, wait_ready};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tandem_crds::Component;
use tandem_envtest::{TestEnv, eventually};
use tandem_operator::Operator;
use tandem_operator::admin::Readiness;
use tandem_operator::leader::{LEASE_NAME, LeaderElection, Timings};
use tandem_operator::metrics::Metrics;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const TIMINGS: Timings = Timings {
    lease_duration: Duration::from_secs(3),
    renew_deadline: Duration::from_secs(2),
    retry_period: Duration::from_millis(500),
};

/// Scheduling and apiserver latency on a busy machine.
const SLACK: Duration = Duration::from_millis(1500);

/// One operator replica running in-process with leader election.
struct Replica {
    identity: String,
    metrics: Arc<Metrics>,
    readiness: Readiness,
    writes: WriteLog,
    /// While set, this replica's requests about Leases fail (cut off from the apiserver).
    partitioned: Arc<AtomicBool>,
    shutdown: CancellationToken,
    task: JoinHandle<tandem_operator::Result<()>>,
}

impl Replica {
    fn start(env: &TestEnv, identity: &str) -> Replica {
        let writes = WriteLog::default();
        let partitioned = Arc::new(AtomicBool::new(false));
        let client = failing_leases(env.client(), Arc::clone(&partitioned));
        let client = recording_writes(client, writes.clone());
        let election = LeaderElection::new(
            client.clone(),
            env.namespace(),
            LEASE_NAME,
            identity,
            TIMINGS,
        );
        let operator = Operator::new(client, Some(env.namespace().to_owned()))
            .expect("operator")
            .with_leader_election(election);
        let (metrics, readiness) = (operator.metrics(), operator.readiness());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(operator.run(shutdown.clone()));
        Replica {
            identity: identity.to_owned(),
            metrics,
            readiness,
            writes,
            partitioned,
            shutdown,
            task,
        }
    }

    fn leads(&self) -> bool {
        self.metrics.is_leader()
    }

    /// Writes this replica made to Components (their status).
    fn component_writes(&self) -> Vec<String> {
        let writes = self.writes.writes();
        writes
            .into_iter()
            .filter(|w| w.contains("/components/"))
            .collect()
    }

    /// A crash: the task is dropped mid-flight, nothing is released.
    async fn kill(self) {
        self.task.abort();
        let aborted = self.task.await;
        assert!(aborted.is_err_and(|e| e.is_cancelled()), "aborted");
    }

    /// A graceful stop: controllers stop, then the Lease is released.
    async fn stop(self) {
        self.shutdown.cancel();
        let outcome = tokio::time::timeout(REACT, self.task)
            .await
            .expect("the operator stops in time")
            .expect("the operator task did not panic");
        outcome.expect("a clean stop");
    }
}

/// `client`, except that requests about Leases fail while `partitioned` is set.
fn failing_leases(client: kube::Client, partitioned: Arc<AtomicBool>) -> kube::Client {
    type BoxError = Box<dyn std::error::Error + Send + Sync>;
    let namespace = client.default_namespace().to_owned();
    let service = tower::service_fn(move |request: http::Request<kube::client::Body>| {
        let (client, partitioned) = (client.clone(), Arc::clone(&partitioned));
        async move {
            let cut =
                partitioned.load(Ordering::SeqCst) && request.uri().path().contains("/leases");
            if cut {
                return Err::<_, BoxError>(Box::new(std::io::Error::other("partitioned")));
            }
            client.send(request).await.map_err(BoxError::from)
        }
    });
    kube::Client::new(service, namespace)
}

async fn holder(env: &TestEnv) -> Option<String> {
    let lease = api::<Lease>(env).get_opt(LEASE_NAME).await.ok()??;
    lease.spec?.holder_identity
}

/// Waits until exactly one of `replicas` leads, by its own flag and by the Lease; returns its
/// index.
async fn one_leader(env: &TestEnv, replicas: &[&Replica]) -> usize {
    eventually("exactly one leader", REACT, || async {
        let leading: Vec<usize> = (0..replicas.len())
            .filter(|&i| replicas[i].leads())
            .collect();
        let [leader] = leading[..] else { return None };
        let held = holder(env).await?;
        (held == replicas[leader].identity).then_some(leader)
    })
    .await
}

/// Waits until `replica` leads; returns how long that took.
async fn takes_over(env: &TestEnv, replica: &Replica, within: Duration) -> Duration {
    let started = Instant::now();
    eventually(&format!("{} to lead", replica.identity), within, || async {
        let held = holder(env).await?;
        (replica.leads() && held == replica.identity).then_some(())
    })
    .await;
    started.elapsed()
}

fn component(name: &str) -> String {
    format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {{name: {name}}}\nspec: {{type: state.in-memory, version: v1}}\n"
    )
}

#[tokio::test]
async fn one_of_two_leads_and_the_other_takes_over_when_it_dies() {
    let env = env_with_crds().await;
    let a = Replica::start(&env, "replica-a");
    let b = Replica::start(&env, "replica-b");
    let leader = one_leader(&env, &[&a, &b]).await;
    let (leader, follower) = if leader == 0 { (a, b) } else { (b, a) };
    eprintln!("{} leads", leader.identity);
    // Both serve their admin port as ready: the follower has nothing to wait for.
    eventually("both ready", REACT, || async {
        (leader.readiness.is_ready() && follower.readiness.is_ready()).then_some(())
    })
    .await;

    env.kubectl_apply(&component("first"))
        .await
        .expect("kubectl apply");
    let components = api::<Component>(&env);
    wait_ready(&components, "first", "True", "Valid").await;
    assert!(
        !leader.component_writes().is_empty(),
        "the leader wrote the status"
    );
    assert_eq!(
        follower.component_writes(),
        Vec::<String>::new(),
        "the follower writes no status"
    );
    assert!(!follower.leads(), "still one leader");
    assert_eq!(
        follower.metrics.reconciles("component"),
        0,
        "the follower reconciles nothing"
    );

    let killed = Instant::now();
    leader.kill().await;
    let within = TIMINGS.lease_duration + TIMINGS.retry_period + SLACK;
    let took = takes_over(&env, &follower, within).await;
    eprintln!(
        "takeover after the leader died: {took:?} (lease {:?}, retry {:?})",
        TIMINGS.lease_duration, TIMINGS.retry_period
    );
    // Not before the dead leader's Lease ran out.
    assert!(
        killed.elapsed() >= TIMINGS.lease_duration - TIMINGS.retry_period,
        "{:?}",
        killed.elapsed()
    );

    // The new leader reconciles.
    env.kubectl_apply(&component("second"))
        .await
        .expect("kubectl apply");
    wait_ready(&components, "second", "True", "Valid").await;
    assert!(
        !follower.component_writes().is_empty(),
        "the new leader writes"
    );
    follower.stop().await;
    assert_eq!(holder(&env).await, None, "released on a graceful stop");
}

#[tokio::test]
async fn a_graceful_stop_hands_over_within_a_retry_period() {
    let env = env_with_crds().await;
    let a = Replica::start(&env, "replica-a");
    let leader = one_leader(&env, &[&a]).await;
    assert_eq!(leader, 0);
    let b = Replica::start(&env, "replica-b");
    // The leader is ready once its caches have synced, the follower at once.
    eventually("both ready", REACT, || async {
        (a.readiness.is_ready() && b.readiness.is_ready()).then_some(())
    })
    .await;
    assert!(!b.leads(), "a held Lease is not taken");
    assert_eq!(holder(&env).await.as_deref(), Some("replica-a"));

    let stopping = Instant::now();
    a.stop().await;
    let stopped = stopping.elapsed();
    let took = takes_over(&env, &b, TIMINGS.retry_period + SLACK).await;
    eprintln!(
        "graceful stop took {stopped:?}; takeover {took:?} after it (retry {:?})",
        TIMINGS.retry_period
    );
    let lease = api::<Lease>(&env).get(LEASE_NAME).await.expect("the Lease");
    let transitions = lease.spec.and_then(|spec| spec.lease_transitions);
    assert_eq!(transitions, Some(1), "one change of holder");

    // The new leader reconciles.
    env.kubectl_apply(&component("after-handover"))
        .await
        .expect("kubectl apply");
    wait_ready(&api::<Component>(&env), "after-handover", "True", "Valid").await;
    b.stop().await;
}

#[tokio::test]
async fn a_leader_that_finds_the_lease_taken_stops_its_controllers_at_once() {
    let env = env_with_crds().await;
    let a = Replica::start(&env, "replica-a");
    one_leader(&env, &[&a]).await;
    // Someone else writes itself in as holder (as after a partition that outlasted the Lease).
    let leases = api::<Lease>(&env);
    let mut lease = leases.get(LEASE_NAME).await.expect("the Lease");
    let spec = lease.spec.get_or_insert_with(Default::default);
    spec.holder_identity = Some("intruder".into());
    spec.renew_time = Some(MicroTime(Timestamp::now()));
    let taken = Instant::now();
    leases
        .replace(LEASE_NAME, &PostParams::default(), &lease)
        .await
        .expect("replace the Lease");
    eventually(
        "the old leader to step down",
        TIMINGS.retry_period + SLACK,
        || async { (!a.leads()).then_some(()) },
    )
    .await;
    eprintln!(
        "stepped down {:?} after the Lease was taken",
        taken.elapsed()
    );
    // The intruder never renews: once its Lease runs out, the replica leads again.
    let took = takes_over(
        &env,
        &a,
        TIMINGS.lease_duration + TIMINGS.retry_period + SLACK,
    )
    .await;
    eprintln!("leading again {took:?} after stepping down");
    env.kubectl_apply(&component("again"))
        .await
        .expect("kubectl apply");
    wait_ready(&api::<Component>(&env), "again", "True", "Valid").await;
    a.stop().await;
}

#[tokio::test]
async fn a_leader_that_cannot_renew_steps_down_before_its_lease_expires() {
    let env = env_with_crds().await;
    let a = Replica::start(&env, "replica-a");
    one_leader(&env, &[&a]).await;
    let b = Replica::start(&env, "replica-b");
    eventually("the follower ready", REACT, || async {
        b.readiness.is_ready().then_some(())
    })
    .await;

    let cut = Instant::now();
    a.partitioned.store(true, Ordering::SeqCst);
    // Its last renewal was at most a retry period before the cut; others may take over one
    // lease duration after it, so it must have stopped by then.
    eventually(
        "the cut-off leader to step down",
        TIMINGS.lease_duration,
        || async { (!a.leads()).then_some(()) },
    )
    .await;
    let stepped_down = cut.elapsed();
    let took = takes_over(
        &env,
        &b,
        TIMINGS.lease_duration + TIMINGS.retry_period + SLACK,
    )
    .await;
    eprintln!(
        "cut off: stepped down after {stepped_down:?} (renew deadline {:?}); the other led {:?} later",
        TIMINGS.renew_deadline, took
    );
    assert!(
        stepped_down >= TIMINGS.renew_deadline - TIMINGS.retry_period,
        "{stepped_down:?}"
    );
    assert!(!a.leads(), "never two leaders");

    // Back in touch, it stays a follower: the Lease is held.
    a.partitioned.store(false, Ordering::SeqCst);
    tokio::time::sleep(TIMINGS.retry_period * 3).await;
    assert!(!a.leads() && b.leads());
    env.kubectl_apply(&component("after-partition"))
        .await
        .expect("kubectl apply");
    wait_ready(&api::<Component>(&env), "after-partition", "True", "Valid").await;
    assert!(!a.leads() && b.leads());
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_leader_stopped_while_its_caches_sync_stops_at_once() {
    let env = env_with_crds().await;
    let a = Replica::start(&env, "replica-a");
    one_leader(&env, &[&a]).await;
    let stopping = Instant::now();
    a.stop().await;
    let took = stopping.elapsed();
    eprintln!("stopped {took:?} after leading");
    assert!(took < SLACK * 2, "{took:?}");
    assert_eq!(holder(&env).await, None, "released");
}
