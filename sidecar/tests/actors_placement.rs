//! Placement between several real sidecars sharing an actor state store (the embedded SQLite
//! one in a shared data directory, or a real Redis or PostgreSQL server): turn-based counters
//! stay exact across hosts, hosts come and go (added, SIGTERMed, SIGKILLed, restarted) without
//! an actor ever running on two hosts at once, state survives failover, and reminders survive
//! every sidecar restarting.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tandem_crds::Component;
use tandem_sidecar::testing::actor_app::{ActorApp, ActorLog};
use tandem_sidecar::testing::sidecar::{Sidecar, SidecarBuilder};
use tandem_sidecar::testing::{PostgresServer, RedisServer};

const BIN: &str = env!("CARGO_BIN_EXE_tandem-sidecar");
const CONFIG: &str =
    r#"{"entities":["Counter"],"actorIdleTimeout":"1h","drainOngoingCallTimeout":"5s"}"#;

fn client() -> reqwest::Client {
    tandem_sidecar::http_client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

struct Host {
    sidecar: Sidecar,
    _app: ActorApp,
}

/// Where the hosts keep actor state, placement and reminders.
struct Store {
    dir: tempfile::TempDir,
    /// `None`: the embedded SQLite store in the shared data directory.
    resources: Option<std::path::PathBuf>,
}

impl Store {
    fn embedded() -> Store {
        Store {
            dir: tempfile::tempdir().expect("tempdir"),
            resources: None,
        }
    }

    /// `component` as the only component, with `actorStateStore: "true"`.
    fn external(component: Component) -> Store {
        let dir = tempfile::tempdir().expect("tempdir");
        let res = dir.path().join("res");
        std::fs::create_dir_all(&res).expect("resources dir");
        let yaml = serde_norway::to_string(&component.with_metadata("actorStateStore", "true"))
            .expect("manifest");
        std::fs::write(res.join("actorstore.yaml"), yaml).expect("write component");
        Store {
            dir,
            resources: Some(res),
        }
    }

    fn redis(server: &RedisServer) -> Store {
        Store::external(
            Component::test("actorstore", "state.redis").with_metadata("redisHost", &server.addr()),
        )
    }

    fn postgres(server: &PostgresServer) -> Store {
        Store::external(
            Component::test("actorstore", "state.postgresql")
                .with_metadata("connectionString", &server.connection_string()),
        )
    }

    fn sidecar(&self, app_id: &str) -> SidecarBuilder {
        let b = SidecarBuilder::new(BIN, app_id, self.dir.path());
        match &self.resources {
            Some(res) => b.resources(res),
            None => b,
        }
    }
}

async fn host(store: &Store, label: &str, log: &Arc<ActorLog>) -> Host {
    let app = ActorApp::start(label, CONFIG, log.clone()).await;
    let sidecar = store.sidecar("counter").app_port(app.port).start();
    app.set_sidecar(&sidecar.url(""));
    sidecar.wait_ready(Duration::from_secs(30));
    Host { sidecar, _app: app }
}

async fn increment(url: &str, hold_ms: u64) -> Result<u64, String> {
    let r = client()
        .post(url)
        .body(hold_ms.to_string())
        .send()
        .await
        .map_err(|e| {
            // A refused connection never reached a sidecar: nothing ran.
            if e.is_connect() {
                format!("refused: {e}")
            } else {
                e.to_string()
            }
        })?;
    let status = r.status().as_u16();
    let body = r.text().await.map_err(|e| e.to_string())?;
    match status {
        200 => body.trim().parse().map_err(|e| format!("{e}: {body}")),
        _ => Err(format!("{status}: {body}")),
    }
}

async fn count(sc: &Sidecar, id: &str) -> u64 {
    let r = client()
        .get(sc.url(&format!("/v1.0/actors/Counter/{id}/state/count")))
        .send()
        .await
        .expect("get");
    match r.status().as_u16() {
        204 => 0,
        _ => r
            .text()
            .await
            .expect("body")
            .trim()
            .parse()
            .expect("number"),
    }
}

/// Runs `calls` increments over `ids` ids from `urls` (base URLs), `parallel` at a time, each
/// holding its actor for 0–20 ms. Returns successes per id and failures per (id, url index).
async fn load(
    urls: Vec<String>,
    ids: usize,
    calls: usize,
    parallel: usize,
) -> (HashMap<String, u64>, HashMap<(String, usize), u64>) {
    let next = Arc::new(AtomicU64::new(0));
    let ok = Arc::new(std::sync::Mutex::new(HashMap::<String, u64>::new()));
    let failed = Arc::new(std::sync::Mutex::new(HashMap::<(String, usize), u64>::new()));
    let workers: Vec<_> = (0..parallel)
        .map(|w| {
            let (next, ok, failed, urls) = (next.clone(), ok.clone(), failed.clone(), urls.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    if i >= calls {
                        return;
                    }
                    let id = format!("c{}", (i * 7 + w) % ids);
                    let url = format!(
                        "{}/v1.0/actors/Counter/{id}/method/increment",
                        urls[i % urls.len()]
                    );
                    let started = chrono_now();
                    let outcome = increment(&url, (i % 21) as u64).await;
                    if outcome.is_err() {
                        eprintln!("call {i} to {url} from {started} to {}", chrono_now());
                    }
                    match &outcome {
                        Ok(_) => *ok.lock().expect("map").entry(id).or_insert(0) += 1,
                        Err(e) if e.starts_with("refused") => continue,
                        Err(e) => {
                            eprintln!("increment {id} failed: {e}");
                            *failed
                                .lock()
                                .expect("map")
                                .entry((id, i % urls.len()))
                                .or_insert(0) += 1;
                        }
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.await.expect("worker");
    }
    let ok = ok.lock().expect("map").clone();
    let failed = failed.lock().expect("map").clone();
    (ok, failed)
}

fn chrono_now() -> String {
    format!(
        "{:?}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() % 100_000)
            .unwrap_or(0)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counters_stay_exact_while_hosts_join_and_leave() {
    graceful_churn(&Store::embedded()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counters_stay_exact_with_redis_as_the_actor_store() {
    let redis = RedisServer::start();
    graceful_churn(&Store::redis(&redis)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counters_stay_exact_with_postgres_as_the_actor_store() {
    let postgres = PostgresServer::start();
    graceful_churn(&Store::postgres(&postgres)).await;
}

async fn graceful_churn(store: &Store) {
    let log = Arc::new(ActorLog::default());
    let mut hosts = vec![host(store, "h1", &log).await, host(store, "h2", &log).await];
    let caller = store.sidecar("caller").start();
    caller.wait_ready(Duration::from_secs(30));
    let urls = vec![
        caller.url(""),
        hosts[0].sidecar.url(""),
        hosts[1].sidecar.url(""),
    ];
    // Churn while the load runs: a host joins, then the first one leaves gracefully (SIGTERM).
    let load = tokio::spawn(load(urls, 24, 600, 12));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    hosts.push(host(store, "h3", &log).await);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut leaving = hosts.remove(1);
    leaving.sidecar.signal(nix::sys::signal::Signal::SIGTERM);
    leaving.sidecar.wait_exit(Duration::from_secs(30));
    let (ok, failed) = load.await.expect("load");
    let calls: u64 = ok.values().sum();
    eprintln!(
        "graceful churn: {calls} increments, failures {failed:?}, overlaps {}",
        log.overlaps()
    );
    // Graceful churn loses nothing: calls through the sidecars that stayed all succeeded, and
    // counts are exact. A call sent to the leaving sidecar's own API on a keep-alive connection
    // it was closing may fail on the client's side (ordinary HTTP); such a call ran at most once.
    if !failed.keys().all(|(_, url)| *url == 2) {
        for (name, log) in [
            ("caller", caller.log()),
            ("h1", hosts[0].sidecar.log()),
            ("h3", hosts[1].sidecar.log()),
            ("h2", leaving.sidecar.log()),
        ] {
            for line in log
                .lines()
                .filter(|l| l.contains("placement") || l.contains("shutting") || l.contains("WARN"))
            {
                eprintln!("{name}: {line}");
            }
        }
    }
    assert!(failed.keys().all(|(_, url)| *url == 2), "{failed:?}");
    for (id, n) in &ok {
        let unsure: u64 = failed
            .iter()
            .filter(|((i, _), _)| i == id)
            .map(|(_, n)| n)
            .sum();
        let stored = count(&hosts[0].sidecar, id).await;
        assert!(
            stored >= *n && stored <= n + unsure,
            "{id}: stored {stored}, {n} succeeded, {unsure} unsure"
        );
    }
    assert_eq!(log.overlaps(), 0, "an actor ran twice at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_host_fails_over_with_state_and_reminders() {
    failover(&Store::embedded()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failover_with_redis_as_the_actor_store() {
    let redis = RedisServer::start();
    failover(&Store::redis(&redis)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failover_with_postgres_as_the_actor_store() {
    let postgres = PostgresServer::start();
    failover(&Store::postgres(&postgres)).await;
}

async fn failover(store: &Store) {
    let log = Arc::new(ActorLog::default());
    let a = host(store, "a", &log).await;
    let b = host(store, "b", &log).await;
    // Ids on both hosts; each gets three increments and a periodic reminder.
    for i in 0..8 {
        for _ in 0..3 {
            increment(
                &b.sidecar
                    .url(&format!("/v1.0/actors/Counter/f{i}/method/increment")),
                0,
            )
            .await
            .expect("increment");
        }
        let r = client()
            .put(
                b.sidecar
                    .url(&format!("/v1.0/actors/Counter/f{i}/reminders/beat")),
            )
            .body(r#"{"period":"300ms"}"#)
            .send()
            .await
            .expect("reminder");
        assert_eq!(r.status().as_u16(), 204);
    }
    let mut a = a;
    a.sidecar.signal(nix::sys::signal::Signal::SIGKILL);
    a.sidecar.wait_exit(Duration::from_secs(10));
    let killed = Instant::now();
    // Every actor answers on b with its state intact (the callers wait out the lease).
    for i in 0..8 {
        let n = increment(
            &b.sidecar
                .url(&format!("/v1.0/actors/Counter/f{i}/method/increment")),
            0,
        )
        .await
        .expect("after failover");
        assert_eq!(n, 4, "f{i}");
    }
    eprintln!("failover took {:?}", killed.elapsed());
    assert!(killed.elapsed() < Duration::from_secs(12));
    // Every reminder fires again after the kill (on b).
    let before = log.reminder_count("beat");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let fired: std::collections::HashSet<String> = log
            .reminders
            .lock()
            .expect("log")
            .iter()
            .skip(before)
            .map(|(id, _, _)| id.clone())
            .collect();
        if fired.len() == 8 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "reminders after failover fired for {fired:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(log.overlaps(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reminders_survive_every_sidecar_restarting() {
    let store = Store::embedded();
    let log = Arc::new(ActorLog::default());
    let hosts = vec![host(&store, "a", &log).await, host(&store, "b", &log).await];
    for i in 0..6 {
        let r = client()
            .put(
                hosts[0]
                    .sidecar
                    .url(&format!("/v1.0/actors/Counter/s{i}/reminders/durable")),
            )
            .body(r#"{"dueTime":"4s","period":"500ms"}"#)
            .send()
            .await
            .expect("reminder");
        assert_eq!(r.status().as_u16(), 204);
    }
    for mut h in hosts {
        h.sidecar.signal(nix::sys::signal::Signal::SIGTERM);
        h.sidecar.wait_exit(Duration::from_secs(30));
    }
    assert_eq!(
        log.reminder_count("durable"),
        0,
        "not due before the restart"
    );
    let _hosts = [host(&store, "c", &log).await, host(&store, "d", &log).await];
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let fired: std::collections::HashSet<String> = log
            .reminders
            .lock()
            .expect("log")
            .iter()
            .map(|(id, _, _)| id.clone())
            .collect();
        if fired.len() == 6 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "reminders fired after the restart: {fired:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Ids whose calls since `from` ran on `label` (from the shared log).
fn ran_on(log: &ActorLog, label: &str, from: Instant) -> std::collections::BTreeSet<String> {
    log.spans
        .lock()
        .expect("log")
        .iter()
        .filter(|s| s.host == label && s.start >= from)
        .map(|s| s.actor_id.clone())
        .collect()
}

/// Increments ids h0..h7 once each through `via`, checking each count against `expected`.
async fn increment_all(via: &Sidecar, expected: &mut [u64]) {
    for (i, n) in expected.iter_mut().enumerate() {
        let url = via.url(&format!("/v1.0/actors/Counter/h{i}/method/increment"));
        let got = increment(&url, 0).await.expect("increment");
        *n += 1;
        assert_eq!(got, *n, "h{i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unhealthy_app_gives_its_actors_up_and_takes_them_back() {
    let store = Store::embedded();
    let log = Arc::new(ActorLog::default());
    let mut hosts = Vec::new();
    for label in ["a", "b"] {
        let app = ActorApp::start(label, CONFIG, log.clone()).await;
        let sidecar = store
            .sidecar("counter")
            .app_port(app.port)
            .arg("--enable-app-health-check")
            .arg("--app-health-check-path")
            .arg("/healthz")
            .arg("--app-health-probe-interval")
            .arg("1")
            .arg("--app-health-threshold")
            .arg("1")
            .start();
        app.set_sidecar(&sidecar.url(""));
        sidecar.wait_ready(Duration::from_secs(30));
        hosts.push((app, sidecar));
    }
    let (app_a, _) = &hosts[0];
    let (_, b) = &hosts[1];
    let mut expected = vec![0_u64; 8];
    let start = Instant::now();
    increment_all(b, &mut expected).await;
    assert!(
        !ran_on(&log, "a", start).is_empty(),
        "some of the 8 ids should be placed on a"
    );

    // a's app fails its health checks: its actors move to b, with their state.
    app_a.set_healthy(false);
    let unhealthy = Instant::now();
    let moved = loop {
        let pass = Instant::now();
        increment_all(b, &mut expected).await;
        if ran_on(&log, "a", pass).is_empty() {
            break pass.duration_since(unhealthy);
        }
        assert!(
            unhealthy.elapsed() < Duration::from_secs(20),
            "a still runs actors while its app is unhealthy"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let settled = Instant::now();
    for _ in 0..3 {
        increment_all(b, &mut expected).await;
    }
    assert!(
        ran_on(&log, "a", settled).is_empty(),
        "a ran actors while unhealthy"
    );

    // Healthy again: a takes its share back.
    app_a.set_healthy(true);
    let healthy = Instant::now();
    let back = loop {
        let pass = Instant::now();
        increment_all(b, &mut expected).await;
        if !ran_on(&log, "a", pass).is_empty() {
            break healthy.elapsed();
        }
        assert!(
            healthy.elapsed() < Duration::from_secs(20),
            "a never hosted actors again after its app recovered"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    eprintln!(
        "app health and placement: actors left the unhealthy host within {moved:?}, came back {back:?} after it recovered; counts {expected:?}"
    );
    assert_eq!(log.overlaps(), 0);
}
