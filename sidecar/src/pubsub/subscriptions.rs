//! Which topics the app subscribes to: programmatically (the app's `GET /dapr/subscribe`
//! answer, read once the app is reachable). Each becomes a [`Subscription`] with its routes
//! compiled; one with an invalid CEL rule is refused with a message naming it. A subscription
//! with `bulkSubscribe.enabled` is delivered in batches ([`BulkSettings`]).

use super::cloudevent;
use super::routing::RouteTable;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// Dapr's default for `bulkSubscribe.maxMessagesCount`.
pub const DEFAULT_BULK_MESSAGES: usize = 100;
/// Dapr's default for `bulkSubscribe.maxAwaitDurationMs`.
pub const DEFAULT_BULK_AWAIT: Duration = Duration::from_millis(1000);

/// A subscription the sidecar delivers for.
#[derive(Debug)]
pub struct Subscription {
    pub pubsub: String,
    pub topic: String,
    pub routes: RouteTable,
    pub dead_letter_topic: Option<String>,
    pub raw_payload: bool,
    pub metadata: BTreeMap<String, String>,
    /// Batched delivery (`bulkSubscribe.enabled`), or one event per request.
    pub bulk: Option<BulkSettings>,
}

/// How a bulk subscription batches: a batch goes to the app when it holds `max_messages`
/// events or `max_await` after its first event arrived, whichever comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkSettings {
    pub max_messages: usize,
    pub max_await: Duration,
}

/// `bulkSubscribe` as the app's `/dapr/subscribe` answer or a Subscription gives it.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkSubscribeJson {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub max_messages_count: Option<i64>,
    #[serde(default)]
    pub max_await_duration_ms: Option<i64>,
}

impl BulkSubscribeJson {
    /// The batching it asks for; `None` when not enabled. Missing or non-positive limits take
    /// Dapr's defaults (100 events, 1000 ms).
    pub fn settings(&self) -> Option<BulkSettings> {
        if !self.enabled {
            return None;
        }
        let max_messages = self
            .max_messages_count
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| *n > 0)
            .unwrap_or(DEFAULT_BULK_MESSAGES);
        let max_await = self
            .max_await_duration_ms
            .and_then(|ms| u64::try_from(ms).ok())
            .filter(|ms| *ms > 0)
            .map_or(DEFAULT_BULK_AWAIT, Duration::from_millis);
        Some(BulkSettings {
            max_messages,
            max_await,
        })
    }
}

/// One element of the app's `/dapr/subscribe` answer.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionJson {
    pub pubsubname: String,
    pub topic: String,
    #[serde(default)]
    pub route: Option<String>,
    #[serde(default)]
    pub routes: Option<RoutesJson>,
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    pub dead_letter_topic: Option<String>,
    #[serde(default)]
    pub bulk_subscribe: Option<BulkSubscribeJson>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct RoutesJson {
    #[serde(default)]
    pub rules: Vec<RuleJson>,
    #[serde(default)]
    pub default: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct RuleJson {
    #[serde(default, rename = "match")]
    pub match_: String,
    pub path: String,
}

impl From<&tandem_crds::Subscription> for SubscriptionJson {
    /// A declarative Subscription (v1alpha1 `route` or v2alpha1 `routes`) in the app's shape.
    fn from(s: &tandem_crds::Subscription) -> Self {
        SubscriptionJson {
            pubsubname: s.spec.pubsubname.clone(),
            topic: s.spec.topic.clone(),
            route: s.spec.route.clone(),
            routes: s.spec.routes.as_ref().map(|r| RoutesJson {
                rules: r
                    .rules
                    .iter()
                    .map(|rule| RuleJson {
                        match_: rule.match_.clone(),
                        path: rule.path.clone(),
                    })
                    .collect(),
                default: r.default.clone(),
            }),
            metadata: Some(
                s.spec
                    .metadata
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            ),
            dead_letter_topic: s.spec.dead_letter_topic.clone(),
            bulk_subscribe: s.spec.bulk_subscribe.as_ref().map(|b| BulkSubscribeJson {
                enabled: b.enabled,
                max_messages_count: b.max_messages_count.map(i64::from),
                max_await_duration_ms: b.max_await_duration_ms.map(i64::from),
            }),
        }
    }
}

/// Parses the app's answer: an empty body means none.
pub fn parse_subscribe_answer(body: &[u8]) -> Result<Vec<SubscriptionJson>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    serde_json::from_slice(body)
        .map_err(|e| format!("GET /dapr/subscribe answered invalid JSON: {e}"))
}

impl TryFrom<SubscriptionJson> for Subscription {
    type Error = String;

    fn try_from(json: SubscriptionJson) -> Result<Self, String> {
        let name = format!("{}/{}", json.pubsubname, json.topic);
        if json.pubsubname.is_empty() || json.topic.is_empty() {
            return Err(format!("subscription {name:?} needs pubsubname and topic"));
        }
        // Metadata values may be any JSON; @dapr/dapr even sends strings quoted twice, which
        // `metadata_flag` tolerates when reading flags.
        let metadata: BTreeMap<String, String> = json
            .metadata
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
            .collect();
        let raw_payload = cloudevent::is_raw_payload(&metadata)
            .map_err(|e| format!("subscription {name:?}: {e}"))?;
        let (rules, default) = match json.routes {
            Some(routes) => (
                routes
                    .rules
                    .into_iter()
                    .map(|r| (r.match_, r.path))
                    .collect::<Vec<_>>(),
                routes.default.or(json.route),
            ),
            None => (Vec::new(), json.route),
        };
        let routes = RouteTable::compile(&rules, default)
            .map_err(|e| format!("subscription {name:?}: {e}"))?;
        let bulk = json
            .bulk_subscribe
            .as_ref()
            .and_then(BulkSubscribeJson::settings);
        Ok(Subscription {
            pubsub: json.pubsubname,
            topic: json.topic,
            routes,
            dead_letter_topic: json.dead_letter_topic.filter(|t| !t.is_empty()),
            raw_payload,
            metadata,
            bulk,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_sdks_send() {
        let body = br#"[{"pubsubname":"pubsub","topic":"a","route":"/pubsub--a--default"},
            {"pubsubname":"pubsub","topic":"b","metadata":{"rawPayload":"\"true\""},"route":"/b","deadLetterTopic":"dead"},
            {"pubsubname":"pubsub","topic":"c","routes":{"rules":[{"match":"event.type == \"x\"","path":"/x"}],"default":"/d"}}]"#;
        let subs: Vec<Subscription> = parse_subscribe_answer(body)
            .expect("valid")
            .into_iter()
            .map(Subscription::try_from)
            .collect::<Result<_, _>>()
            .expect("valid subscriptions");
        assert_eq!(subs.len(), 3);
        assert!(!subs[0].raw_payload && subs[1].raw_payload);
        assert_eq!(subs[1].dead_letter_topic.as_deref(), Some("dead"));
        assert_eq!(
            subs[2].routes.route(&serde_json::json!({"type": "x"})),
            Some("/x")
        );
        assert_eq!(
            subs[2].routes.route(&serde_json::json!({"type": "y"})),
            Some("/d")
        );
        assert!(parse_subscribe_answer(b"").expect("empty").is_empty());
        assert!(parse_subscribe_answer(b"{").is_err());
    }

    #[test]
    fn bulk_subscribe_takes_daprs_defaults() {
        let body = br#"[{"pubsubname":"p","topic":"a","route":"/a","bulkSubscribe":{"enabled":true}},
            {"pubsubname":"p","topic":"b","route":"/b","bulkSubscribe":{"enabled":true,"maxMessagesCount":7,"maxAwaitDurationMs":40}},
            {"pubsubname":"p","topic":"c","route":"/c","bulkSubscribe":{"enabled":false,"maxMessagesCount":7}},
            {"pubsubname":"p","topic":"d","route":"/d","bulkSubscribe":{"enabled":true,"maxMessagesCount":0,"maxAwaitDurationMs":-5}},
            {"pubsubname":"p","topic":"e","route":"/e"}]"#;
        let bulk: Vec<Option<BulkSettings>> = parse_subscribe_answer(body)
            .expect("valid")
            .into_iter()
            .map(|json| Subscription::try_from(json).expect("valid").bulk)
            .collect();
        let defaults = BulkSettings {
            max_messages: DEFAULT_BULK_MESSAGES,
            max_await: DEFAULT_BULK_AWAIT,
        };
        let small = BulkSettings {
            max_messages: 7,
            max_await: Duration::from_millis(40),
        };
        assert_eq!(
            bulk,
            [Some(defaults), Some(small), None, Some(defaults), None]
        );
    }

    #[test]
    fn declarative_bulk_subscribe_is_read() {
        let declared: tandem_crds::Subscription = serde_norway::from_str(
            "apiVersion: dapr.io/v2alpha1\nkind: Subscription\nmetadata: {name: s}\nspec:\n  topic: orders\n  pubsubname: pubsub\n  routes: {default: /orders}\n  bulkSubscribe: {enabled: true, maxMessagesCount: 10, maxAwaitDurationMs: 50}\n",
        )
        .expect("v2 manifest");
        let sub = Subscription::try_from(SubscriptionJson::from(&declared)).expect("valid");
        assert_eq!(
            sub.bulk,
            Some(BulkSettings {
                max_messages: 10,
                max_await: Duration::from_millis(50),
            })
        );
    }

    #[test]
    fn invalid_rules_name_the_subscription() {
        let json = parse_subscribe_answer(br#"[{"pubsubname":"p","topic":"t","routes":{"rules":[{"match":"event.type ==","path":"/x"}]}}]"#)
            .expect("valid json");
        let err = json
            .into_iter()
            .map(Subscription::try_from)
            .next()
            .expect("one")
            .expect_err("bad CEL");
        assert!(err.contains("p/t"), "{err}");
    }
}
