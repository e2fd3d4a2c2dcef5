//! Talking to a sidecar from a test the way an app does, over plain HTTP: a call that returns the
//! status and the decoded body, and the component names `/v1.0/metadata` lists.
//!
//! One [`SidecarClient`] serves a whole test: its connections are pooled and reused, as an app's
//! are, so a loaded machine spends its time on the calls rather than on new clients and handshakes.

use serde_json::Value;
use std::time::{Duration, Instant};

/// An app's HTTP client for its sidecar. Cheap to clone: clones share one connection pool.
#[derive(Clone, Debug)]
pub struct SidecarClient {
    http: reqwest::Client,
}

impl SidecarClient {
    /// A client whose requests give up after 10 s.
    pub fn new() -> SidecarClient {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_else(|e| {
                panic!("an HTTP client (is a rustls crypto provider installed?): {e}")
            });
        SidecarClient { http }
    }

    /// `method url` with `body` as JSON; the status and the body (JSON, else a string). A request
    /// that gets no answer (refused, timed out after 10 s) is status 0 with the error as the body.
    pub async fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        send(request).await
    }

    /// The names of the components the sidecar at `base` (`http://host:port`) lists, sorted.
    pub async fn component_names(&self, base: &str) -> Vec<String> {
        let url = format!("{base}/v1.0/metadata");
        let (_, metadata) = self.call(reqwest::Method::GET, &url, None).await;
        let mut names: Vec<String> = metadata["components"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str().map(str::to_owned))
            .collect();
        names.sort();
        names
    }

    /// Invokes an app id nobody runs through the sidecar at `base`: the answer must be Dapr's
    /// `500 ERR_DIRECT_INVOKE` within `limit`, never a hang (the request gives up at `limit`).
    /// Returns how long the answer took.
    pub async fn invoke_unknown_app(&self, base: &str, limit: Duration) -> Duration {
        let started = Instant::now();
        let url = format!("{base}/v1.0/invoke/nobody/method/x");
        let request = self.http.post(url).json(&serde_json::json!({}));
        let (status, error) = send(request.timeout(limit)).await;
        let took = started.elapsed();
        assert_eq!(
            (status, error["errorCode"].as_str()),
            (500, Some("ERR_DIRECT_INVOKE")),
            "{error}"
        );
        assert!(
            took < limit,
            "ERR_DIRECT_INVOKE took {took:?}, over {limit:?}"
        );
        took
    }
}

/// Sends `request`: the status and the body (JSON, else a string), or 0 and the error.
async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            (
                status,
                serde_json::from_str(&text).unwrap_or(Value::String(text)),
            )
        }
        Err(e) => (0, Value::String(e.to_string())),
    }
}

impl Default for SidecarClient {
    fn default() -> SidecarClient {
        SidecarClient::new()
    }
}
