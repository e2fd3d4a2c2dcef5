//! `Subscription`: a declarative pub/sub subscription. `v1alpha1` has a single `route`;
//! `v2alpha1` has `routes.rules[{match, path}]` and `routes.default`. Both are read into one type,
//! which `kube::Api` serves at the storage version, v2alpha1.

use crate::crd::{self, Version};
use crate::meta::ObjectMeta;
use crate::status::Status;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceConversion, CustomResourceDefinition, JSONSchemaProps,
};
use kube::core::crd::CustomResourceExt;
use kube::core::dynamic::ApiResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const KIND: &str = "Subscription";
/// The version objects are stored at, and the one `kube::Api<Subscription>` reads and writes.
pub const STORAGE_VERSION: &str = "v2alpha1";
/// The older version, still served for manifests written against it.
pub const LEGACY_VERSION: &str = "v1alpha1";

/// A Dapr Subscription: the app route(s) that events of a topic are delivered to.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = crate::crd::without_defaults)]
pub struct Subscription {
    /// `dapr.io/v2alpha1` or `dapr.io/v1alpha1`.
    #[serde(default)]
    pub api_version: String,
    /// `Subscription`.
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    #[schemars(schema_with = "crd::object_meta")]
    pub metadata: ObjectMeta,
    pub spec: SubscriptionSpec,
    /// App ids this subscription applies to; empty means every app.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Written by the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
}

dapr_resource!(Subscription {
    kind: KIND,
    version: STORAGE_VERSION,
    plural: "subscriptions",
    spec: SubscriptionSpec,
});

impl CustomResourceExt for Subscription {
    /// Both versions, v2alpha1 stored. The conversion strategy is `None` (the apiserver only
    /// rewrites `apiVersion`) until the operator serves Dapr's conversion webhook, which moves
    /// v1alpha1's `route` to `routes.default`. Until then the v2alpha1 schema keeps `route` too:
    /// the apiserver prunes an object with the storage version's schema when it stores it, so
    /// without `route` there a v1alpha1 object's route would be dropped for good (seen on
    /// kube-apiserver 1.20). Tandem's readers accept `route` in either version.
    fn crd() -> CustomResourceDefinition {
        let v2 = crd::structural_schema::<Subscription>();
        let v1 = without_routes(v2.clone());
        let versions = vec![
            Version {
                name: LEGACY_VERSION,
                schema: v1,
                storage: false,
            },
            Version {
                name: STORAGE_VERSION,
                schema: v2,
                storage: true,
            },
        ];
        let conversion = CustomResourceConversion {
            strategy: "None".to_owned(),
            webhook: None,
        };
        crd::definition(KIND, "subscriptions", versions, Some(conversion))
    }
    fn crd_name() -> &'static str {
        "subscriptions.dapr.io"
    }
    fn api_resource() -> ApiResource {
        ApiResource::erase::<Self>(&())
    }
    fn shortnames() -> &'static [&'static str] {
        &[]
    }
}

/// The v1alpha1 schema: v2alpha1's without `spec.routes`, which v1alpha1 does not have.
fn without_routes(mut schema: JSONSchemaProps) -> JSONSchemaProps {
    let spec = schema
        .properties
        .as_mut()
        .and_then(|properties| properties.get_mut("spec"));
    if let Some(properties) = spec.and_then(|spec| spec.properties.as_mut()) {
        properties.remove("routes");
    }
    schema
}

/// `spec` of a Subscription.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionSpec {
    /// The pub/sub component's name.
    pub pubsubname: String,
    /// The topic to subscribe to.
    pub topic: String,
    /// `v1alpha1`: the app route every event of the topic goes to (read as `routes.default`).
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
    /// Deliver events to the app in batches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bulk_subscribe: Option<BulkSubscribe>,
}

/// `routes` of a v2alpha1 Subscription.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Routes {
    /// Checked in order; the first rule whose `match` is true picks the path.
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// The path for events no rule matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

/// One routing rule: events matching the CEL expression `match` go to `path`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Rule {
    /// A CEL expression over the CloudEvent, for example `event.type == "order"`.
    #[serde(rename = "match")]
    pub match_: String,
    /// The app route matching events go to.
    pub path: String,
}

/// `bulkSubscribe` of a Subscription.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BulkSubscribe {
    /// Deliver in batches.
    #[serde(default)]
    pub enabled: bool,
    /// The most events in one batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_messages_count: Option<i32>,
    /// The longest a batch waits to fill, in milliseconds.
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
