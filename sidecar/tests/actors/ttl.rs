//! A duration `ttl` counts from the first due time, as daprd counts it: a timer due in 1 s,
//! every 1 s, with a 1.5 s TTL fires twice (at 1 s and 2 s), not once.

use super::{CONFIG, call, host, wait_until};
use reqwest::Method as M;
use std::sync::Arc;
use std::time::Duration;
use tandem_sidecar::testing::actor_app::ActorLog;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_timer_ttl_counts_from_its_due_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(ActorLog::default());
    let h = host(dir.path(), "ttl", CONFIG, &log).await;
    let (status, body) = call(
        &h.sidecar,
        M::PUT,
        "/v1.0/actors/Counter/ttl/timers/bounded",
        r#"{"dueTime":"1s","period":"1s","ttl":"1500ms","callback":"cb"}"#,
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let timers = |log: &ActorLog| log.timers.lock().expect("log").len();
    wait_until(Duration::from_secs(10), || timers(&log) >= 2).await;
    // Expired at 2.5 s: no third firing at 3 s.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(timers(&log), 2, "{}", h.sidecar.log());
}
