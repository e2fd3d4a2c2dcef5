//! The metadata block: what `/v1.0/metadata` (and gRPC `GetMetadata`) report — components,
//! failed components, subscriptions, extended values and the app connection — and
//! `SetMetadata`'s bounded store of extended values.

use super::Sidecar;
use super::error::{BlockError, Code};
use crate::components::ComponentStatus;
use crate::pubsub::subscriptions::Subscription;
use serde_json::{Value, json};

/// Tandem's version, reported as the runtime version.
pub const RUNTIME_VERSION: &str = env!("CARGO_PKG_VERSION");
/// Extended metadata keys kept at most, so a client cannot grow the sidecar's memory at will.
pub const MAX_EXTENDED_KEYS: usize = 1024;

/// The metadata block of one sidecar.
pub struct MetadataBlock<'a> {
    sidecar: &'a Sidecar,
}

impl Sidecar {
    pub fn metadata(&self) -> MetadataBlock<'_> {
        MetadataBlock { sidecar: self }
    }
}

/// One `subscriptions` entry; `kind` is Dapr's `PubsubSubscriptionType` name.
fn subscription_entry(s: &Subscription, kind: &str) -> Value {
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
        "type": kind,
    })
}

impl MetadataBlock<'_> {
    fn components(&self) -> (Vec<Value>, Vec<Value>) {
        let registry = self.sidecar.registry();
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
        (components, failed)
    }

    /// The app's subscriptions, then the open streams', as daprd lists them.
    fn subscriptions(&self) -> Vec<Value> {
        let listed = self
            .sidecar
            .subscriptions()
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let streams = self.sidecar.streams().list();
        listed
            .iter()
            .map(|s| subscription_entry(s, "PROGRAMMATIC"))
            .chain(streams.iter().map(|s| subscription_entry(s, "STREAMING")))
            .collect()
    }

    /// The document Dapr's `/v1.0/metadata` answers with.
    pub fn snapshot(&self) -> Value {
        let sc = self.sidecar;
        let (components, failed) = self.components();
        let mut extended: serde_json::Map<String, Value> = sc
            .extended()
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        extended.insert(
            "daprRuntimeVersion".into(),
            Value::String(RUNTIME_VERSION.into()),
        );
        let app = sc.app_connection();
        let mut connection =
            json!({ "protocol": app.protocol, "channelAddress": app.channel_address });
        if let Some(port) = app.port {
            connection["port"] = json!(port);
        }
        if let Some(check) = sc.app_health_check() {
            // Dapr's fields, plus Tandem's `status`: what the probes found last.
            let healthy = *sc.app_health().borrow();
            connection["health"] = json!({
                "healthCheckPath": check.path,
                "healthProbeInterval": humantime::format_duration(check.interval).to_string(),
                "healthProbeTimeout": humantime::format_duration(check.timeout).to_string(),
                "healthThreshold": check.threshold,
                "status": if healthy { "HEALTHY" } else { "UNHEALTHY" },
            });
        }
        let features: Vec<String> = sc
            .config()
            .features
            .iter()
            .filter(|f| f.enabled)
            .map(|f| f.name.clone())
            .collect();
        let rt = sc.actor_runtime();
        let counts = rt.table().counts();
        let actors: Vec<Value> = rt
            .hosted()
            .map(|c| {
                c.types
                    .keys()
                    .map(|t| json!({"type": t, "count": counts.get(t).copied().unwrap_or(0)}))
                    .collect()
            })
            .unwrap_or_default();
        let hosting = !actors.is_empty();
        json!({
            "id": sc.app_id(),
            "runtimeVersion": RUNTIME_VERSION,
            "enabledFeatures": features,
            "actors": actors,
            "actorRuntime": {
                "runtimeStatus": if rt.settled() { "RUNNING" } else { "INITIALIZING" },
                "activeActors": actors,
                "hostReady": hosting && rt.placement().held_count() > 0,
                "placement": if hosting { "placement: shard leases in the actor state store" } else { "" },
            },
            "components": components,
            "failedComponents": failed,
            "extended": extended,
            "subscriptions": self.subscriptions(),
            "httpEndpoints": [],
            "appConnectionProperties": connection,
        })
    }

    /// Sets `extended[key]`.
    pub fn set(&self, key: String, value: String) -> Result<(), BlockError> {
        let mut extended = self.sidecar.extended();
        if !extended.contains_key(&key) && extended.len() >= MAX_EXTENDED_KEYS {
            return Err(BlockError::new(
                Code::MalformedRequest,
                format!("too many extended metadata keys ({MAX_EXTENDED_KEYS})"),
            ));
        }
        extended.insert(key, value);
        Ok(())
    }
}
