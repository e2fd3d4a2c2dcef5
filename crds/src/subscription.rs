//! `Subscription`: a declarative pub/sub subscription. `v1alpha1` has a single `route`;
//! `v2alpha1` has `routes.rules[{match, path}]` and `routes.default`. Both are read into one type.

use crate::meta::ObjectMeta;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const KIND: &str = "Subscription";

/// A Dapr Subscription manifest (either version).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    pub spec: SubscriptionSpec,
    /// App ids this subscription applies to; empty means every app.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
}

/// `spec` of a Subscription.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionSpec {
    /// The pub/sub component's name.
    pub pubsubname: String,
    /// The topic to subscribe to.
    pub topic: String,
    /// `v1alpha1`: the app route every event of the topic goes to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// `v2alpha1`: CEL rules choosing the route per event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes: Option<Routes>,
    /// Subscription metadata passed to the broker (for example `rawPayload`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// Where messages go when delivery retries run out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_topic: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bulk_subscribe: Option<BulkSubscribe>,
}

/// `routes` of a v2alpha1 Subscription.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Routes {
    #[serde(default)]
    pub rules: Vec<Rule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

/// One routing rule: events matching the CEL expression `match` go to `path`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    #[serde(rename = "match")]
    pub match_: String,
    pub path: String,
}

/// `bulkSubscribe` of a Subscription.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkSubscribe {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_messages_count: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_await_duration_ms: Option<i32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_v1_and_v2_manifests() {
        let v1: Subscription = serde_norway::from_str(
            "apiVersion: dapr.io/v1alpha1\nkind: Subscription\nmetadata: {name: s}\nspec: {topic: orders, route: /orders, pubsubname: pubsub}\nscopes: [app1]\n",
        )
        .expect("v1");
        assert_eq!(v1.spec.route.as_deref(), Some("/orders"));
        let v2: Subscription = serde_norway::from_str(
            "apiVersion: dapr.io/v2alpha1\nkind: Subscription\nmetadata: {name: s}\nspec:\n  topic: orders\n  pubsubname: pubsub\n  routes:\n    rules:\n    - match: event.type == \"x\"\n      path: /x\n    default: /d\n",
        )
        .expect("v2");
        let routes = v2.spec.routes.expect("routes");
        assert_eq!(routes.rules[0].match_, "event.type == \"x\"");
        assert_eq!(routes.default.as_deref(), Some("/d"));
    }
}
