//! `spec.api.allowed` / `spec.api.denied`: which of its sidecar's APIs an app may call, by
//! endpoint group and version (`state` + `v1.0`, `publish` + `v1alpha1` on gRPC, …). A pure
//! decision per request path. As in daprd: the deny list wins; a non-empty allow list allows
//! only what it names; health is always allowed; HTTP rules (protocol `http`, also when the
//! protocol is left out) and gRPC rules (protocol `grpc`) apply to their own front end.

use tandem_crds::access_control::{ApiRule, ApiSpec};

/// A checked `spec.api`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApiAccess {
    http: Lists,
    grpc: Lists,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Lists {
    allowed: Vec<(String, String)>,
    denied: Vec<(String, String)>,
}

impl Lists {
    fn permits(&self, group: &str, version: &str) -> bool {
        let named =
            |list: &[(String, String)]| list.iter().any(|(g, v)| g == group && v == version);
        if named(&self.denied) {
            return false;
        }
        self.allowed.is_empty() || named(&self.allowed)
    }

    fn is_empty(&self) -> bool {
        self.allowed.is_empty() && self.denied.is_empty()
    }
}

/// `v1.0` and `v1` are one version; so are `v1.0-alpha1` and `v1alpha1`.
fn version(v: &str) -> String {
    let v = v.trim().to_ascii_lowercase();
    match v.strip_prefix("v1.0") {
        Some(rest) => format!("v1{}", rest.trim_start_matches('-')),
        None => v,
    }
}

/// The gRPC methods of each group, as daprd lists them (methods under `dapr.proto.runtime.v1.Dapr`).
const GRPC_GROUPS: &[(&str, &str, &[&str])] = &[
    ("invoke", "v1", &["InvokeService"]),
    (
        "state",
        "v1",
        &[
            "GetState",
            "GetBulkState",
            "SaveState",
            "DeleteState",
            "DeleteBulkState",
            "ExecuteStateTransaction",
        ],
    ),
    ("state", "v1alpha1", &["QueryStateAlpha1"]),
    ("publish", "v1", &["PublishEvent", "BulkPublishEvent"]),
    ("publish", "v1alpha1", &["BulkPublishEventAlpha1"]),
    ("subscribe", "v1alpha1", &["SubscribeTopicEventsAlpha1"]),
    ("bindings", "v1", &["InvokeBinding"]),
    ("secrets", "v1", &["GetSecret", "GetBulkSecret"]),
    (
        "actors",
        "v1",
        &[
            "RegisterActorTimer",
            "UnregisterActorTimer",
            "RegisterActorReminder",
            "GetActorReminder",
            "UnregisterActorReminder",
            "UnregisterActorRemindersByType",
            "ListActorReminders",
            "GetActorState",
            "ExecuteActorStateTransaction",
            "InvokeActor",
        ],
    ),
    ("metadata", "v1", &["GetMetadata", "SetMetadata"]),
    (
        "configuration",
        "v1alpha1",
        &[
            "GetConfigurationAlpha1",
            "SubscribeConfigurationAlpha1",
            "UnsubscribeConfigurationAlpha1",
        ],
    ),
    (
        "configuration",
        "v1",
        &[
            "GetConfiguration",
            "SubscribeConfiguration",
            "UnsubscribeConfiguration",
        ],
    ),
    ("lock", "v1alpha1", &["TryLockAlpha1"]),
    ("unlock", "v1alpha1", &["UnlockAlpha1"]),
    ("shutdown", "v1", &["Shutdown"]),
];

const GRPC_PREFIX: &str = "/dapr.proto.runtime.v1.Dapr/";

impl ApiAccess {
    /// Checks a Configuration's `api`; `None` when it restricts nothing.
    pub fn compile(spec: Option<&ApiSpec>) -> Result<Option<ApiAccess>, String> {
        let Some(spec) = spec else { return Ok(None) };
        let mut access = ApiAccess::default();
        let mut add = |rules: &[ApiRule], allowed: bool| -> Result<(), String> {
            for rule in rules {
                let protocol = rule
                    .protocol
                    .as_deref()
                    .unwrap_or("http")
                    .to_ascii_lowercase();
                let lists = match protocol.as_str() {
                    "http" | "" => &mut access.http,
                    "grpc" => &mut access.grpc,
                    other => {
                        return Err(format!("spec.api: protocol {other:?} is not http or grpc"));
                    }
                };
                let entry = (rule.name.to_ascii_lowercase(), version(&rule.version));
                match allowed {
                    true => lists.allowed.push(entry),
                    false => lists.denied.push(entry),
                }
            }
            Ok(())
        };
        add(&spec.allowed, true)?;
        add(&spec.denied, false)?;
        Ok((!(access.http.is_empty() && access.grpc.is_empty())).then_some(access))
    }

    /// Whether the HTTP API serves `path`. Paths outside the versioned API (invocation by the
    /// `dapr-app-id` header) belong to `invoke` `v1`.
    pub fn http_permits(&self, path: &str) -> bool {
        let mut segments = path.split('/').filter(|s| !s.is_empty());
        let (group, v) = match (segments.next(), segments.next()) {
            (Some(v), Some(group)) if v.starts_with("v1") => {
                (group.to_ascii_lowercase(), version(v))
            }
            _ => ("invoke".to_owned(), "v1".to_owned()),
        };
        group == "healthz" || self.http.permits(&group, &v)
    }

    /// Whether the gRPC API serves `full_method` (`/package.Service/Method`); only Dapr's own
    /// service is filtered, as in daprd.
    pub fn grpc_permits(&self, full_method: &str) -> bool {
        let Some(method) = full_method.strip_prefix(GRPC_PREFIX) else {
            return true;
        };
        if self.grpc.is_empty() {
            return true;
        }
        let group = GRPC_GROUPS
            .iter()
            .find(|(_, _, methods)| methods.contains(&method));
        match group {
            Some((g, v, _)) => self.grpc.permits(g, v),
            // Methods no group names: only without an allow list.
            None => self.grpc.allowed.is_empty(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(value: serde_json::Value) -> ApiSpec {
        serde_json::from_value(value).expect("the shape of spec.api")
    }

    fn access(value: serde_json::Value) -> ApiAccess {
        ApiAccess::compile(Some(&spec(value)))
            .expect("valid")
            .expect("restricts")
    }

    #[test]
    fn nothing_to_restrict() {
        assert_eq!(ApiAccess::compile(None), Ok(None));
        assert_eq!(ApiAccess::compile(Some(&spec(json!({})))), Ok(None));
        assert!(
            ApiAccess::compile(Some(&spec(
                json!({"denied": [{"name": "state", "version": "v1", "protocol": "ftp"}]})
            )))
            .is_err()
        );
    }

    #[test]
    fn http_groups_and_versions() {
        let a = access(
            json!({"denied": [{"name": "state", "version": "v1.0", "protocol": "http"}, {"name": "publish", "version": "v1.0-alpha1"}]}),
        );
        let cases = [
            ("/v1.0/state/store/key", false),
            ("/v1.0-alpha1/state/store/query", true),
            ("/v1.0/publish/ps/topic", true),
            ("/v1.0-alpha1/publish/bulk/ps/topic", false),
            ("/v1.0/invoke/b/method/x", true),
            ("/v1.0/healthz", true),
        ];
        for (path, want) in cases {
            assert_eq!(a.http_permits(path), want, "{path}");
        }
        let only = access(json!({"allowed": [{"name": "state", "version": "v1"}]}));
        let cases = [
            ("/v1.0/state/s/k", true),
            ("/v1.0/secrets/s/k", false),
            ("/v1.0/invoke/b/method/x", false),
            ("/anything", false),
            ("/v1.0/healthz/outbound", true),
        ];
        for (path, want) in cases {
            assert_eq!(only.http_permits(path), want, "{path}");
        }
        assert!(
            only.grpc_permits("/dapr.proto.runtime.v1.Dapr/GetSecret"),
            "HTTP rules leave gRPC alone"
        );
    }

    #[test]
    fn grpc_groups() {
        let a = access(json!({"denied": [{"name": "state", "version": "v1", "protocol": "grpc"}]}));
        assert!(!a.grpc_permits("/dapr.proto.runtime.v1.Dapr/GetState"));
        assert!(a.grpc_permits("/dapr.proto.runtime.v1.Dapr/QueryStateAlpha1"));
        assert!(a.grpc_permits("/dapr.proto.runtime.v1.Dapr/PublishEvent"));
        assert!(
            a.grpc_permits("/my.App/Anything"),
            "proxied app services are not Dapr's"
        );
        assert!(
            a.http_permits("/v1.0/state/s/k"),
            "gRPC rules leave HTTP alone"
        );
        let only =
            access(json!({"allowed": [{"name": "publish", "version": "v1", "protocol": "grpc"}]}));
        assert!(only.grpc_permits("/dapr.proto.runtime.v1.Dapr/PublishEvent"));
        assert!(!only.grpc_permits("/dapr.proto.runtime.v1.Dapr/GetState"));
        assert!(!only.grpc_permits("/dapr.proto.runtime.v1.Dapr/SomethingNew"));
    }
}
