//! Configuration rules: `tracing.samplingRate` is a number in [0, 1], every access-control action
//! (`defaultAction` at the top, per policy, and per operation `action`) is `allow` or `deny`,
//! every access-control policy names its `appId`, `trustDomain` and `namespace` (the sidecar
//! refuses to start otherwise, as daprd), every secret scope's `defaultAccess` is `allow` or
//! `deny`, and every `spec.api` rule has a name and an `http`/`grpc` protocol. Every problem is
//! reported, the first one's reason on the condition.

use super::{Context, Labelled, Validate};
use crate::cache::Shared;
use crate::conditions::{Reason, Verdict};
use crate::error::Result;
use kube::runtime::Controller;
use tandem_crds::configuration::AccessControlSpec;
use tandem_crds::{Configuration, Status};

/// The verdict on one Configuration.
pub fn configuration_verdict(configuration: &Configuration) -> Verdict {
    let spec = &configuration.spec;
    let mut problems: Vec<(Reason, String)> = Vec::new();
    let rate = spec
        .tracing
        .as_ref()
        .and_then(|t| t.sampling_rate.as_deref());
    if let Some(rate) = rate
        && !valid_sampling_rate(rate)
    {
        problems.push((
            Reason::InvalidSamplingRate,
            format!(
                "spec.tracing.samplingRate {rate:?} must be a number from 0 to 1 (\"1\" samples \
                 every request, \"0\" turns tracing off)"
            ),
        ));
    }
    if let Some(access) = &spec.access_control {
        let found = access_control_problems(access);
        problems.extend(found.into_iter().map(|m| (Reason::InvalidAccessControl, m)));
    }
    if let Some(api) = &spec.api {
        let rules = [("allowed", &api.allowed), ("denied", &api.denied)];
        for (list, rules) in rules {
            for (i, rule) in rules.iter().enumerate() {
                let protocol = rule.protocol.as_deref().unwrap_or("http");
                if rule.name.is_empty() || !matches!(protocol, "http" | "grpc" | "") {
                    problems.push((
                        Reason::InvalidApi,
                        format!(
                            "spec.api.{list}[{i}] needs a name and the protocol http or grpc \
                             (name {:?}, protocol {protocol:?})",
                            rule.name
                        ),
                    ));
                }
            }
        }
    }
    let scopes = spec.secrets.iter().flat_map(|s| s.scopes.iter());
    for (i, scope) in scopes.enumerate() {
        if let Some(access) = scope.default_access.as_deref()
            && !is_action(access)
        {
            problems.push((
                Reason::InvalidSecretScope,
                format!(
                    "spec.secrets.scopes[{i}].defaultAccess {access:?} (store {:?}) must be \
                     \"allow\" or \"deny\"",
                    scope.store_name
                ),
            ));
        }
    }
    match problems.first() {
        None => {
            Verdict::valid("tracing, access control, API lists and secret scopes are well-formed")
        }
        Some((reason, _)) => {
            let messages: Vec<_> = problems.iter().map(|(_, m)| m.as_str()).collect();
            Verdict::invalid(*reason, messages.join("; "))
        }
    }
}

/// A decimal in [0, 1], as the sidecar parses it.
pub fn valid_sampling_rate(rate: &str) -> bool {
    rate.trim()
        .parse::<f64>()
        .is_ok_and(|r| r.is_finite() && (0.0..=1.0).contains(&r))
}

/// `allow` or `deny`, in any case (how the sidecar compares them).
fn is_action(value: &str) -> bool {
    value.eq_ignore_ascii_case("allow") || value.eq_ignore_ascii_case("deny")
}

/// What is wrong with `spec.accessControl`.
fn access_control_problems(access: &AccessControlSpec) -> Vec<String> {
    let mut problems = Vec::new();
    let mut actions = vec![(
        "spec.accessControl.defaultAction".to_owned(),
        access.default_action.as_deref(),
    )];
    for (i, policy) in access.policies.iter().enumerate() {
        let path = format!("spec.accessControl.policies[{i}]");
        let missing: Vec<&str> = [
            ("appId", Some(policy.app_id.as_str())),
            ("trustDomain", policy.trust_domain.as_deref()),
            ("namespace", policy.namespace.as_deref()),
        ]
        .into_iter()
        .filter(|(_, v)| v.is_none_or(str::is_empty))
        .map(|(k, _)| k)
        .collect();
        if !missing.is_empty() {
            problems.push(format!("{path} needs {}", missing.join(", ")));
        }
        actions.push((
            format!("{path}.defaultAction"),
            policy.default_action.as_deref(),
        ));
        for (j, operation) in policy.operations.iter().enumerate() {
            actions.push((
                format!("{path}.operations[{j}].action"),
                Some(operation.action.as_str()),
            ));
        }
    }
    for (path, action) in actions {
        if let Some(action) = action
            && !is_action(action)
        {
            problems.push(format!("{path} {action:?} must be \"allow\" or \"deny\""));
        }
    }
    problems
}

/// Configurations (from the shared cache); they reference nothing else.
pub(crate) fn controller(configurations: &Shared<Configuration>) -> Controller<Configuration> {
    Controller::for_shared_stream(configurations.applied(), configurations.store())
}

impl Labelled for Configuration {
    const LABEL: &'static str = "configuration";
}

impl Validate for Configuration {
    fn status(&self) -> Option<&Status> {
        self.status.as_ref()
    }

    async fn verdict(&self, _ctx: &Context) -> Result<Verdict> {
        Ok(configuration_verdict(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn configuration(spec: Value) -> Configuration {
        serde_json::from_value(json!({
            "apiVersion": "dapr.io/v1alpha1",
            "kind": "Configuration",
            "metadata": {"name": "appconfig", "namespace": "prod"},
            "spec": spec,
        }))
        .expect("a Configuration")
    }

    #[test]
    fn sampling_rates() {
        for good in ["0", "1", "0.5", " 0.25", "1.0", "0.0001"] {
            assert!(valid_sampling_rate(good), "{good:?}");
        }
        for bad in ["2", "-0.1", "", "half", "NaN", "inf", "1.01"] {
            assert!(!valid_sampling_rate(bad), "{bad:?}");
        }
    }

    #[test]
    fn verdicts() {
        let access = |default: &str, policy: &str, op: &str| {
            json!({"accessControl": {
                "defaultAction": default,
                "policies": [{"appId": "a", "defaultAction": policy,
                              "trustDomain": "public", "namespace": "prod",
                              "operations": [{"name": "/x", "action": op}]}],
            }})
        };
        let scope = |access: &str| json!({"secrets": {"scopes": [{"storeName": "k", "defaultAccess": access}]}});
        let cases = [
            (json!({}), Reason::Valid),
            (json!({"tracing": {"samplingRate": "1"}}), Reason::Valid),
            (
                json!({"tracing": {"samplingRate": "2"}}),
                Reason::InvalidSamplingRate,
            ),
            (
                json!({"tracing": {"samplingRate": "abc"}}),
                Reason::InvalidSamplingRate,
            ),
            (access("allow", "deny", "Allow"), Reason::Valid),
            (
                access("permit", "deny", "allow"),
                Reason::InvalidAccessControl,
            ),
            (
                access("deny", "maybe", "allow"),
                Reason::InvalidAccessControl,
            ),
            (access("deny", "deny", "yes"), Reason::InvalidAccessControl),
            (
                json!({"accessControl": {"policies": [{"appId": "a", "trustDomain": "public"}]}}),
                Reason::InvalidAccessControl,
            ),
            (
                json!({"api": {"denied": [{"name": "state", "version": "v1", "protocol": "grpc"}]}}),
                Reason::Valid,
            ),
            (
                json!({"api": {"allowed": [{"name": "state", "version": "v1", "protocol": "ftp"}]}}),
                Reason::InvalidApi,
            ),
            (scope("deny"), Reason::Valid),
            (scope("open"), Reason::InvalidSecretScope),
        ];
        for (spec, want) in cases {
            let verdict = configuration_verdict(&configuration(spec.clone()));
            assert_eq!(verdict.reason, want, "{spec}: {}", verdict.message);
        }
    }

    #[test]
    fn every_problem_is_listed_and_the_first_gives_the_reason() {
        let spec = json!({
            "tracing": {"samplingRate": "2"},
            "accessControl": {"defaultAction": "permit"},
            "secrets": {"scopes": [{"storeName": "vault", "defaultAccess": "open"}]},
        });
        let verdict = configuration_verdict(&configuration(spec));
        assert_eq!(verdict.reason, Reason::InvalidSamplingRate);
        for part in [
            "samplingRate \"2\"",
            "spec.accessControl.defaultAction \"permit\"",
            "spec.secrets.scopes[0].defaultAccess \"open\" (store \"vault\")",
        ] {
            assert!(
                verdict.message.contains(part),
                "{part}: {}",
                verdict.message
            );
        }
    }
}
