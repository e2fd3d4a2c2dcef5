//! Which topics the app subscribes to: programmatically (the app's `GET /dapr/subscribe`
//! answer, read once the app is reachable). Each becomes a [`Subscription`] with its routes
//! compiled; one with an invalid CEL rule is refused with a message naming it.

use super::cloudevent;
use super::routing::RouteTable;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// A subscription the sidecar delivers for.
#[derive(Debug)]
pub struct Subscription {
    pub pubsub: String,
    pub topic: String,
    pub routes: RouteTable,
    pub dead_letter_topic: Option<String>,
    pub raw_payload: bool,
    pub metadata: BTreeMap<String, String>,
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
        Ok(Subscription {
            pubsub: json.pubsubname,
            topic: json.topic,
            routes,
            dead_letter_topic: json.dead_letter_topic.filter(|t| !t.is_empty()),
            raw_payload,
            metadata,
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
