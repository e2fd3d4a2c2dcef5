//! Least privilege, judged on rendered roles: what a rule may grant, as a pure function that tests
//! feed the chart's ClusterRoles and Roles (and known-bad rules, to show it catches them).

use k8s_openapi::api::rbac::v1::PolicyRule;

/// Where a role applies: cluster-wide (ClusterRole) or in the release namespace (Role).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Cluster,
    Namespace,
}

/// Verbs that only read.
const READ: &[&str] = &["get", "list", "watch"];

/// Verbs that grant more than the named resource: never allowed.
const ESCALATING: &[&str] = &["escalate", "bind", "impersonate", "deletecollection"];

/// Writes allowed without resourceNames: (scope, apiGroup, resource, verbs). `create` cannot be
/// limited by name, and the operator owns the `<app-id>-dapr` Services it creates.
const UNNAMED_WRITES: &[(Option<Scope>, &str, &str, &[&str])] = &[
    (None, "", "events", &["create", "patch"]),
    (None, "events.k8s.io", "events", &["create", "patch"]),
    (
        Some(Scope::Cluster),
        "",
        "services",
        &["create", "patch", "update", "delete"],
    ),
    (
        Some(Scope::Cluster),
        "dapr.io",
        "components/status",
        &["patch"],
    ),
    (
        Some(Scope::Cluster),
        "dapr.io",
        "configurations/status",
        &["patch"],
    ),
    (
        Some(Scope::Cluster),
        "dapr.io",
        "subscriptions/status",
        &["patch"],
    ),
    (
        Some(Scope::Cluster),
        "authentication.k8s.io",
        "tokenreviews",
        &["create"],
    ),
    (Some(Scope::Namespace), "", "secrets", &["create"]),
    (Some(Scope::Namespace), "", "configmaps", &["create"]),
    (
        Some(Scope::Namespace),
        "coordination.k8s.io",
        "leases",
        &["create"],
    ),
];

/// Resources that may only be granted by name, whatever the verb.
const NAMED_ONLY: &[(&str, &str)] = &[
    (
        "admissionregistration.k8s.io",
        "mutatingwebhookconfigurations",
    ),
    (
        "admissionregistration.k8s.io",
        "validatingwebhookconfigurations",
    ),
    ("apiextensions.k8s.io", "customresourcedefinitions"),
];

/// What is wrong with `rules` of the role `role`, one line per grant; empty when nothing is.
pub fn violations(role: &str, scope: Scope, rules: &[PolicyRule]) -> Vec<String> {
    let mut found = Vec::new();
    for (index, rule) in rules.iter().enumerate() {
        let mut flag = |what: String| found.push(format!("{role} rule {index}: {what}"));
        if rule
            .non_resource_urls
            .as_ref()
            .is_some_and(|u| !u.is_empty())
        {
            flag("grants nonResourceURLs".to_owned());
        }
        let groups = rule.api_groups.as_deref().unwrap_or_default();
        let resources = rule.resources.as_deref().unwrap_or_default();
        let named = rule.resource_names.as_ref().is_some_and(|n| !n.is_empty());
        for list in [groups, resources, &rule.verbs] {
            if list.iter().any(|entry| entry.contains('*')) {
                flag(format!("wildcard in {list:?}"));
            }
        }
        for verb in &rule.verbs {
            if ESCALATING.contains(&verb.as_str()) {
                flag(format!("verb {verb}"));
            }
        }
        for group in groups {
            for resource in resources {
                if NAMED_ONLY.contains(&(group.as_str(), resource.as_str())) && !named {
                    flag(format!("{group}/{resource} without resourceNames"));
                }
                if resource == "secrets" && scope == Scope::Cluster {
                    let writes: Vec<_> = rule
                        .verbs
                        .iter()
                        .filter(|v| !READ.contains(&v.as_str()))
                        .collect();
                    if !writes.is_empty() {
                        flag(format!("cluster-wide secrets {writes:?}"));
                    }
                }
                if named {
                    continue;
                }
                for verb in rule.verbs.iter().filter(|v| !READ.contains(&v.as_str())) {
                    if !unnamed_write_allowed(scope, group, resource, verb) {
                        flag(format!(
                            "{verb} on {group}/{resource} without resourceNames"
                        ));
                    }
                }
            }
        }
    }
    found
}

fn unnamed_write_allowed(scope: Scope, group: &str, resource: &str, verb: &str) -> bool {
    UNNAMED_WRITES.iter().any(|(s, g, r, verbs)| {
        s.is_none_or(|s| s == scope) && *g == group && *r == resource && verbs.contains(&verb)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a test fails on what it unwraps")]
mod tests {
    use super::*;

    fn rule(group: &str, resource: &str, verbs: &[&str], names: &[&str]) -> PolicyRule {
        let strings = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        PolicyRule {
            api_groups: Some(strings(&[group])),
            resources: Some(strings(&[resource])),
            verbs: strings(verbs),
            resource_names: (!names.is_empty()).then(|| strings(names)),
            non_resource_urls: None,
        }
    }

    #[test]
    fn judges_each_grant() {
        use Scope::{Cluster, Namespace};
        let table: &[(Scope, PolicyRule, bool)] = &[
            (
                Cluster,
                rule("", "secrets", &["get", "list", "watch"], &[]),
                true,
            ),
            (
                Cluster,
                rule("", "secrets", &["get", "update"], &["x"]),
                false,
            ),
            (Cluster, rule("", "secrets", &["create"], &[]), false),
            (Namespace, rule("", "secrets", &["create"], &[]), true),
            (Namespace, rule("", "secrets", &["update"], &[]), false),
            (
                Namespace,
                rule("", "secrets", &["get", "update"], &["tls"]),
                true,
            ),
            (Cluster, rule("", "*", &["get"], &[]), false),
            (Cluster, rule("apps", "deployments", &["*"], &[]), false),
            (Cluster, rule("*", "pods", &["get"], &[]), false),
            (
                Cluster,
                rule("", "pods", &["get", "list", "watch"], &[]),
                true,
            ),
            (Cluster, rule("", "pods", &["delete"], &[]), false),
            (
                Cluster,
                rule("", "services", &["create", "delete"], &[]),
                true,
            ),
            (
                Cluster,
                rule(
                    "rbac.authorization.k8s.io",
                    "clusterroles",
                    &["escalate"],
                    &["a"],
                ),
                false,
            ),
            (
                Cluster,
                rule(
                    "admissionregistration.k8s.io",
                    "mutatingwebhookconfigurations",
                    &["get", "patch"],
                    &["tandem-sidecar-injector"],
                ),
                true,
            ),
            (
                Cluster,
                rule(
                    "admissionregistration.k8s.io",
                    "mutatingwebhookconfigurations",
                    &["get"],
                    &[],
                ),
                false,
            ),
            (
                Cluster,
                rule(
                    "apiextensions.k8s.io",
                    "customresourcedefinitions",
                    &["get", "patch"],
                    &[],
                ),
                false,
            ),
            (
                Namespace,
                rule("coordination.k8s.io", "leases", &["create"], &[]),
                true,
            ),
            (
                Namespace,
                rule("coordination.k8s.io", "leases", &["update"], &[]),
                false,
            ),
        ];
        for (scope, rule, ok) in table {
            let found = violations("r", *scope, std::slice::from_ref(rule));
            assert_eq!(found.is_empty(), *ok, "{scope:?} {rule:?}: {found:?}");
        }
    }

    #[test]
    fn non_resource_urls_are_refused() {
        let rule = PolicyRule {
            non_resource_urls: Some(vec!["/metrics".into()]),
            verbs: vec!["get".into()],
            ..PolicyRule::default()
        };
        assert_eq!(violations("r", Scope::Cluster, &[rule]).len(), 1);
    }
}
