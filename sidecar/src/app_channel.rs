//! The connection to the sidecar's own app: a pooled HTTP/1.1 keep-alive client, and readiness
//! (the app counts as reachable once its port accepts a connection).

use axum::body::Body;
use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Copies event metadata onto request headers (entries that cannot be headers are left out) and
/// drops any `content-length` among them: the body sets its own.
pub fn metadata_headers(headers: &mut http::HeaderMap, metadata: &BTreeMap<String, String>) {
    for (k, v) in metadata {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(k.as_bytes()),
            http::HeaderValue::from_str(v),
        ) {
            headers.insert(name, value);
        }
    }
    headers.remove(http::header::CONTENT_LENGTH);
}

/// The app channel.
#[derive(Clone)]
pub struct AppChannel {
    authority: Arc<str>,
    client: Client<HttpConnector, Body>,
    ready: Arc<AtomicBool>,
}

impl AppChannel {
    pub fn new(address: &str, port: u16) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(256)
            .build(connector);
        let host = if address.contains(':') {
            format!("[{address}]")
        } else {
            address.to_owned()
        };
        AppChannel {
            authority: format!("{host}:{port}").into(),
            client,
            ready: Arc::new(AtomicBool::new(false)),
        }
    }

    pub fn authority(&self) -> &str {
        &self.authority
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Sends a request whose URI holds only the path and query; the app's authority is added here.
    pub async fn send(
        &self,
        mut req: Request<Body>,
    ) -> Result<Response<Incoming>, hyper_util::client::legacy::Error> {
        let path_and_query = req.uri().path_and_query().map_or("/", |p| p.as_str());
        if let Ok(uri) = Uri::builder()
            .scheme("http")
            .authority(&*self.authority)
            .path_and_query(path_and_query)
            .build()
        {
            *req.uri_mut() = uri;
        }
        self.client.request(req).await
    }

    /// Sends a request and reads the whole answer: its status and body.
    pub async fn exchange(
        &self,
        req: Request<Body>,
    ) -> Result<(http::StatusCode, bytes::Bytes), String> {
        use http_body_util::BodyExt;
        let response = self.send(req).await.map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, body))
    }

    /// Waits until the app's port accepts a connection, then marks the channel ready. Runs until
    /// it succeeds or `stop` fires.
    pub async fn wait_until_reachable(&self, stop: tokio_util::sync::CancellationToken) {
        let mut backoff =
            crate::resiliency::Backoff::new(Duration::from_millis(5), Duration::from_millis(500));
        loop {
            let attempt = tokio::time::timeout(
                Duration::from_secs(1),
                tokio::net::TcpStream::connect(&*self.authority),
            );
            if let Ok(Ok(_)) = attempt.await {
                self.ready.store(true, Ordering::Release);
                tracing::info!(app = %self.authority, "app channel ready");
                return;
            }
            if !backoff.sleep(&stop).await {
                return;
            }
        }
    }
}
