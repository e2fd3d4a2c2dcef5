//! B6 helpers: the injector's `/mutate` Router and a constant `allowed: true` Router, both served
//! by the same TLS stack (tandem-webhook-tls) on a runtime of one thread, timed server side by
//! the same middleware; a client that posts a 2-container pod review at a fixed rate (open loop)
//! or from N closed-loop connections.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tandem_webhook_tls::{Certificates, Sans, ServingCert};
use tokio_util::sync::CancellationToken;

/// A Dapr pod with two containers, created by the replicaset controller: the common case.
pub fn two_container_review(uid: &str) -> Vec<u8> {
    let review = serde_json::json!({
        "kind": "AdmissionReview",
        "apiVersion": "admission.k8s.io/v1",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "shop",
            "operation": "CREATE",
            "userInfo": {
                "username": "system:serviceaccount:kube-system:replicaset-controller",
                "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"],
            },
            "object": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "generateName": "checkout-7d9f5c6b8-",
                    "namespace": "shop",
                    "labels": {"app": "checkout", "pod-template-hash": "7d9f5c6b8"},
                    "annotations": {"dapr.io/enabled": "true", "dapr.io/app-id": "checkout", "dapr.io/app-port": "8080", "dapr.io/log-level": "debug"},
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "checkout-7d9f5c6b8", "uid": "6c7b1c0e-8d55-4b8e-9d5a-2f3c1c4e5a6b", "controller": true, "blockOwnerDeletion": true}],
                },
                "spec": {
                    "containers": [
                        {"name": "checkout", "image": "shop/checkout:1.4.2", "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                         "env": [{"name": "LOG_LEVEL", "value": "info"}], "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}},
                        {"name": "log-shipper", "image": "fluent/fluent-bit:2.2", "volumeMounts": [{"name": "logs", "mountPath": "/var/log/app"}]},
                    ],
                    "volumes": [{"name": "logs", "emptyDir": {}}],
                    "restartPolicy": "Always",
                    "serviceAccountName": "default",
                },
            },
        },
    });
    serde_json::to_vec(&review).unwrap_or_default()
}

/// Server-side durations (seconds) of every request, recorded by [`timed`].
pub type Timings = Arc<Mutex<Vec<f64>>>;

async fn timed(State(timings): State<Timings>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let response = next.run(request).await;
    if let Ok(mut t) = timings.lock() {
        t.push(started.elapsed().as_secs_f64());
    }
    response
}

/// The same constant answer for every review (what the baseline server returns).
pub fn constant_router() -> axum::Router {
    async fn allow() -> ([(http::HeaderName, &'static str); 1], &'static str) {
        (
            [(http::header::CONTENT_TYPE, "application/json")],
            r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"","allowed":true}}"#,
        )
    }
    axum::Router::new().route("/mutate", axum::routing::post(allow))
}

/// A TLS server on its own single-threaded runtime (one core's worth of server).
pub struct Server {
    pub addr: SocketAddr,
    pub timings: Timings,
    shutdown: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    pub fn start(router: axum::Router, certs: &Certificates) -> anyhow::Result<Server> {
        let timings: Timings = Arc::default();
        let router = router.layer(axum::middleware::from_fn_with_state(timings.clone(), timed));
        let cert = ServingCert::new(certs.clone())?;
        let config = tandem_webhook_tls::server_config(cert)?;
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        let thread = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok(listener) = tokio::net::TcpListener::from_std(listener) {
                    let _ = tandem_webhook_tls::serve(listener, config, router, stop).await;
                }
            });
        });
        Ok(Server {
            addr,
            timings,
            shutdown,
            thread: Some(thread),
        })
    }

    /// Forgets the timings so far (after a warm-up).
    pub fn reset_timings(&self) {
        if let Ok(mut t) = self.timings.lock() {
            t.clear();
        }
    }

    pub fn take_timings(&self) -> Vec<f64> {
        self.timings
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

pub fn certificates() -> anyhow::Result<Certificates> {
    Ok(tandem_webhook_tls::generate(
        &Sans::from_names(["127.0.0.1"]),
        std::time::SystemTime::now(),
    )?)
}

/// An HTTP/2 client (as kube-apiserver's webhook client negotiates) trusting `ca_pem`.
pub fn client(ca_pem: &str) -> anyhow::Result<reqwest::Client> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .build()?)
}

async fn post(client: &reqwest::Client, url: &str, body: &[u8]) -> anyhow::Result<()> {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await?;
    anyhow::ensure!(
        response.status().is_success(),
        "status {}",
        response.status()
    );
    let _ = response.bytes().await?;
    Ok(())
}

/// Open loop: one request every `1/rate` s for `duration`; client-side latencies (s) and errors.
pub async fn fixed_rate(
    client: &reqwest::Client,
    url: &str,
    rate: u64,
    duration: Duration,
) -> (Vec<f64>, usize) {
    let body: Arc<[u8]> = two_container_review("b6").into();
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(1) as f64));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let deadline = Instant::now() + duration;
    let mut tasks = tokio::task::JoinSet::new();
    while Instant::now() < deadline {
        ticker.tick().await;
        let (client, url, body) = (client.clone(), url.to_owned(), body.clone());
        tasks.spawn(async move {
            let started = Instant::now();
            post(&client, &url, &body)
                .await
                .map(|()| started.elapsed().as_secs_f64())
        });
    }
    let (mut latencies, mut errors) = (Vec::new(), 0);
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(Ok(latency)) => latencies.push(latency),
            _ => errors += 1,
        }
    }
    (latencies, errors)
}

/// Closed loop: `connections` clients (one TLS connection each) posting back to back for
/// `duration`; reviews per second and errors.
pub async fn saturate(
    ca_pem: &str,
    url: &str,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<(f64, usize)> {
    let body: Arc<[u8]> = two_container_review("b6").into();
    let mut tasks = tokio::task::JoinSet::new();
    let started = Instant::now();
    let deadline = started + duration;
    for _ in 0..connections {
        let (client, url, body) = (client(ca_pem)?, url.to_owned(), body.clone());
        tasks.spawn(async move {
            let (mut ok, mut errors) = (0usize, 0usize);
            while Instant::now() < deadline {
                match post(&client, &url, &body).await {
                    Ok(()) => ok += 1,
                    Err(_) => errors += 1,
                }
            }
            (ok, errors)
        });
    }
    let (mut ok, mut errors) = (0, 0);
    while let Some(done) = tasks.join_next().await {
        if let Ok((o, e)) = done {
            ok += o;
            errors += e;
        }
    }
    Ok((ok as f64 / started.elapsed().as_secs_f64(), errors))
}
