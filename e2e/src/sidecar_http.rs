//! Talking to a sidecar from a test the way an app does, over plain HTTP: a call that returns the
//! status and the decoded body, and the component names `/v1.0/metadata` lists.

use serde_json::Value;
use std::time::{Duration, Instant};

/// `method url` with `body` as JSON; the status and the body (JSON, else a string). A request that
/// gets no answer (refused, timed out after 10 s) is status 0 with the error as the body.
pub async fn call(method: reqwest::Method, url: &str, body: Option<Value>) -> (u16, Value) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(client) => client,
        Err(e) => return (0, Value::String(e.to_string())),
    };
    let mut request = client.request(method, url);
    if let Some(body) = body {
        request = request.json(&body);
    }
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

/// The names of the components the sidecar at `base` (`http://host:port`) lists, sorted.
pub async fn component_names(base: &str) -> Vec<String> {
    let url = format!("{base}/v1.0/metadata");
    let (_, metadata) = call(reqwest::Method::GET, &url, None).await;
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
/// `500 ERR_DIRECT_INVOKE` within `limit`, never a hang. Returns how long the answer took.
pub async fn invoke_unknown_app(base: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    let url = format!("{base}/v1.0/invoke/nobody/method/x");
    let (status, error) = call(reqwest::Method::POST, &url, Some(serde_json::json!({}))).await;
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
