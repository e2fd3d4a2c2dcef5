//! B9, actors: a tiny actor app ([`ActorApp`]) that speaks Dapr's app-side actor protocol and
//! records when each reminder callback arrived, and the load shapes the benchmark needs:
//!
//! - [`open_loop`]: requests at a fixed rate, each from its own task at its scheduled time, with
//!   latency measured from that time (no coordinated omission): activation of fresh ids;
//! - [`closed_loop`]: `conns` callers back to back for a while: warm invoke throughput;
//! - [`closed_loop_n`]: `n` requests from `workers` callers, each request's latency kept:
//!   reminder registration.
//!
//! The same listener type, with actors off, is the echo app behind B1's two-sidecar chain.

pub mod invoke_phase;
pub mod reminder_phase;
pub mod setup;

use bytes::Bytes;
use http::Method;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// The actor type the app hosts.
pub const ACTOR_TYPE: &str = "Bench";

/// The app: `GET /dapr/config` names [`ACTOR_TYPE`] (or nothing, for the echo app), actor
/// methods and `POST /echo` echo the body, reminder callbacks are recorded, deactivation is 200.
#[derive(Clone)]
pub struct ActorApp {
    epoch: Instant,
    hosts_actors: bool,
    /// Microseconds after `epoch` of every reminder callback.
    fired_us: Arc<Mutex<Vec<u64>>>,
    /// `id/name` of every reminder that fired at least once.
    fired_keys: Arc<Mutex<HashSet<String>>>,
}

impl ActorApp {
    pub fn new(epoch: Instant, hosts_actors: bool) -> ActorApp {
        ActorApp {
            epoch,
            hosts_actors,
            fired_us: Arc::default(),
            fired_keys: Arc::default(),
        }
    }

    /// Serves on `listener` until the process ends.
    pub async fn serve(self, listener: TcpListener) {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let _ = stream.set_nodelay(true);
            let me = self.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| me.clone().handle(req));
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }

    async fn handle(self, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
        let path = req.uri().path().to_owned();
        let method = req.method().clone();
        if path == "/dapr/config" {
            let config = if self.hosts_actors {
                format!(r#"{{"entities":["{ACTOR_TYPE}"],"actorIdleTimeout":"1h"}}"#)
            } else {
                r#"{"entities":[]}"#.to_owned()
            };
            return Ok(Response::new(Full::new(Bytes::from(config))));
        }
        if method == Method::PUT && path.contains("/method/remind/") {
            let at = self.epoch.elapsed().as_micros() as u64;
            self.fired_us
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(at);
            let key = path
                .trim_start_matches("/actors/")
                .replace("/method/remind", "");
            self.fired_keys
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(key);
            return Ok(Response::new(Full::new(Bytes::new())));
        }
        let echo = (method == Method::PUT && path.starts_with("/actors/")) || path == "/echo";
        if echo {
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            return Ok(Response::new(Full::new(body)));
        }
        if method == Method::DELETE && path.starts_with("/actors/") {
            return Ok(Response::new(Full::new(Bytes::new())));
        }
        let mut not_found = Response::new(Full::new(Bytes::new()));
        *not_found.status_mut() = StatusCode::NOT_FOUND;
        Ok(not_found)
    }

    /// Reminder callbacks so far, and how many distinct reminders they were for.
    pub fn fired(&self) -> (Vec<u64>, usize) {
        let times = self
            .fired_us
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let distinct = self
            .fired_keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len();
        (times, distinct)
    }

    /// Waits until `want` reminders fired or `quiet` passes with no new callback.
    pub async fn wait_fired(&self, want: usize, quiet: Duration) -> usize {
        let mut last = (0, Instant::now());
        loop {
            let got = self
                .fired_us
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .len();
            if got >= want {
                return got;
            }
            if got != last.0 {
                last = (got, Instant::now());
            } else if last.1.elapsed() > quiet {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn epoch(&self) -> Instant {
        self.epoch
    }
}

/// A keep-alive HTTP/1.1 client.
pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub fn client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(256)
        .build(connector)
}

/// One request: the status, or `None` when it failed on the wire.
pub async fn call(client: &HttpClient, method: Method, url: &str, body: Bytes) -> Option<u16> {
    let req = Request::builder()
        .method(method)
        .uri(url)
        .header(http::header::CONTENT_TYPE, "application/octet-stream")
        .body(Full::new(body))
        .ok()?;
    let res = client.request(req).await.ok()?;
    let status = res.status().as_u16();
    res.into_body().collect().await.ok()?;
    Some(status)
}

/// Latencies (ms) of the requests that answered 2xx, and how many did not.
#[derive(Debug, Default, Clone)]
pub struct Latencies {
    pub ms: Vec<f64>,
    pub failed: u64,
}

/// Sends `urls[i]` at `start + i / rate`, each from its own task; latency from the scheduled time.
pub async fn open_loop(
    client: &HttpClient,
    method: Method,
    urls: Vec<String>,
    body: Bytes,
    rate: u64,
) -> Latencies {
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(urls.len());
    for (i, url) in urls.into_iter().enumerate() {
        let due = start + Duration::from_nanos(i as u64 * 1_000_000_000 / rate.max(1));
        tokio::time::sleep_until(due.into()).await;
        let (client, method, body) = (client.clone(), method.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let status = call(&client, method, &url, body).await;
            (status, due.elapsed().as_secs_f64() * 1000.0)
        }));
    }
    collect(tasks).await
}

async fn collect(tasks: Vec<tokio::task::JoinHandle<(Option<u16>, f64)>>) -> Latencies {
    let mut out = Latencies::default();
    for t in tasks {
        match t.await {
            Ok((Some(s), ms)) if (200..300).contains(&s) => out.ms.push(ms),
            _ => out.failed += 1,
        }
    }
    out
}

/// Successful and failed requests of a closed-loop run, and its rate.
#[derive(Debug, Clone, Copy)]
pub struct Throughput {
    pub ok: u64,
    pub failed: u64,
    pub per_sec: f64,
}

/// `conns` callers send `url_of(i)` back to back for `secs`; in-flight requests are waited for.
pub async fn closed_loop(
    client: &HttpClient,
    method: Method,
    url_of: Arc<dyn Fn(u64) -> String + Send + Sync>,
    body: Bytes,
    conns: usize,
    secs: f64,
) -> Throughput {
    let (next, ok, failed) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (client, method, body, url_of) =
            (client.clone(), method.clone(), body.clone(), url_of.clone());
        let (next, ok, failed) = (next.clone(), ok.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < end {
                let i = next.fetch_add(1, Ordering::Relaxed);
                match call(&client, method.clone(), &url_of(i), body.clone()).await {
                    Some(s) if (200..300).contains(&s) => ok.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let ok = ok.load(Ordering::Relaxed);
    Throughput {
        ok,
        failed: failed.load(Ordering::Relaxed),
        per_sec: ok as f64 / start.elapsed().as_secs_f64(),
    }
}

/// Sends `n` requests (`request_of(i)`: URL and body) from `workers` callers; every latency kept.
pub async fn closed_loop_n(
    client: &HttpClient,
    method: Method,
    request_of: Arc<dyn Fn(u64) -> (String, Bytes) + Send + Sync>,
    n: u64,
    workers: usize,
) -> (Latencies, Duration) {
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (client, method, request_of, next) = (
            client.clone(),
            method.clone(),
            request_of.clone(),
            next.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut out = Latencies::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return out;
                }
                let (url, body) = request_of(i);
                let sent = Instant::now();
                match call(&client, method.clone(), &url, body).await {
                    Some(s) if (200..300).contains(&s) => {
                        out.ms.push(sent.elapsed().as_secs_f64() * 1000.0)
                    }
                    _ => out.failed += 1,
                }
            }
        }));
    }
    let mut all = Latencies::default();
    for t in tasks {
        if let Ok(part) = t.await {
            all.ms.extend(part.ms);
            all.failed += part.failed;
        }
    }
    (all, start.elapsed())
}

/// The highest number of callbacks in any one-second window starting at a callback
/// (`times_us` sorted ascending).
pub fn peak_per_second(times_us: &[u64]) -> usize {
    let mut best = 0;
    let mut lo = 0;
    for hi in 0..times_us.len() {
        while times_us[hi] - times_us[lo] >= 1_000_000 {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::peak_per_second;

    #[test]
    fn peak_window() {
        assert_eq!(peak_per_second(&[]), 0);
        assert_eq!(peak_per_second(&[5]), 1);
        assert_eq!(peak_per_second(&[0, 10, 999_999, 1_000_000, 1_500_000]), 3);
        assert_eq!(peak_per_second(&[0, 2_000_000, 2_100_000]), 2);
    }
}
