//! How a sidecar going away stops taking invocations without losing one, now that peers call
//! over pooled HTTP/1.1 (h2's GOAWAY said "streams above N were not processed"; HTTP/1.1 has
//! no such word, and a request written onto a connection the server is closing may or may not
//! have been read).
//!
//! The rule has two halves. A caller never writes onto a connection idle for longer than
//! [`POOL_IDLE`] (the pool drops it first). A callee that is shutting down answers every new
//! invocation with 503 and [`UNPROCESSED`] (without running it, and closing the connection), and
//! closes its idle connections only once every caller's pooled connection to it has expired:
//! [`POOL_IDLE`] plus a margin after the last invocation it served. So a call either reaches a
//! callee that runs it, or comes back marked unprocessed and goes to another instance.

use http::{HeaderMap, HeaderValue, Response, StatusCode};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a caller keeps an idle HTTP/1.1 connection to a peer.
pub const POOL_IDLE: Duration = Duration::from_secs(2);

/// Added to [`POOL_IDLE`] before a draining callee closes idle connections.
const MARGIN: Duration = Duration::from_millis(500);

/// The header of an answer that says the callee did not run the call.
pub const UNPROCESSED: &str = "tandem-peer-unprocessed";

/// The callee side's drain state of the internal port.
#[derive(Debug)]
pub struct Drain {
    epoch: Instant,
    /// Milliseconds after `epoch` of the last invocation served (0: none yet).
    last_served_ms: AtomicU64,
    draining: AtomicBool,
}

impl Default for Drain {
    fn default() -> Drain {
        Drain {
            epoch: Instant::now(),
            last_served_ms: AtomicU64::new(0),
            draining: AtomicBool::new(false),
        }
    }
}

impl Drain {
    /// An invocation is about to be served.
    pub fn served(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_served_ms.store(ms.max(1), Ordering::Relaxed);
    }

    /// From now on, new invocations are answered [`unprocessed_answer`].
    pub fn begin(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// How long to keep idle connections open so that no caller still holds one in its pool.
    pub fn pools_expire_in(&self) -> Duration {
        let last = self.last_served_ms.load(Ordering::Relaxed);
        if last == 0 {
            return Duration::ZERO;
        }
        expire_in(
            Duration::from_millis(last),
            self.epoch.elapsed(),
            POOL_IDLE + MARGIN,
        )
    }
}

/// `keep` after `last`, as seen at `now` (all since the same epoch).
fn expire_in(last: Duration, now: Duration, keep: Duration) -> Duration {
    (last + keep).saturating_sub(now)
}

/// The answer of a draining callee: not run, try another instance.
pub fn unprocessed_answer<B: Default>() -> Response<B> {
    let mut response = Response::new(B::default());
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let headers = response.headers_mut();
    headers.insert(UNPROCESSED, HeaderValue::from_static("1"));
    headers.insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Whether an answer from a peer says it did not run the call.
pub fn is_unprocessed(status: StatusCode, headers: &HeaderMap) -> bool {
    status == StatusCode::SERVICE_UNAVAILABLE && headers.contains_key(UNPROCESSED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_connections_outlive_every_callers_pool() {
        let keep = POOL_IDLE + MARGIN;
        let s = Duration::from_secs;
        assert_eq!(expire_in(s(10), s(10), keep), keep, "just served");
        assert_eq!(expire_in(s(10), s(11), keep), keep - s(1));
        assert_eq!(expire_in(s(10), s(20), keep), Duration::ZERO, "long idle");
        assert_eq!(
            Drain::default().pools_expire_in(),
            Duration::ZERO,
            "never served"
        );
        let drain = Drain::default();
        drain.served();
        assert!(drain.pools_expire_in() > POOL_IDLE, "served just now");
    }

    #[test]
    fn only_the_marked_503_is_unprocessed() {
        let answer: Response<()> = unprocessed_answer();
        assert!(is_unprocessed(answer.status(), answer.headers()));
        assert_eq!(answer.headers()["connection"], "close");
        assert!(
            !is_unprocessed(StatusCode::SERVICE_UNAVAILABLE, &HeaderMap::new()),
            "an app's 503"
        );
        let mut marked = HeaderMap::new();
        marked.insert(UNPROCESSED, HeaderValue::from_static("1"));
        assert!(!is_unprocessed(StatusCode::OK, &marked));
    }
}
