//! Actors on the one-machine Kubernetes cluster (`tandem_e2e::one_machine`: real kube-apiserver,
//! kube-controller-manager, the chart's operator and injector, pods as processes in network
//! namespaces, real Redis as the actor state store). Deployment `counter` hosts actor type
//! `Counter` (`tandem-e2e-app --actor-type Counter`); four callers drive `add` on 120 ids through
//! the sidecar of a `caller` pod while `counter` is scaled 3 → 5 → 2 and then one of its pods is
//! killed (deleted with grace 0: SIGTERM and SIGKILL at once). Each `add` reads, holds 15 ms,
//! writes: if an id ever ran on two pods at once, or an update were lost, two calls would return
//! the same count. The test asserts no count ever repeats, no call failed except around the kill,
//! every id untouched by a failure has counts exactly 1..=n, the calls moved to the new pods and
//! off the removed ones, and reminders registered at the start kept firing to the end.
//!
//! Needs what `kubernetes_cluster.rs` needs (root, `KUBEBUILDER_ASSETS`, `TANDEM_TOOLS`).

#![allow(clippy::unwrap_used, reason = "a test fails on what it unwraps")]

#[allow(
    dead_code,
    reason = "this test uses part of the shared cluster helpers"
)]
mod cluster_support;

use cluster_support::{Logs, ROLLOUT, apply, deployment_with, kubectl, namespace, ready_pods};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tandem_e2e::one_machine::OneMachineCluster;
use tandem_e2e::sidecar_http::SidecarClient;
use tandem_envtest::{TestEnv, eventually};
use tandem_testkit::RedisServer;

const IDS: usize = 120;
/// Ids that also carry a reminder (every second).
const REMINDED: usize = 8;
const CALLERS: usize = 4;
/// Successful calls each stage needs before the next scale event.
const PER_STAGE: usize = 250;
/// The stage in which a pod is killed (failures are allowed only there).
const KILL_STAGE: usize = 6;

/// One `add` as the caller saw it.
#[derive(Debug, Clone)]
struct Call {
    stage: usize,
    id: usize,
    status: u16,
    body: Value,
}

fn manifests(redis: &str, replicas: u32) -> String {
    format!(
        r#"
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {{name: actorstore}}
spec:
  type: state.redis
  version: v1
  metadata:
    - {{name: redisHost, value: "{redis}"}}
    - {{name: actorStateStore, value: "true"}}
---
{}
---
{}
"#,
        deployment("counter", replicas, &["--actor-type", "Counter"]),
        deployment("caller", 1, &[]),
    )
}

/// A Deployment of the e2e app; actor hosts get 20 s to hand their actors off.
fn deployment(app: &str, replicas: u32, extra: &[&str]) -> String {
    let mut args = vec!["--port", "8080", "--drain-seconds", "3"];
    args.extend_from_slice(extra);
    deployment_with(app, replicas, 20, &args)
}

/// Callers that `add` on ids round-robin until stopped, recording every call under the stage
/// current when it was sent.
struct Traffic {
    calls: Arc<Mutex<Vec<Call>>>,
    stage: Arc<Mutex<usize>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Traffic {
    fn start(http: &SidecarClient, base: &str) -> Traffic {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let stage = Arc::new(Mutex::new(1));
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..CALLERS)
            .map(|caller| {
                let (http, base) = (http.clone(), base.to_owned());
                let (calls, stage, stop) = (calls.clone(), stage.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut n = caller * (IDS / CALLERS);
                    while !stop.load(Ordering::Relaxed) {
                        let id = n % IDS;
                        n += 1;
                        let now = *stage.lock().unwrap();
                        let url = format!("{base}/v1.0/actors/Counter/c{id}/method/add");
                        let (status, body) = http.call(reqwest::Method::PUT, &url, None).await;
                        calls.lock().unwrap().push(Call {
                            stage: now,
                            id,
                            status,
                            body,
                        });
                    }
                })
            })
            .collect();
        Traffic {
            calls,
            stage,
            stop,
            tasks,
        }
    }

    fn ok_in(&self, stage: usize) -> usize {
        let calls = self.calls.lock().unwrap();
        calls
            .iter()
            .filter(|c| c.stage == stage && c.status == 200)
            .count()
    }

    /// Waits for `PER_STAGE` successful calls in the current stage, then moves to the next.
    async fn finish_stage(&self) {
        let stage = *self.stage.lock().unwrap();
        let deadline = Instant::now() + ROLLOUT;
        while self.ok_in(stage) < PER_STAGE {
            assert!(
                Instant::now() < deadline,
                "stage {stage}: only {} calls succeeded",
                self.ok_in(stage)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        *self.stage.lock().unwrap() = stage + 1;
    }

    async fn stop(self) -> Vec<Call> {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.unwrap();
        }
        Arc::try_unwrap(self.calls).unwrap().into_inner().unwrap()
    }
}

/// Waits until `app` has exactly `count` pods, terminating ones included.
async fn all_pods_gone_but(env: &TestEnv, ns: &str, app: &str, count: usize) {
    let pods: Api<Pod> = Api::namespaced(env.client(), ns);
    let what = format!("only {count} pods of {app} left");
    eventually(&what, ROLLOUT, || async {
        let listed = pods
            .list(&ListParams::default().labels(&format!("app={app}")))
            .await
            .ok()?;
        (listed.items.len() == count).then_some(())
    })
    .await;
}

fn pods_of(calls: &[Call], stage: usize) -> BTreeSet<String> {
    calls
        .iter()
        .filter(|c| c.stage == stage && c.status == 200)
        .filter_map(|c| c.body["pod"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actors_stay_single_while_their_hosts_scale_3_5_2() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the node agent needs root for network namespaces"
    );
    let env = TestEnv::start().await;
    let cluster = OneMachineCluster::start(&env)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let ns = namespace(&env, "actors").await;
    let address = cluster.address();
    let redis = tokio::task::spawn_blocking(move || RedisServer::start_on(address))
        .await
        .unwrap();
    let _logs = Logs {
        cluster: &cluster,
        namespace: ns.clone(),
    };
    let started = Instant::now();
    apply(&env, &ns, &manifests(&redis.addr(), 3)).await;
    let first_pods = ready_pods(&env, &ns, "counter", 3).await;
    // Reminders are registered through a hosting app's sidecar, as Dapr requires.
    let host_base = format!("http://{}:3500", first_pods[0].1);
    let first: BTreeSet<String> = first_pods.into_iter().map(|(name, _)| name).collect();
    let (_, caller_ip) = ready_pods(&env, &ns, "caller", 1).await.remove(0);
    let base = format!("http://{caller_ip}:3500");
    let http = SidecarClient::new();
    for id in 0..REMINDED {
        let url = format!("{host_base}/v1.0/actors/Counter/c{id}/reminders/tick");
        let body = serde_json::json!({"dueTime": "1s", "period": "1s"});
        let (status, answer) = http.call(reqwest::Method::PUT, &url, Some(body)).await;
        assert!(
            status == 204 || status == 200,
            "register reminder on c{id}: {status} {answer}"
        );
    }
    let traffic = Traffic::start(&http, &base);

    traffic.finish_stage().await; // stage 1: three hosts
    kubectl(&env, &ns, &["scale", "deployment/counter", "--replicas=5"]).await;
    let five: BTreeSet<String> = ready_pods(&env, &ns, "counter", 5)
        .await
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    traffic.finish_stage().await; // stage 2: five hosts (the ring has moved)
    traffic.finish_stage().await; // stage 3: still five, shards settled on the new hosts
    kubectl(&env, &ns, &["scale", "deployment/counter", "--replicas=2"]).await;
    let two: BTreeSet<String> = ready_pods(&env, &ns, "counter", 2)
        .await
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    traffic.finish_stage().await; // stage 4: three hosts handing their actors off
    all_pods_gone_but(&env, &ns, "counter", 2).await;
    let fired_before = reminders_fired(&http, &base).await;
    traffic.finish_stage().await; // stage 5: two hosts
    let victim = two.iter().next().unwrap().clone();
    kubectl(
        &env,
        &ns,
        &["delete", "pod", &victim, "--grace-period=0", "--force"],
    )
    .await;
    traffic.finish_stage().await; // stage 6: one host killed, its actors fail over
    let after_kill: BTreeSet<String> = ready_pods(&env, &ns, "counter", 2)
        .await
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    traffic.finish_stage().await; // stage 7: the Deployment's replacement pod serves too
    let calls = traffic.stop().await;
    let fired_after = reminders_fired(&http, &base).await;

    let failed: Vec<&Call> = calls.iter().filter(|c| c.status != 200).collect();
    let mut counts: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
    for c in calls.iter().filter(|c| c.status == 200) {
        counts
            .entry(c.id)
            .or_default()
            .push(c.body["count"].as_u64().unwrap());
    }
    let per_stage: Vec<(usize, usize)> = (1..=7)
        .map(|s| (s, calls.iter().filter(|c| c.stage == s).count()))
        .collect();
    let failed_ids: BTreeSet<usize> = failed.iter().map(|c| c.id).collect();
    let mut repeats = 0;
    for (id, seen) in &mut counts {
        seen.sort_unstable();
        let distinct: BTreeSet<u64> = seen.iter().copied().collect();
        repeats += seen.len() - distinct.len();
        if !failed_ids.contains(id) {
            let expected: Vec<u64> = (1..=seen.len() as u64).collect();
            assert_eq!(*seen, expected, "id c{id}: each count once, 1..=n");
        }
    }
    eprintln!(
        "actors on the cluster: {} calls ({} ok, {} failed, all in stage {KILL_STAGE}: {}) over {} ids in {:.1} s; repeated counts {repeats}; per stage {:?}; pods answering: stage 1 {:?}, stage 3 {:?}, stage 5 {:?}, stage 7 {:?}; reminders fired before stage 5 {:?}, at the end {:?}",
        calls.len(),
        calls.len() - failed.len(),
        failed.len(),
        failed.iter().all(|c| c.stage == KILL_STAGE),
        counts.len(),
        started.elapsed().as_secs_f64(),
        per_stage,
        pods_of(&calls, 1),
        pods_of(&calls, 3),
        pods_of(&calls, 5),
        pods_of(&calls, 7),
        fired_before,
        fired_after,
    );
    assert_eq!(
        repeats, 0,
        "a repeated count is two activations or a lost update"
    );
    assert!(
        failed.iter().all(|c| c.stage == KILL_STAGE),
        "calls failed outside the kill: {failed:#?}"
    );
    for (id, (before, after)) in fired_before.iter().zip(&fired_after).enumerate() {
        assert!(
            after >= &(before + 3),
            "reminder on c{id} stopped firing: {before} before scale-in, {after} at the end"
        );
    }
    assert!(pods_of(&calls, 1).is_subset(&first));
    let new_hosts: BTreeSet<&String> = five.difference(&first).collect();
    assert!(
        pods_of(&calls, 3).iter().any(|p| new_hosts.contains(p)),
        "after 3 → 5 some actors must move to the new pods {new_hosts:?}"
    );
    assert!(
        pods_of(&calls, 5).is_subset(&two),
        "after 5 → 2 only the remaining pods {two:?} may answer"
    );
    assert!(
        !pods_of(&calls, 7).contains(&victim) && pods_of(&calls, 7).is_subset(&after_kill),
        "after the kill only {after_kill:?} may answer"
    );
}

/// How often each reminded id's reminder has fired (its `fired` state, read inside its turn).
async fn reminders_fired(http: &SidecarClient, base: &str) -> Vec<u64> {
    let mut fired = Vec::new();
    for id in 0..REMINDED {
        let url = format!("{base}/v1.0/actors/Counter/c{id}/method/fired");
        let (status, body) = http.call(reqwest::Method::PUT, &url, None).await;
        assert_eq!(status, 200, "fired on c{id}: {body}");
        fired.push(body["fired"].as_u64().unwrap());
    }
    fired
}
