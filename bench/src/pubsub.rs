//! B8, pub/sub end to end: a publisher posts to a sidecar's publish API, the sidecar's broker
//! carries the message, and the sidecar delivers it to a subscriber app ([`Subscriber`]) that
//! records when each sequence number arrived. Two measurements:
//!
//! - throughput: `n` messages from `publishers` closed-loop publishers; messages per second from
//!   the first publish to the last delivery, and the loss (published with 204, never delivered);
//! - latency at a fixed open-loop rate: publish-ack and publish-to-delivery percentiles, each
//!   measured from the scheduled send time (no coordinated omission).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// The subscriber app: answers `/dapr/subscribe` with one subscription and records deliveries.
#[derive(Clone)]
pub struct Subscriber {
    epoch: Instant,
    topic: String,
    /// seq → microseconds after `epoch` of the first delivery.
    arrivals: Arc<Mutex<HashMap<u64, u64>>>,
    deliveries: Arc<Mutex<u64>>,
}

impl Subscriber {
    pub fn new(epoch: Instant, topic: &str) -> Subscriber {
        Subscriber {
            epoch,
            topic: topic.to_owned(),
            arrivals: Arc::default(),
            deliveries: Arc::default(),
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
        if req.uri().path() == "/dapr/subscribe" {
            let body = format!(
                r#"[{{"pubsubname":"pubsub","topic":"{}","route":"/m"}}]"#,
                self.topic
            );
            return Ok(Response::new(Full::new(Bytes::from(body))));
        }
        let body = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let at = self.epoch.elapsed().as_micros() as u64;
        let seq = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|e| e.pointer("/data/seq").and_then(serde_json::Value::as_u64));
        if let Some(seq) = seq {
            self.arrivals
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(seq)
                .or_insert(at);
        }
        *self.deliveries.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        Ok(Response::new(Full::new(Bytes::from_static(
            br#"{"status":"SUCCESS"}"#,
        ))))
    }

    /// Arrival time (µs after the epoch) of each sequence number delivered so far.
    pub fn arrivals(&self) -> HashMap<u64, u64> {
        self.arrivals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn deliveries(&self) -> u64 {
        *self.deliveries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until `want` distinct messages arrived or `quiet` passes with no progress.
    pub async fn wait_for(&self, want: usize, quiet: Duration) -> usize {
        let mut last = (0, Instant::now());
        loop {
            let got = self
                .arrivals
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
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Publishes to one sidecar's `/v1.0/publish/pubsub/<topic>`.
#[derive(Clone)]
pub struct Publisher {
    client: Client<HttpConnector, Full<Bytes>>,
    url: String,
}

impl Publisher {
    pub fn new(sidecar_http_port: u16, topic: &str) -> Publisher {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Publisher {
            client: Client::builder(TokioExecutor::new())
                .pool_max_idle_per_host(256)
                .build(connector),
            url: format!("http://127.0.0.1:{sidecar_http_port}/v1.0/publish/pubsub/{topic}"),
        }
    }

    /// Publishes `{"seq": seq}`; true when the sidecar answered 204.
    pub async fn publish(&self, seq: u64) -> bool {
        let Ok(req) = Request::post(&self.url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(format!(r#"{{"seq":{seq}}}"#))))
        else {
            return false;
        };
        match self.client.request(req).await {
            Ok(res) => {
                let ok = res.status() == http::StatusCode::NO_CONTENT;
                let _ = res.into_body().collect().await;
                ok
            }
            Err(_) => false,
        }
    }
}

/// Throughput of one run.
#[derive(Debug, Clone, Copy)]
pub struct Throughput {
    pub published: u64,
    pub acknowledged: u64,
    pub delivered: u64,
    pub msgs_per_sec: f64,
}

impl Throughput {
    pub fn lost(&self) -> u64 {
        self.acknowledged.saturating_sub(self.delivered)
    }
}

/// Publishes `n` messages (seq `first..first+n`) from `publishers` closed-loop tasks and waits
/// for their delivery.
pub async fn throughput(
    publisher: &Publisher,
    subscriber: &Subscriber,
    first: u64,
    n: u64,
    publishers: u64,
) -> Throughput {
    let start_us = subscriber.epoch.elapsed().as_micros() as u64;
    let before = subscriber.arrivals().len();
    let next = Arc::new(std::sync::atomic::AtomicU64::new(first));
    let mut tasks = Vec::new();
    for _ in 0..publishers {
        let (p, next) = (publisher.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            loop {
                let seq = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if seq >= first + n {
                    return acked;
                }
                if p.publish(seq).await {
                    acked.push(seq);
                }
            }
        }));
    }
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap_or_default());
    }
    subscriber
        .wait_for(before + acked.len(), Duration::from_secs(5))
        .await;
    let arrivals = subscriber.arrivals();
    let delivered: Vec<u64> = acked
        .iter()
        .filter_map(|s| arrivals.get(s).copied())
        .collect();
    let last = delivered.iter().copied().max().unwrap_or(start_us);
    let secs = (last.saturating_sub(start_us)) as f64 / 1e6;
    Throughput {
        published: n,
        acknowledged: acked.len() as u64,
        delivered: delivered.len() as u64,
        msgs_per_sec: if secs > 0.0 {
            delivered.len() as f64 / secs
        } else {
            0.0
        },
    }
}

/// Latencies of an open-loop run, in milliseconds.
#[derive(Debug, Clone)]
pub struct Latency {
    pub ack_ms: Vec<f64>,
    pub delivery_ms: Vec<f64>,
    pub lost: u64,
}

/// Publishes at `rate` per second for `secs` seconds (seq from `first`), each from its own task
/// at its scheduled time, and measures from that time.
pub async fn latency(
    publisher: &Publisher,
    subscriber: &Subscriber,
    first: u64,
    rate: u64,
    secs: u64,
) -> Latency {
    let n = rate * secs;
    let before = subscriber.arrivals().len();
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(n as usize);
    for i in 0..n {
        let due = start + Duration::from_nanos(i * 1_000_000_000 / rate);
        tokio::time::sleep_until(due.into()).await;
        let p = publisher.clone();
        let seq = first + i;
        let scheduled_us = due.duration_since(subscriber.epoch).as_micros() as u64;
        tasks.push(tokio::spawn(async move {
            let ok = p.publish(seq).await;
            let ack_us = due.elapsed().as_micros() as u64;
            (seq, ok, scheduled_us, ack_us)
        }));
    }
    let mut sent = Vec::with_capacity(tasks.len());
    for t in tasks {
        if let Ok(r) = t.await {
            sent.push(r);
        }
    }
    subscriber
        .wait_for(before + sent.len(), Duration::from_secs(5))
        .await;
    let arrivals = subscriber.arrivals();
    let mut out = Latency {
        ack_ms: Vec::new(),
        delivery_ms: Vec::new(),
        lost: 0,
    };
    for (seq, ok, scheduled_us, ack_us) in sent {
        if !ok {
            continue;
        }
        out.ack_ms.push(ack_us as f64 / 1000.0);
        match arrivals.get(&seq) {
            Some(at) => out
                .delivery_ms
                .push(at.saturating_sub(scheduled_us) as f64 / 1000.0),
            None => out.lost += 1,
        }
    }
    out
}
