//! `/v1.0/metadata`: what the `@dapr/dapr` SDK polls at start-up, and `PUT /v1.0/metadata/{key}`.

use super::body::RawBody;
use super::path::ApiPath as Path;
use crate::components::ComponentStatus;
use crate::error::ApiError;
use crate::runtime::SharedRuntime;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

/// Tandem's version, reported as the runtime version.
pub const RUNTIME_VERSION: &str = env!("CARGO_PKG_VERSION");

/// `GET /v1.0/metadata`
pub async fn get(State(rt): State<SharedRuntime>) -> Json<Value> {
    let registry = rt.registry();
    let mut components = Vec::new();
    let mut failed = Vec::new();
    for slot in registry.slots() {
        let info = &slot.planned.info;
        match slot.status() {
            ComponentStatus::Failed(error) => failed.push(json!({
                "name": info.name, "type": info.type_, "version": info.version, "error": error,
            })),
            status => components.push(json!({
                "name": info.name,
                "type": info.type_,
                "version": info.version,
                "capabilities": registry.capabilities(slot),
                "status": if status == ComponentStatus::Ready { "ready" } else { "initialising" },
            })),
        }
    }
    for f in registry.failed_at_load() {
        failed.push(json!({ "name": f.info.name, "type": f.info.type_, "version": f.info.version, "error": f.error }));
    }
    let mut extended: serde_json::Map<String, Value> = rt
        .extended()
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    extended.insert(
        "daprRuntimeVersion".into(),
        Value::String(RUNTIME_VERSION.into()),
    );
    let subscriptions: Vec<Value> = rt
        .subscriptions
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|s| {
            let rules: Vec<Value> = s
                .routes
                .rules()
                .into_iter()
                .map(|(m, p)| json!({ "match": m, "path": p }))
                .collect();
            json!({
                "pubsubname": s.pubsub,
                "topic": s.topic,
                "metadata": s.metadata,
                "rules": rules,
                "deadLetterTopic": s.dead_letter_topic.clone().unwrap_or_default(),
                "type": "PROGRAMMATIC",
            })
        })
        .collect();
    let app = &rt.app_connection;
    let mut connection = json!({ "protocol": app.protocol, "channelAddress": app.channel_address });
    if let Some(port) = app.port {
        connection["port"] = json!(port);
    }
    Json(json!({
        "id": rt.app_id,
        "runtimeVersion": RUNTIME_VERSION,
        "enabledFeatures": rt.config.current().features.iter().filter(|f| f.enabled).map(|f| f.name.clone()).collect::<Vec<_>>(),
        "actors": [],
        "components": components,
        "failedComponents": failed,
        "extended": extended,
        "subscriptions": subscriptions,
        "httpEndpoints": [],
        "appConnectionProperties": connection,
    }))
}

/// `PUT /v1.0/metadata/{key}`: the raw body becomes `extended[key]`.
pub async fn put(
    State(rt): State<SharedRuntime>,
    Path(key): Path<String>,
    RawBody(body): RawBody,
) -> Result<StatusCode, ApiError> {
    let value = String::from_utf8(body.to_vec()).map_err(|_| {
        ApiError::bad_request(
            "ERR_MALFORMED_REQUEST",
            "metadata values must be UTF-8 text",
        )
    })?;
    let mut extended = rt.extended();
    // Bounded, so a client cannot grow the sidecar's memory without limit.
    if !extended.contains_key(&key) && extended.len() >= 1024 {
        return Err(ApiError::bad_request(
            "ERR_MALFORMED_REQUEST",
            "too many extended metadata keys (1024)",
        ));
    }
    extended.insert(key, value);
    Ok(StatusCode::NO_CONTENT)
}
