//! A bulk subscriber app for the bulk subscribe tests: answers `/dapr/subscribe` with the
//! subscriptions it is given, and each bulk entry by a rule on the event's `data.seq` (see
//! [`answer_for`]); records every request it answered and every dead-lettered event.

use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// One request the app answered: its route, envelope and per-entry (seq, answer).
#[derive(Debug, Clone)]
pub struct Answered {
    pub path: String,
    pub content_type: String,
    pub envelope: Value,
    pub answers: Vec<(i64, &'static str)>,
}

#[derive(Clone, Default)]
pub struct Seen {
    /// The app's `/dapr/subscribe` answer.
    pub subscriptions: Value,
    pub requests: Arc<Mutex<Vec<Answered>>>,
    /// Deliveries of the dead-letter topic, by seq.
    pub dead: Arc<Mutex<Vec<i64>>>,
    /// Whether the one failing (500) request has been answered.
    pub failed_once: Arc<Mutex<bool>>,
}

/// The app's answer on `path` to entry `seq` answered `before` times already (the failed request aside).
pub fn answer_for(path: &str, seq: i64, before: usize) -> &'static str {
    let attempts = tandem_sidecar::pubsub::delivery::ATTEMPTS as usize;
    if path == "/raw" {
        // Seq 1 outlasts the sidecar's attempts: nacked, delivered again by the broker.
        return if seq == 1 && before < attempts {
            "RETRY"
        } else {
            "SUCCESS"
        };
    }
    match seq % 10 {
        1 => "RETRY",
        3 if before < 2 => "RETRY",
        7 => "DROP",
        9 if before == 0 => "MISSING",
        _ => "SUCCESS",
    }
}

/// `data.seq` of a CloudEvent entry, or `seq` of the JSON a raw entry carries in base64.
fn seq_of(entry: &Value) -> i64 {
    match &entry["event"] {
        Value::String(b64) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .ok()
            .and_then(|raw| serde_json::from_slice::<Value>(&raw).ok())
            .and_then(|raw| raw["seq"].as_i64())
            .unwrap_or(-1),
        event => event
            .pointer("/data/seq")
            .and_then(Value::as_i64)
            .unwrap_or(-1),
    }
}

async fn app(State(seen): State<Seen>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    match path.as_str() {
        "/dapr/config" => return http::StatusCode::NOT_FOUND.into_response(),
        "/dapr/subscribe" => return axum::Json(seen.subscriptions.clone()).into_response(),
        _ => {}
    }
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let envelope: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if path == "/dead" {
        let seq = envelope
            .pointer("/data/seq")
            .and_then(Value::as_i64)
            .unwrap_or(-1);
        seen.dead
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(seq);
        return axum::Json(json!({"status": "SUCCESS"})).into_response();
    }
    let entries = envelope["entries"].as_array().cloned().unwrap_or_default();
    let mut requests = seen.requests.lock().unwrap_or_else(|p| p.into_inner());
    let before = |seq: i64| {
        requests
            .iter()
            .filter(|r| r.path == path)
            .flat_map(|r| &r.answers)
            .filter(|(s, a)| *s == seq && *a != "500")
            .count()
    };
    let fail_all = {
        let mut failed = seen.failed_once.lock().unwrap_or_else(|p| p.into_inner());
        let fail = !*failed && entries.iter().any(|e| seq_of(e) % 10 == 5);
        *failed |= fail;
        fail
    };
    let answers: Vec<(i64, &'static str)> = entries
        .iter()
        .map(|e| {
            let seq = seq_of(e);
            (
                seq,
                if fail_all {
                    "500"
                } else {
                    answer_for(&path, seq, before(seq))
                },
            )
        })
        .collect();
    let statuses: Vec<Value> = entries
        .iter()
        .zip(&answers)
        .filter(|(_, (_, a))| *a != "MISSING")
        .map(|(e, (_, a))| json!({"entryId": e["entryId"], "status": a}))
        .collect();
    requests.push(Answered {
        path,
        content_type,
        envelope,
        answers,
    });
    if fail_all {
        return http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    axum::Json(json!({ "statuses": statuses })).into_response()
}

pub fn answers(seen: &Seen, path: &str) -> BTreeMap<i64, Vec<&'static str>> {
    let mut by_seq: BTreeMap<i64, Vec<&'static str>> = BTreeMap::new();
    for r in seen
        .requests
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
    {
        if r.path == path {
            for (seq, answer) in &r.answers {
                by_seq.entry(*seq).or_default().push(answer);
            }
        }
    }
    by_seq
}

pub async fn start_app(seen: &Seen) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let router = Router::new().fallback(app).with_state(seen.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    port
}
