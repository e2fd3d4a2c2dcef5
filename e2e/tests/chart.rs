//! The Helm chart `charts/tandem`, checked by the real tools: `helm lint --strict`, `helm template`
//! judged by `kubernetes-validate --strict` (Kubernetes 1.30 schemas) and by the pure least-privilege
//! rules in `tandem_e2e::rbac`. Needs `TANDEM_TOOLS` (`scripts/k8s-tools.sh`). The chart applied to a
//! real kube-apiserver 1.20 is in `chart_cluster.rs`.

#![allow(clippy::unwrap_used, reason = "a test fails on what it unwraps")]

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Container;
use k8s_openapi::api::rbac::v1::{ClusterRole, Role};
use serde_json::Value;
use tandem_e2e::chart::{Render, validate};
use tandem_e2e::manifest::Manifest;
use tandem_e2e::rbac::{Scope, violations};
use tandem_e2e::tools::Tools;

const NAMESPACE: &str = "tandem-system";

fn tools() -> Tools {
    Tools::from_env().unwrap_or_else(|error| panic!("{error}"))
}

fn render(render: Render) -> Manifest {
    let text = render.template(&tools()).unwrap_or_else(|e| panic!("{e}"));
    Manifest::parse(&text).unwrap()
}

fn on_1_30(render: Render) -> Render {
    render.kube_version("1.30.0")
}

fn container(manifest: &Manifest, deployment: &str) -> Container {
    let deployment: Deployment = manifest.get("Deployment", deployment).unwrap();
    let pod = deployment.spec.unwrap().template.spec.unwrap();
    assert_eq!(pod.containers.len(), 1);
    pod.containers.into_iter().next().unwrap()
}

fn replicas(manifest: &Manifest, deployment: &str) -> i32 {
    let deployment: Deployment = manifest.get("Deployment", deployment).unwrap();
    deployment.spec.unwrap().replicas.unwrap()
}

fn env_value(container: &Container, name: &str) -> Option<String> {
    let env = container.env.as_deref().unwrap_or_default();
    env.iter()
        .find(|e| e.name == name)
        .and_then(|e| e.value.clone())
}

fn ids(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut ids: Vec<_> = pairs
        .iter()
        .map(|(kind, name)| (kind.to_string(), name.to_string()))
        .collect();
    ids.sort();
    ids
}

/// Every object of the default install, CRDs aside.
const DEFAULT_OBJECTS: &[(&str, &str)] = &[
    ("ServiceAccount", "tandem-operator"),
    ("ServiceAccount", "tandem-sidecar-injector"),
    ("ClusterRole", "tandem-operator"),
    ("ClusterRole", "tandem-sidecar-injector"),
    ("ClusterRoleBinding", "tandem-operator"),
    ("ClusterRoleBinding", "tandem-sidecar-injector"),
    ("Role", "tandem-operator"),
    ("Role", "tandem-sidecar-injector"),
    ("RoleBinding", "tandem-operator"),
    ("RoleBinding", "tandem-sidecar-injector"),
    ("Service", "tandem-api"),
    ("Service", "tandem-webhook"),
    ("Service", "tandem-sidecar-injector"),
    ("Deployment", "tandem-operator"),
    ("Deployment", "tandem-sidecar-injector"),
    ("MutatingWebhookConfiguration", "tandem-sidecar-injector"),
];

#[test]
fn chart_crds_are_byte_for_byte_the_generated_ones() {
    let root = tandem_e2e::repo_root();
    let fix = "run `cargo run -p tandem-crds --bin crdgen && cp crds/yaml/*.yaml charts/tandem/crds/` and commit";
    let list = |dir: &std::path::Path| {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}; {fix}", dir.display()))
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let generated = root.join("crds").join("yaml");
    let chart = tandem_e2e::chart_dir().join("crds");
    let names = list(&generated);
    assert!(!names.is_empty(), "crds/yaml is empty");
    assert_eq!(
        list(&chart),
        names,
        "charts/tandem/crds/ holds other files than crds/yaml/; {fix}"
    );
    for name in names {
        let want = std::fs::read(generated.join(&name)).unwrap();
        let have = std::fs::read(chart.join(&name)).unwrap();
        assert!(
            have == want,
            "charts/tandem/crds/{name} differs from crds/yaml/{name}; {fix}"
        );
    }
}

#[test]
fn helm_lint_strict_passes_with_default_and_ha_values() {
    let tools = tools();
    for (what, render) in [
        ("default", Render::new(NAMESPACE)),
        ("HA", Render::new(NAMESPACE).ha()),
    ] {
        let output = render
            .lint(&tools)
            .unwrap_or_else(|e| panic!("{what} values: {e}"));
        assert!(
            output.stdout.contains("0 chart(s) failed"),
            "{what}: {}",
            output.stdout
        );
    }
}

#[test]
fn rendered_manifests_validate_strictly_against_kubernetes_1_30() {
    let tools = tools();
    for (what, render) in [
        ("default", Render::new(NAMESPACE)),
        ("HA", Render::new(NAMESPACE).ha()),
    ] {
        let text = on_1_30(render.include_crds()).template(&tools).unwrap();
        let output = validate(&tools, &text, "1.30.0").unwrap_or_else(|e| panic!("{what}: {e}"));
        let report = format!("{}{}", output.stdout, output.stderr);
        let manifest = Manifest::parse(&text).unwrap();
        assert!(
            manifest.objects.len() >= DEFAULT_OBJECTS.len() + 3,
            "{what}: {:?}",
            manifest.ids()
        );
        for (kind, name) in manifest.ids() {
            let line = format!("passed for resource {}/{name} ", kind.to_lowercase());
            assert!(report.contains(&line), "{what}: no `{line}` in:\n{report}");
        }
    }
}

#[test]
fn default_values_render_single_replicas_without_leader_election_or_pdbs() {
    let manifest = render(on_1_30(Render::new(NAMESPACE)));
    assert_eq!(manifest.ids(), ids(DEFAULT_OBJECTS));
    assert_eq!(replicas(&manifest, "tandem-operator"), 1);
    assert_eq!(replicas(&manifest, "tandem-sidecar-injector"), 1);
    let operator = container(&manifest, "tandem-operator");
    assert_eq!(
        operator.args.unwrap(),
        [
            "--admin-addr=0.0.0.0:8080",
            "--sidecar-api-addr=0.0.0.0:6500",
            "--webhook-addr=0.0.0.0:19443",
            "--leader-elect=false",
            "--leader-election-name=tandem-operator",
            "--ca-enabled=true",
        ]
    );
    let env = operator.env.unwrap();
    let pod_namespace = env.iter().find(|e| e.name == "POD_NAMESPACE").unwrap();
    let field = pod_namespace
        .value_from
        .as_ref()
        .unwrap()
        .field_ref
        .as_ref()
        .unwrap();
    assert_eq!(field.field_path, "metadata.namespace");
    // More than one replica without HA still elects a leader.
    let scaled = render(on_1_30(
        Render::new(NAMESPACE).set("tandem_operator.replicaCount", "3"),
    ));
    assert_eq!(replicas(&scaled, "tandem-operator"), 3);
    assert!(
        container(&scaled, "tandem-operator")
            .args
            .unwrap()
            .contains(&"--leader-elect=true".to_owned())
    );
}

#[test]
fn ha_values_render_two_replicas_leader_election_pdbs_and_anti_affinity() {
    let manifest = render(on_1_30(Render::new(NAMESPACE).ha()));
    let mut expected = DEFAULT_OBJECTS.to_vec();
    expected.extend([
        ("PodDisruptionBudget", "tandem-operator"),
        ("PodDisruptionBudget", "tandem-sidecar-injector"),
    ]);
    assert_eq!(manifest.ids(), ids(&expected));
    for deployment in ["tandem-operator", "tandem-sidecar-injector"] {
        assert_eq!(replicas(&manifest, deployment), 2, "{deployment}");
        let pdb = manifest
            .of_kind("PodDisruptionBudget")
            .find(|o| o["metadata"]["name"] == deployment)
            .unwrap();
        assert_eq!(pdb["apiVersion"], "policy/v1");
        assert_eq!(pdb["spec"]["maxUnavailable"], "25%");
        assert_eq!(pdb["spec"]["selector"]["matchLabels"]["app"], deployment);
        let object = manifest
            .of_kind("Deployment")
            .find(|o| o["metadata"]["name"] == deployment)
            .unwrap();
        let term = &object["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
            [0]["podAffinityTerm"];
        assert_eq!(
            term["topologyKey"], "topology.kubernetes.io/zone",
            "{deployment}"
        );
        assert_eq!(term["labelSelector"]["matchLabels"]["app"], deployment);
    }
    assert!(
        container(&manifest, "tandem-operator")
            .args
            .unwrap()
            .contains(&"--leader-elect=true".to_owned())
    );
    // Before policy/v1 (Kubernetes 1.21), the PDBs use policy/v1beta1.
    let old = render(Render::new(NAMESPACE).ha().kube_version("1.20.2"));
    let versions: Vec<&Value> = old
        .of_kind("PodDisruptionBudget")
        .map(|o| &o["apiVersion"])
        .collect();
    assert_eq!(versions, ["policy/v1beta1", "policy/v1beta1"]);
}

#[test]
fn webhook_registration_follows_the_contract() {
    let manifest = render(on_1_30(Render::new(NAMESPACE)));
    let config: MutatingWebhookConfiguration = manifest
        .get("MutatingWebhookConfiguration", "tandem-sidecar-injector")
        .unwrap();
    let webhooks = config.webhooks.unwrap();
    assert_eq!(webhooks.len(), 1);
    let webhook = &webhooks[0];
    assert_eq!(webhook.name, "sidecar-injector.tandem.io");
    assert_eq!(
        webhook.client_config.ca_bundle, None,
        "the injector writes the caBundle"
    );
    let service = webhook.client_config.service.as_ref().unwrap();
    assert_eq!(
        (service.name.as_str(), service.namespace.as_str()),
        ("tandem-sidecar-injector", NAMESPACE)
    );
    assert_eq!(
        (service.path.as_deref(), service.port),
        (Some("/mutate"), Some(443))
    );
    let rules = webhook.rules.as_ref().unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(
        rules[0].operations.as_deref(),
        Some(&["CREATE".to_owned()][..])
    );
    assert_eq!(
        rules[0].resources.as_deref(),
        Some(&["pods".to_owned()][..])
    );
    assert_eq!(webhook.failure_policy.as_deref(), Some("Ignore"));
    assert_eq!(webhook.side_effects, "None");
    assert_eq!(webhook.timeout_seconds, Some(5));
    assert_eq!(webhook.reinvocation_policy.as_deref(), Some("IfNeeded"));
    assert_eq!(webhook.admission_review_versions, ["v1"]);
    assert_eq!(webhook.object_selector, None);
    let expressions = |manifest: &Manifest| -> Vec<(String, String, Vec<String>)> {
        let config: MutatingWebhookConfiguration = manifest
            .get("MutatingWebhookConfiguration", "tandem-sidecar-injector")
            .unwrap();
        let webhook = config.webhooks.unwrap().remove(0);
        let selector = webhook.namespace_selector.unwrap();
        selector
            .match_expressions
            .unwrap()
            .into_iter()
            .map(|e| (e.key, e.operator, e.values.unwrap_or_default()))
            .collect()
    };
    let opt_out = (
        "tandem.io/injection".to_owned(),
        "NotIn".to_owned(),
        vec!["disabled".to_owned()],
    );
    let system = (
        "kubernetes.io/metadata.name".to_owned(),
        "NotIn".to_owned(),
        vec!["kube-system".to_owned(), NAMESPACE.to_owned()],
    );
    assert_eq!(expressions(&manifest), [opt_out.clone(), system]);
    // Kubernetes 1.20 has no kubernetes.io/metadata.name label: only the opt-out label is used.
    assert_eq!(
        expressions(&render(Render::new(NAMESPACE).kube_version("1.20.2"))),
        [opt_out]
    );
    // Values: failure policy, object and namespace selectors.
    let custom = render(
        on_1_30(Render::new(NAMESPACE))
            .set("tandem_sidecar_injector.webhookFailurePolicy", "Fail")
            .set(
                "tandem_sidecar_injector.objectSelector.matchLabels.team",
                "a",
            )
            .set(
                "tandem_sidecar_injector.namespaceSelector.matchLabels.tier",
                "apps",
            ),
    );
    // A namespaceSelector from the values is merged with the chart's exclusions, not replacing them.
    assert_eq!(expressions(&custom).len(), 2);
    let config: MutatingWebhookConfiguration = custom
        .get("MutatingWebhookConfiguration", "tandem-sidecar-injector")
        .unwrap();
    let webhook = config.webhooks.unwrap().remove(0);
    assert_eq!(webhook.failure_policy.as_deref(), Some("Fail"));
    let labels = webhook.object_selector.unwrap().match_labels.unwrap();
    assert_eq!(labels.get("team").map(String::as_str), Some("a"));
    let namespace_labels = webhook.namespace_selector.unwrap().match_labels.unwrap();
    assert_eq!(
        namespace_labels.get("tier").map(String::as_str),
        Some("apps")
    );
}

#[test]
fn injector_is_configured_through_the_contract_flags_and_env() {
    let manifest = render(
        on_1_30(Render::new(NAMESPACE))
            .set("global.registry", "registry.example/t")
            .set("global.tag", "1.2.3")
            .set(
                "tandem_sidecar_injector.allowedServiceAccounts",
                "ci:deployer",
            )
            .set(
                "tandem_sidecar_injector.sidecarDropALLCapabilities",
                "false",
            ),
    );
    let injector = container(&manifest, "tandem-sidecar-injector");
    assert_eq!(
        injector.image.as_deref(),
        Some("registry.example/t/tandem-injector:1.2.3")
    );
    let args = injector.args.clone().unwrap();
    for flag in [
        "--addr=0.0.0.0:4000",
        "--admin-addr=0.0.0.0:8080",
        "--service-name=tandem-sidecar-injector",
        "--tls-secret-name=tandem-sidecar-injector-tls",
        "--webhook-config-name=tandem-sidecar-injector",
    ] {
        assert!(
            args.contains(&flag.to_owned()),
            "{flag} missing from {args:?}"
        );
    }
    let expected = [
        ("SIDECAR_IMAGE", "registry.example/t/tandem-sidecar:1.2.3"),
        ("SIDECAR_IMAGE_PULL_POLICY", "IfNotPresent"),
        ("KUBE_CLUSTER_DOMAIN", "cluster.local"),
        ("ALLOWED_SERVICE_ACCOUNTS", "ci:deployer"),
        ("SIDECAR_RUN_AS_NON_ROOT", "true"),
        ("SIDECAR_READ_ONLY_ROOT_FILESYSTEM", "true"),
        ("SIDECAR_DROP_ALL_CAPABILITIES", "false"),
        ("TANDEM_INJECTOR_LOG_AS_JSON", "false"),
    ];
    for (name, value) in expected {
        assert_eq!(env_value(&injector, name).as_deref(), Some(value), "{name}");
    }
    let env = injector.env.unwrap();
    let namespace = env.iter().find(|e| e.name == "NAMESPACE").unwrap();
    assert_eq!(
        namespace
            .value_from
            .as_ref()
            .unwrap()
            .field_ref
            .as_ref()
            .unwrap()
            .field_path,
        "metadata.namespace"
    );
}

#[test]
fn both_deployments_run_hardened() {
    let manifest = render(on_1_30(Render::new(NAMESPACE)));
    for name in ["tandem-operator", "tandem-sidecar-injector"] {
        let deployment: Deployment = manifest.get("Deployment", name).unwrap();
        let pod = deployment.spec.unwrap().template.spec.unwrap();
        let pod_context = pod.security_context.unwrap();
        assert_eq!(pod_context.run_as_non_root, Some(true), "{name}");
        assert_eq!(
            pod_context.seccomp_profile.unwrap().type_,
            "RuntimeDefault",
            "{name}"
        );
        assert_ne!(pod_context.run_as_user, Some(0), "{name}");
        let container = &pod.containers[0];
        let context = container.security_context.clone().unwrap();
        assert_eq!(context.allow_privilege_escalation, Some(false), "{name}");
        assert_eq!(context.read_only_root_filesystem, Some(true), "{name}");
        assert_eq!(
            context.capabilities.unwrap().drop.unwrap(),
            ["ALL"],
            "{name}"
        );
        let probe_path = |probe: &Option<k8s_openapi::api::core::v1::Probe>| {
            let get = probe.as_ref().unwrap().http_get.as_ref().unwrap();
            (get.path.clone().unwrap(), get.port.clone())
        };
        let admin =
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String("admin".into());
        assert_eq!(
            probe_path(&container.liveness_probe),
            ("/healthz".to_owned(), admin.clone())
        );
        assert_eq!(
            probe_path(&container.readiness_probe),
            ("/readyz".to_owned(), admin)
        );
        let ports = container.ports.as_deref().unwrap();
        assert!(
            ports
                .iter()
                .any(|p| p.name.as_deref() == Some("admin") && p.container_port == 8080),
            "{name}"
        );
    }
}

#[test]
fn roles_grant_least_privilege() {
    for render in [
        render(Render::new(NAMESPACE)),
        render(Render::new(NAMESPACE).ha()),
    ] {
        let mut found = Vec::new();
        let mut checked = 0;
        for object in render.of_kind("ClusterRole") {
            let role: ClusterRole = serde_json::from_value(object.clone()).unwrap();
            let name = role.metadata.name.unwrap();
            found.extend(violations(
                &name,
                Scope::Cluster,
                role.rules.as_deref().unwrap_or_default(),
            ));
            checked += 1;
        }
        for object in render.of_kind("Role") {
            let role: Role = serde_json::from_value(object.clone()).unwrap();
            let name = role.metadata.name.unwrap();
            found.extend(violations(
                &name,
                Scope::Namespace,
                role.rules.as_deref().unwrap_or_default(),
            ));
            checked += 1;
        }
        assert_eq!(checked, 4);
        assert!(
            found.is_empty(),
            "broader grants than needed:\n{}",
            found.join("\n")
        );
    }
    // Secrets: read-only cluster-wide, written only by name.
    let manifest = render(Render::new(NAMESPACE));
    let operator: ClusterRole = manifest.get("ClusterRole", "tandem-operator").unwrap();
    let secret_rules: Vec<_> = operator
        .rules
        .unwrap()
        .into_iter()
        .filter(|r| {
            r.resources
                .as_deref()
                .unwrap_or_default()
                .contains(&"secrets".to_owned())
        })
        .collect();
    assert_eq!(secret_rules.len(), 1);
    assert_eq!(secret_rules[0].verbs, ["get", "list", "watch"]);
    let injector: ClusterRole = manifest
        .get("ClusterRole", "tandem-sidecar-injector")
        .unwrap();
    let rules = injector.rules.unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(
        rules[0].resource_names.as_deref(),
        Some(&["tandem-sidecar-injector".to_owned()][..])
    );
}

#[test]
fn global_mtls_enabled_drives_the_operator_ca_and_the_injected_sidecars() {
    let flag = |manifest: &Manifest| {
        let args = container(manifest, "tandem-operator").args.unwrap();
        let ca: Vec<_> = args
            .iter()
            .filter(|a| a.starts_with("--ca-enabled="))
            .collect();
        assert_eq!(ca.len(), 1, "{args:?}");
        ca[0].clone()
    };
    let injector_env = |manifest: &Manifest| {
        env_value(
            &container(manifest, "tandem-sidecar-injector"),
            "TANDEM_INJECTOR_SIDECAR_MTLS",
        )
    };
    let on = render(on_1_30(Render::new(NAMESPACE)));
    assert_eq!(flag(&on), "--ca-enabled=true", "on by default, like Dapr");
    assert_eq!(injector_env(&on).as_deref(), Some("true"));
    let off = render(on_1_30(
        Render::new(NAMESPACE).set("global.mtls.enabled", "false"),
    ));
    assert_eq!(flag(&off), "--ca-enabled=false");
    assert_eq!(injector_env(&off).as_deref(), Some("false"));
    // With the CA, the injector hands sidecars the anchors from the operator's public ConfigMap,
    // which it may only read, by name; without, neither the env nor the grant.
    let anchors = |manifest: &Manifest| {
        env_value(
            &container(manifest, "tandem-sidecar-injector"),
            "TANDEM_INJECTOR_TRUST_ANCHORS_CONFIGMAP",
        )
    };
    let configmap_rules = |manifest: &Manifest, role: &str| {
        let role: Role = manifest.get("Role", role).unwrap();
        role.rules
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.resources.as_deref() == Some(&["configmaps".to_owned()][..]))
            .map(|r| (r.verbs, r.resource_names.unwrap_or_default()))
            .collect::<Vec<_>>()
    };
    let bundle = vec!["tandem-trust-bundle".to_owned()];
    assert_eq!(anchors(&on).as_deref(), Some("tandem-trust-bundle"));
    assert_eq!(
        configmap_rules(&on, "tandem-sidecar-injector"),
        [(vec!["get".to_owned()], bundle.clone())]
    );
    assert_eq!(
        configmap_rules(&on, "tandem-operator"),
        [
            (vec!["create".to_owned()], vec![]),
            (vec!["get".to_owned(), "update".to_owned()], bundle)
        ]
    );
    assert_eq!(anchors(&off), None);
    assert!(configmap_rules(&off, "tandem-sidecar-injector").is_empty());
    assert!(configmap_rules(&off, "tandem-operator").is_empty());
}

#[test]
fn invalid_values_are_refused_naming_the_key() {
    let tools = tools();
    let cases = [
        ("tandem_sidecar_injector.webhookFailurePolicy", "Sometimes"),
        ("global.ha.replicaCount", "0"),
        ("global.runAsUser", "0"),
        ("global.logAsJson", "maybe"),
        ("global.mtls.enabled", "maybe"),
        ("tandem_operator.unknownKey", "1"),
    ];
    for (key, value) in cases {
        let error = match Render::new(NAMESPACE).set(key, value).template(&tools) {
            Ok(_) => panic!("{key}={value} was accepted"),
            Err(error) => error.to_string(),
        };
        let leaf = key.rsplit('.').next().unwrap();
        assert!(error.contains(leaf), "{key}={value}: {error}");
    }
}

#[test]
fn the_injector_can_be_left_out() {
    let manifest = render(on_1_30(
        Render::new(NAMESPACE)
            .ha()
            .set("tandem_sidecar_injector.enabled", "false"),
    ));
    let left: Vec<_> = manifest
        .ids()
        .into_iter()
        .filter(|(_, name)| name.contains("injector"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(replicas(&manifest, "tandem-operator"), 2);
    assert_eq!(manifest.of_kind("PodDisruptionBudget").count(), 1);
}
