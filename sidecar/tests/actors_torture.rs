//! The dual-activation torture test (issue 13's proof, standalone): thousands of calls over
//! hundreds of actor ids through several sidecars sharing the embedded SQLite actor store, each
//! call holding its actor for a pseudo-random 0–50 ms, while hosts are added, removed
//! (SIGTERM), SIGKILLed and restarted. Every call the app runs is logged as (host, id, start,
//! end); no two calls of one id may overlap, on one host or across hosts.
//!
//! Counters are checked exactly even though some calls fail on the client's side during a
//! failover: each call carries a unique op id and the actor stores the list of op ids it
//! applied (and `count`, its length) in one transaction. So per id: no op id twice, `count`
//! equals the list's length, every call answered 200 is in the list, every op in the list was
//! sent, and no call whose connection was refused (never reached a sidecar) is in it. Calls that
//! failed otherwise may or may not have applied; the test reports how many did.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tandem_sidecar::testing::actor_app::{ActorApp, ActorLog};
use tandem_sidecar::testing::sidecar::{Sidecar, SidecarBuilder};

const BIN: &str = env!("CARGO_BIN_EXE_tandem-sidecar");
const CONFIG: &str =
    r#"{"entities":["Counter"],"actorIdleTimeout":"1h","drainOngoingCallTimeout":"5s"}"#;
const IDS: u64 = 240;
const MIN_CALLS: u64 = 2_400;
const WORKERS: u64 = 32;

struct Host {
    label: String,
    sidecar: Sidecar,
    _app: ActorApp,
}

async fn host(dir: &std::path::Path, label: &str, log: &Arc<ActorLog>) -> Host {
    let app = ActorApp::start(label, CONFIG, log.clone()).await;
    let dir = dir.to_path_buf();
    let port = app.port;
    let sidecar = tokio::task::spawn_blocking(move || {
        let sc = SidecarBuilder::new(BIN, "torture", &dir)
            .app_port(port)
            .start();
        sc.wait_ready(Duration::from_secs(30));
        sc
    })
    .await
    .expect("start host");
    app.set_sidecar(&sidecar.url(""));
    Host {
        label: label.to_owned(),
        sidecar,
        _app: app,
    }
}

/// How one call ended, as the client saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Outcome {
    /// 200: applied exactly once.
    Applied,
    /// The connection was refused: no sidecar saw it, so it did not apply.
    Refused,
    /// Any other failure: it may or may not have applied.
    Unsure,
}

#[derive(Default)]
struct Ledger {
    /// (actor id, op id, outcome) per call.
    calls: std::sync::Mutex<Vec<(String, String, Outcome)>>,
}

/// Sends calls from `WORKERS` tasks, each to the next URL in `urls` (refreshed by the churn),
/// until `stop` is set and at least `MIN_CALLS` were made.
fn start_load(
    urls: Arc<std::sync::RwLock<Vec<String>>>,
    ledger: Arc<Ledger>,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let next = Arc::new(AtomicU64::new(0));
    let client = tandem_sidecar::http_client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    (0..WORKERS)
        .map(|_| {
            let (urls, ledger, stop, next, client) = (
                urls.clone(),
                ledger.clone(),
                stop.clone(),
                next.clone(),
                client.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if stop.load(Ordering::Relaxed) && i >= MIN_CALLS {
                        return;
                    }
                    // Spread calls over ids and sidecars; a Knuth hash gives the hold 0–50 ms.
                    let id = format!("t{}", (i * 7919) % IDS);
                    let hold = (i.wrapping_mul(2_654_435_761) >> 7) % 51;
                    let op = format!("op{i}");
                    let base = {
                        let urls = urls.read().expect("urls");
                        urls[(i as usize) % urls.len()].clone()
                    };
                    let sent = client
                        .put(format!("{base}/v1.0/actors/Counter/{id}/method/apply"))
                        .body(format!(r#"{{"op":"{op}","hold":{hold}}}"#))
                        .send()
                        .await;
                    let outcome = match sent {
                        Ok(r) if r.status().as_u16() == 200 => Outcome::Applied,
                        Ok(r) => {
                            let status = r.status();
                            eprintln!(
                                "{op} on {id} via {base}: {status} {}",
                                r.text().await.unwrap_or_default()
                            );
                            Outcome::Unsure
                        }
                        Err(e) if e.is_connect() => Outcome::Refused,
                        Err(e) => {
                            eprintln!("{op} on {id} via {base}: {e}");
                            Outcome::Unsure
                        }
                    };
                    ledger.calls.lock().expect("ledger").push((id, op, outcome));
                }
            })
        })
        .collect()
}

/// The (ops, count) an actor stored, read through `sc`: a sidecar of the actor's app (actor state
/// keys carry the app id, so a caller sidecar of another app would read nothing).
async fn stored(sc: &Sidecar, id: &str) -> (Vec<String>, u64) {
    let client = reqwest::Client::new();
    let get = |key: &'static str| {
        let url = sc.url(&format!("/v1.0/actors/Counter/{id}/state/{key}"));
        let client = client.clone();
        async move {
            let r = client.get(url).send().await.expect("state get");
            match r.status().as_u16() {
                204 => None,
                200 => Some(r.text().await.expect("state body")),
                s => panic!("state get of {id}/{key} answered {s}"),
            }
        }
    };
    let ops = get("ops")
        .await
        .map(|t| serde_json::from_str(&t).expect("ops list"))
        .unwrap_or_default();
    let count = get("count")
        .await
        .map(|t| t.trim().parse().expect("count"))
        .unwrap_or(0);
    (ops, count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_actor_runs_twice_at_once_while_hosts_churn() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(ActorLog::default());
    let mut hosts = Vec::new();
    for label in ["h1", "h2", "h3"] {
        hosts.push(host(dir.path(), label, &log).await);
    }
    let callers: Vec<Sidecar> = (0..2)
        .map(|_| {
            let sc = SidecarBuilder::new(BIN, "caller", dir.path()).start();
            sc.wait_ready(Duration::from_secs(30));
            sc
        })
        .collect();
    let live_urls = |hosts: &[Host]| {
        callers
            .iter()
            .map(|c| c.url(""))
            .chain(hosts.iter().map(|h| h.sidecar.url("")))
            .collect::<Vec<_>>()
    };
    let urls = Arc::new(std::sync::RwLock::new(live_urls(&hosts)));
    let (ledger, stop) = (
        Arc::new(Ledger::default()),
        Arc::new(AtomicBool::new(false)),
    );
    let workers = start_load(urls.clone(), ledger.clone(), stop.clone());

    // The churn: (what, host label). Kills and SIGTERMs leave at least two hosts up.
    let plan = [
        ("add", "h4"),
        ("sigterm", "h1"),
        ("sigkill", "h2"),
        ("restart", "h2"),
        ("add", "h5"),
        ("sigkill", "h3"),
        ("restart", "h3"),
        ("sigterm", "h4"),
    ];
    let mut events = 0;
    for (what, label) in plan {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        eprintln!(
            "[{:?}] churn: {what} {label} ({} calls so far)",
            started.elapsed(),
            ledger.calls.lock().expect("ledger").len()
        );
        match what {
            "add" | "restart" => {
                let h = host(dir.path(), &format!("{label}-{events}"), &log).await;
                hosts.push(h);
            }
            "sigterm" | "sigkill" => {
                let at = hosts
                    .iter()
                    .position(|h| h.label.starts_with(label))
                    .expect("a live host with that label");
                let mut gone = hosts.remove(at);
                // The callers stop using it first, as a load balancer would.
                *urls.write().expect("urls") = live_urls(&hosts);
                let sig = if what == "sigterm" {
                    nix::sys::signal::Signal::SIGTERM
                } else {
                    nix::sys::signal::Signal::SIGKILL
                };
                gone.sidecar.signal(sig);
                let exited = tokio::task::spawn_blocking(move || {
                    gone.sidecar.wait_exit(Duration::from_secs(30)).is_some()
                })
                .await
                .expect("wait exit");
                assert!(exited, "{label} did not exit after {what}");
            }
            _ => unreachable!("a churn step"),
        }
        *urls.write().expect("urls") = live_urls(&hosts);
        events += 1;
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.expect("load worker");
    }

    // Exact counters.
    let calls = ledger.calls.lock().expect("ledger").clone();
    let mut by_id: HashMap<String, Vec<(String, Outcome)>> = HashMap::new();
    for (id, op, outcome) in &calls {
        by_id
            .entry(id.clone())
            .or_default()
            .push((op.clone(), *outcome));
    }
    let mut tally: HashMap<Outcome, u64> = HashMap::new();
    let (mut unsure_applied, mut applied_total) = (0, 0);
    // Every broken promise, listed before any assertion so one run shows them all.
    let mut broken: Vec<String> = Vec::new();
    for (id, sent) in &by_id {
        let (ops, count) = stored(&hosts[0].sidecar, id).await;
        let distinct: HashSet<&String> = ops.iter().collect();
        if distinct.len() != ops.len() {
            broken.push(format!("{id}: an op applied twice: {ops:?}"));
        }
        if count != ops.len() as u64 {
            broken.push(format!("{id}: count {count}, {} ops stored", ops.len()));
        }
        let sent_ops: HashSet<&String> = sent.iter().map(|(op, _)| op).collect();
        for op in ops.iter().filter(|op| !sent_ops.contains(op)) {
            broken.push(format!("{id}: {op} applied but never sent"));
        }
        for (op, outcome) in sent {
            *tally.entry(*outcome).or_default() += 1;
            let stored = distinct.contains(op);
            match outcome {
                Outcome::Applied if !stored => {
                    broken.push(format!("{id}: {op} answered 200 but is not stored"))
                }
                Outcome::Refused if stored => {
                    broken.push(format!("{id}: {op} was refused but applied"))
                }
                Outcome::Unsure => unsure_applied += u64::from(stored),
                _ => {}
            }
        }
        applied_total += ops.len() as u64;
    }
    let overlaps = log.overlaps();
    let runs = log.spans.lock().expect("spans").len();
    eprintln!(
        "torture: {} calls over {} ids ({} answered 200, {} refused, {} unsure of which {unsure_applied} applied); \
         {applied_total} ops stored; {runs} app runs; {events} churn events; {overlaps} overlapping activations; {} broken counter promises; {:?}",
        calls.len(),
        by_id.len(),
        tally.get(&Outcome::Applied).copied().unwrap_or(0),
        tally.get(&Outcome::Refused).copied().unwrap_or(0),
        tally.get(&Outcome::Unsure).copied().unwrap_or(0),
        broken.len(),
        started.elapsed()
    );
    assert_eq!(overlaps, 0, "an actor ran twice at once");
    assert!(broken.is_empty(), "counters not exact: {broken:#?}");
    assert!(calls.len() as u64 >= MIN_CALLS);
    assert_eq!(by_id.len() as u64, IDS, "every id was called");
    assert_eq!(events, 8);
}
