//! `GetMetadata`, `SetMetadata` and `Shutdown` over [`crate::blocks::metadata`] and
//! [`crate::blocks::health`]. `GetMetadata` reads the very document `GET /v1.0/metadata` answers
//! with ([`crate::blocks::metadata::MetadataBlock::snapshot`]) into Dapr's typed response, so the
//! two transports cannot drift apart.

use super::Shared;
use crate::blocks::error::{BlockError, Code};
use dapr::dapr::proto::runtime::v1 as runtime;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;
use tonic::{Request, Response, Status};

/// The parts of the metadata document the typed response has fields for.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Snapshot {
    id: String,
    runtime_version: String,
    enabled_features: Vec<String>,
    components: Vec<Component>,
    extended: BTreeMap<String, Value>,
    subscriptions: Vec<Subscription>,
    app_connection_properties: AppConnection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Component {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    version: String,
    capabilities: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Subscription {
    pubsubname: String,
    topic: String,
    metadata: BTreeMap<String, String>,
    rules: Vec<Rule>,
    dead_letter_topic: String,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Rule {
    #[serde(rename = "match")]
    condition: String,
    path: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct AppConnection {
    port: Option<u16>,
    protocol: String,
    channel_address: String,
    health: Option<AppHealth>,
}

/// `appConnectionProperties.health`, present with `--enable-app-health-check`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct AppHealth {
    health_check_path: String,
    health_probe_interval: String,
    health_probe_timeout: String,
    health_threshold: i32,
}

fn text(value: Value) -> String {
    match value {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

fn subscription(s: Subscription) -> runtime::PubsubSubscription {
    let kind = runtime::PubsubSubscriptionType::from_str_name(&s.kind)
        .unwrap_or(runtime::PubsubSubscriptionType::Unknown);
    let rules = s
        .rules
        .into_iter()
        .map(|r| runtime::PubsubSubscriptionRule {
            r#match: r.condition,
            path: r.path,
        })
        .collect();
    runtime::PubsubSubscription {
        pubsub_name: s.pubsubname,
        topic: s.topic,
        metadata: s.metadata.into_iter().collect(),
        rules: Some(runtime::PubsubSubscriptionRules { rules }),
        dead_letter_topic: s.dead_letter_topic,
        r#type: kind as i32,
    }
}

/// The typed response for a metadata document.
fn typed(document: Value) -> Result<runtime::GetMetadataResponse, BlockError> {
    let s: Snapshot = serde_json::from_value(document)
        .map_err(|e| BlockError::new(Code::Internal, format!("metadata document: {e}")))?;
    let registered_components = s
        .components
        .into_iter()
        .map(|c| runtime::RegisteredComponents {
            name: c.name,
            r#type: c.kind,
            version: c.version,
            capabilities: c.capabilities,
        })
        .collect();
    let app = s.app_connection_properties;
    Ok(runtime::GetMetadataResponse {
        id: s.id,
        runtime_version: s.runtime_version,
        enabled_features: s.enabled_features,
        registered_components,
        extended_metadata: s.extended.into_iter().map(|(k, v)| (k, text(v))).collect(),
        subscriptions: s.subscriptions.into_iter().map(subscription).collect(),
        app_connection_properties: Some(runtime::AppConnectionProperties {
            port: app.port.map(i32::from).unwrap_or_default(),
            protocol: app.protocol,
            channel_address: app.channel_address,
            health: app.health.map(|h| runtime::AppConnectionHealthProperties {
                health_check_path: h.health_check_path,
                health_probe_interval: h.health_probe_interval,
                health_probe_timeout: h.health_probe_timeout,
                health_threshold: h.health_threshold,
            }),
            ..Default::default()
        }),
        ..Default::default()
    })
}

pub async fn get(
    sc: &Shared,
    _request: Request<runtime::GetMetadataRequest>,
) -> Result<Response<runtime::GetMetadataResponse>, Status> {
    Ok(Response::new(typed(sc.metadata().snapshot())?))
}

pub async fn set(
    sc: &Shared,
    request: Request<runtime::SetMetadataRequest>,
) -> Result<Response<()>, Status> {
    let req = request.into_inner();
    sc.metadata().set(req.key, req.value)?;
    Ok(Response::new(()))
}

/// Answers, then shuts the sidecar down gracefully (the drain lets this answer out).
pub async fn shutdown(
    sc: &Shared,
    _request: Request<runtime::ShutdownRequest>,
) -> Result<Response<()>, Status> {
    let sc = sc.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        sc.health().shutdown();
    });
    Ok(Response::new(()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_http_document_becomes_the_typed_response() {
        let document = json!({
            "id": "app",
            "runtimeVersion": "0.1.0",
            "enabledFeatures": ["f"],
            "actors": [],
            "components": [{"name": "s", "type": "state.in-memory", "version": "v1",
                            "capabilities": ["ETAG"], "status": "ready"}],
            "failedComponents": [],
            "extended": {"daprRuntimeVersion": "0.1.0", "k": "v"},
            "subscriptions": [{"pubsubname": "p", "topic": "t", "metadata": {"m": "1"},
                               "rules": [{"match": "", "path": "/t"}], "deadLetterTopic": "",
                               "type": "PROGRAMMATIC"}],
            "httpEndpoints": [],
            "appConnectionProperties": {"port": 8080, "protocol": "http", "channelAddress": "127.0.0.1",
                "health": {"healthCheckPath": "/healthz", "healthProbeInterval": "5s",
                           "healthProbeTimeout": "500ms", "healthThreshold": 3, "status": "HEALTHY"}},
        });
        let typed = typed(document).expect("valid document");
        assert_eq!(typed.id, "app");
        assert_eq!(typed.enabled_features, ["f"]);
        assert_eq!(typed.registered_components[0].r#type, "state.in-memory");
        assert_eq!(typed.registered_components[0].capabilities, ["ETAG"]);
        assert_eq!(typed.extended_metadata["k"], "v");
        let sub = &typed.subscriptions[0];
        assert_eq!((sub.pubsub_name.as_str(), sub.topic.as_str()), ("p", "t"));
        assert_eq!(
            sub.r#type,
            runtime::PubsubSubscriptionType::Programmatic as i32
        );
        let rules = sub.rules.as_ref().map(|r| r.rules.len());
        assert_eq!(rules, Some(1));
        let app = typed.app_connection_properties.expect("app connection");
        assert_eq!((app.port, app.protocol.as_str()), (8080, "http"));
        let health = app.health.expect("health check settings");
        assert_eq!(
            (
                health.health_check_path.as_str(),
                health.health_probe_interval.as_str(),
                health.health_probe_timeout.as_str(),
                health.health_threshold
            ),
            ("/healthz", "5s", "500ms", 3)
        );
    }

    #[test]
    fn a_document_of_the_wrong_shape_is_an_internal_error() {
        let err = typed(json!({"components": "not a list"})).expect_err("wrong shape");
        assert_eq!(err.code, Code::Internal);
    }
}
