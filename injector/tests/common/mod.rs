//! Fixtures shared by the injector's tests: a default config, pod builders and AdmissionReviews
//! in the shape kube-apiserver sends.

#![allow(dead_code, reason = "each test binary uses a subset")]
#![allow(clippy::unwrap_used, reason = "tests may unwrap")]

use clap::Parser;
use serde_json::{Value, json};
use tandem_injector::{Args, InjectorConfig};

pub fn config() -> InjectorConfig {
    config_with(&[])
}

pub fn config_with(flags: &[&str]) -> InjectorConfig {
    let args =
        Args::try_parse_from(std::iter::once("tandem-injector").chain(flags.iter().copied()))
            .unwrap();
    InjectorConfig::from_args(args, None).unwrap()
}

/// A pod as JSON, the way a ReplicaSet controller creates it (no name yet on some paths).
#[derive(Clone)]
pub struct PodBuilder {
    pod: Value,
}

impl PodBuilder {
    pub fn new(name: &str) -> PodBuilder {
        PodBuilder {
            pod: json!({
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name, "namespace": "shop", "annotations": {}},
                "spec": {"containers": [{"name": "app", "image": "shop:1"}]},
            }),
        }
    }

    pub fn dapr(name: &str, app_id: &str) -> PodBuilder {
        PodBuilder::new(name)
            .annotation("dapr.io/enabled", "true")
            .annotation("dapr.io/app-id", app_id)
    }

    pub fn annotation(mut self, key: &str, value: &str) -> PodBuilder {
        self.pod["metadata"]["annotations"][key] = json!(value);
        self
    }

    pub fn container(mut self, name: &str) -> PodBuilder {
        self.pod["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": name, "image": "x:1"}));
        self
    }

    pub fn init_container(mut self, name: &str) -> PodBuilder {
        self.pod["spec"]["initContainers"] = json!([{"name": name, "image": "x:1"}]);
        self
    }

    pub fn volume(mut self, name: &str) -> PodBuilder {
        let volumes = self.pod["spec"]
            .as_object_mut()
            .unwrap()
            .entry("volumes")
            .or_insert(json!([]));
        volumes
            .as_array_mut()
            .unwrap()
            .push(json!({"name": name, "emptyDir": {}}));
        self
    }

    pub fn label(mut self, key: &str, value: &str) -> PodBuilder {
        self.pod["metadata"]["labels"][key] = json!(value);
        self
    }

    pub fn app_env(mut self, name: &str, value: &str) -> PodBuilder {
        self.pod["spec"]["containers"][0]["env"] = json!([{"name": name, "value": value}]);
        self
    }

    pub fn json(&self) -> Value {
        self.pod.clone()
    }

    pub fn pod(&self) -> k8s_openapi::api::core::v1::Pod {
        serde_json::from_value(self.pod.clone()).unwrap()
    }
}

/// The replicaset controller, as kube-apiserver names it in `userInfo`.
pub fn controller() -> Value {
    json!({
        "username": "system:serviceaccount:kube-system:replicaset-controller",
        "uid": "1b7ad8d2-3f0b-4a40-9c3b-3b1c1b9c3a41",
        "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"],
    })
}

pub fn user(username: &str, groups: &[&str]) -> Value {
    json!({"username": username, "groups": groups})
}

/// An AdmissionReview for a pod CREATE, as kube-apiserver v1.20 sends it.
pub fn review(api_version: &str, uid: &str, object: Value, user_info: Value) -> Value {
    json!({
        "kind": "AdmissionReview",
        "apiVersion": api_version,
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "shop",
            "operation": "CREATE",
            "userInfo": user_info,
            "object": object,
            "oldObject": null,
            "dryRun": false,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"},
        },
    })
}

/// The pod with the response's patch applied.
pub fn apply_response(pod: &Value, response: &Value) -> Value {
    use base64::Engine;
    let mut pod = pod.clone();
    if let Some(patch) = response["response"]["patch"].as_str() {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(patch)
            .unwrap();
        let patch: json_patch::Patch = serde_json::from_slice(&bytes).unwrap();
        json_patch::patch(&mut pod, &patch).unwrap();
    }
    pod
}
