//! Callers that keep invoking an app through its sidecar while the test changes the cluster. Each
//! call records when it started and ended and which pod answered, so the test can ask what
//! happened in each stage of the change (before, during, after) instead of counting how many
//! calls a given time allowed, which depends on the machine's speed.

use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tandem_e2e::sidecar_http::SidecarClient;
use tandem_envtest::eventually;

/// The pause between one caller's calls, so that the callers leave the machine some room.
const PAUSE: Duration = Duration::from_millis(20);

/// One call and its outcome.
#[derive(Clone, Debug)]
pub struct Call {
    pub started: Instant,
    pub ended: Instant,
    pub status: u16,
    /// The answering pod's name (empty when there is no answer).
    pub pod: String,
    pub answer: Value,
}

/// Callers POSTing `{"n": <call number>}` to one URL, each one call after another, until stopped.
pub struct Callers {
    running: Arc<AtomicBool>,
    calls: Vec<Arc<Mutex<Vec<Call>>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Callers {
    pub fn start(http: &SidecarClient, url: &str, count: usize) -> Callers {
        let running = Arc::new(AtomicBool::new(true));
        let calls: Vec<Arc<Mutex<Vec<Call>>>> = (0..count).map(|_| Arc::default()).collect();
        let tasks = calls
            .iter()
            .map(|calls| {
                let (running, calls) = (Arc::clone(&running), Arc::clone(calls));
                let (http, url) = (http.clone(), url.to_owned());
                tokio::spawn(async move {
                    for n in 0_u64.. {
                        if !running.load(Ordering::SeqCst) {
                            break;
                        }
                        let started = Instant::now();
                        let body = Some(json!({ "n": n }));
                        let (status, answer) = http.call(reqwest::Method::POST, &url, body).await;
                        let pod = answer["pod"].as_str().unwrap_or_default().to_owned();
                        let call = Call {
                            started,
                            ended: Instant::now(),
                            status,
                            pod,
                            answer,
                        };
                        calls.lock().unwrap_or_else(|p| p.into_inner()).push(call);
                        tokio::time::sleep(PAUSE).await;
                    }
                })
            })
            .collect();
        Callers {
            running,
            calls,
            tasks,
        }
    }

    /// Waits until every caller has made at least `n` calls that `counts`; fails after `within`.
    pub async fn wait_for(
        &self,
        what: &str,
        n: usize,
        within: Duration,
        counts: impl Fn(&Call) -> bool,
    ) {
        eventually(what, within, || async {
            self.calls
                .iter()
                .all(|calls| {
                    let calls = calls.lock().unwrap_or_else(|p| p.into_inner());
                    calls.iter().filter(|call| counts(call)).count() >= n
                })
                .then_some(())
        })
        .await;
    }

    /// Stops the callers once their current calls are answered; each caller's calls, in order.
    pub async fn stop(self) -> Vec<Vec<Call>> {
        self.running.store(false, Ordering::SeqCst);
        for task in self.tasks {
            task.await
                .unwrap_or_else(|e| panic!("a caller panicked: {e}"));
        }
        self.calls
            .iter()
            .map(|calls| std::mem::take(&mut *calls.lock().unwrap_or_else(|p| p.into_inner())))
            .collect()
    }
}
