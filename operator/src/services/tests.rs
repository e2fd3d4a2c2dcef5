//! Unit tests of `services`: the Dapr identity of a workload, the desired Service, and when it is
//! applied, left alone, claimed by another or stale.

use super::*;

fn map(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
    entries
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn owner(uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        name: format!("deploy-{uid}"),
        uid: uid.into(),
        controller: Some(true),
        ..OwnerReference::default()
    }
}

fn app(id: &str) -> DaprApp {
    DaprApp {
        app_id: id.into(),
        selector: map(&[("app", id)]),
    }
}

#[test]
fn reads_the_dapr_identity_of_a_workload() {
    let labels = map(&[("app", "web")]);
    let enabled = |extra: &[(&str, &str)]| {
        let mut a = map(&[(keys::ENABLED, "true")]);
        a.extend(map(extra));
        a
    };
    let spec =
        |annotations: &BTreeMap<String, String>| dapr_app("web", Some(annotations), Some(&labels));
    assert_eq!(dapr_app("web", None, Some(&labels)), AppSpec::NotEnabled);
    assert_eq!(spec(&map(&[(keys::ENABLED, "false")])), AppSpec::NotEnabled);
    assert_eq!(spec(&map(&[(keys::APP_ID, "x")])), AppSpec::NotEnabled);
    let want = |id: &str| {
        AppSpec::Enabled(DaprApp {
            app_id: id.into(),
            selector: labels.clone(),
        })
    };
    assert_eq!(
        spec(&enabled(&[])),
        want("web"),
        "app id defaults to the name"
    );
    assert_eq!(spec(&enabled(&[(keys::APP_ID, "orders")])), want("orders"));
    assert_eq!(spec(&enabled(&[(keys::APP_ID, " ")])), want("web"));
    assert_eq!(
        spec(&map(&[(keys::ENABLED, "yes")])),
        want("web"),
        "Dapr's truthy values"
    );
}

#[test]
fn refuses_app_ids_and_selectors_that_cannot_make_a_service() {
    let labels = map(&[("app", "web")]);
    let enabled = map(&[(keys::ENABLED, "true")]);
    let with_id = |id: &str| {
        let mut a = enabled.clone();
        a.insert(keys::APP_ID.into(), id.into());
        dapr_app("web", Some(&a), Some(&labels))
    };
    let longest = "a".repeat(58);
    assert!(matches!(with_id(&longest), AppSpec::Enabled(_)));
    for bad in ["Orders", "orders_v2", "-orders", &"a".repeat(59), "ord.ers"] {
        assert!(
            matches!(
                with_id(bad),
                AppSpec::Invalid {
                    reason: "InvalidAppId",
                    ..
                }
            ),
            "{bad:?}"
        );
    }
    let no_labels = dapr_app("web", Some(&enabled), Some(&BTreeMap::new()));
    assert!(matches!(
        no_labels,
        AppSpec::Invalid {
            reason: "NoMatchLabels",
            ..
        }
    ));
    assert!(matches!(
        dapr_app("web", Some(&enabled), None),
        AppSpec::Invalid { .. }
    ));
}

#[test]
fn the_desired_service_is_headless_labelled_owned_and_has_daprs_ports() {
    let service = desired_service(&app("orders"), "prod", owner("u1"));
    assert_eq!(service.metadata.name.as_deref(), Some("orders-dapr"));
    assert_eq!(service.metadata.namespace.as_deref(), Some("prod"));
    assert_eq!(
        service.metadata.labels,
        Some(map(&[("dapr.io/enabled", "true")]))
    );
    assert_eq!(service.metadata.owner_references, Some(vec![owner("u1")]));
    let spec = service.spec.expect("spec");
    assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
    assert_eq!(spec.selector, Some(map(&[("app", "orders")])));
    let ports: Vec<_> = spec
        .ports
        .iter()
        .flatten()
        .map(|p| {
            (
                p.name.clone().unwrap_or_default(),
                p.port,
                p.target_port.clone(),
            )
        })
        .collect();
    let int = |n| Some(IntOrString::Int(n));
    assert_eq!(
        ports,
        [
            ("dapr-http".to_owned(), 80, int(3500)),
            ("dapr-grpc".to_owned(), 50001, int(50001)),
            ("dapr-internal".to_owned(), 50002, int(50002)),
            ("dapr-metrics".to_owned(), 9090, int(9090)),
        ]
    );
}

#[test]
fn applies_only_what_is_missing_or_different_and_never_takes_anothers_service() {
    let desired = desired_service(&app("orders"), "prod", owner("u1"));
    assert_eq!(service_action(&desired, None, "u1"), ServiceAction::Apply);
    let mut existing = desired.clone();
    existing.metadata.uid = Some("svc".into());
    if let Some(spec) = existing.spec.as_mut() {
        spec.cluster_ips = Some(vec!["None".into()]);
        spec.session_affinity = Some("None".into());
    }
    existing
        .metadata
        .labels
        .get_or_insert_default()
        .insert("team".into(), "a".into());
    assert_eq!(
        service_action(&desired, Some(&existing), "u1"),
        ServiceAction::UpToDate
    );

    let mut changed_selector = existing.clone();
    if let Some(spec) = changed_selector.spec.as_mut() {
        spec.selector = Some(map(&[("app", "orders"), ("old", "x")]));
    }
    assert_eq!(
        service_action(&desired, Some(&changed_selector), "u1"),
        ServiceAction::Apply
    );
    let mut lost_port = existing.clone();
    if let Some(ports) = lost_port.spec.as_mut().and_then(|s| s.ports.as_mut()) {
        ports.pop();
    }
    assert_eq!(
        service_action(&desired, Some(&lost_port), "u1"),
        ServiceAction::Apply
    );

    let theirs = desired_service(&app("orders"), "prod", owner("u2"));
    assert_eq!(
        service_action(&desired, Some(&theirs), "u1"),
        ServiceAction::Conflict {
            holder: "Deployment \"deploy-u2\"".into()
        }
    );
    let mut unowned = existing;
    unowned.metadata.owner_references = None;
    assert!(matches!(
        service_action(&desired, Some(&unowned), "u1"),
        ServiceAction::Conflict { .. }
    ));
}

#[test]
fn stale_services_are_the_owned_ones_not_kept() {
    let services = [
        desired_service(&app("old-id"), "prod", owner("u1")),
        desired_service(&app("orders"), "prod", owner("u1")),
        desired_service(&app("other"), "prod", owner("u2")),
    ];
    assert_eq!(
        stale_services(&services, "u1", Some("orders-dapr")),
        ["old-id-dapr"]
    );
    assert_eq!(
        stale_services(&services, "u1", None),
        ["old-id-dapr", "orders-dapr"]
    );
    assert!(stale_services(&services, "u3", None).is_empty());
}

#[test]
fn a_services_app_id_is_its_annotation_else_its_name_without_the_suffix() {
    let desired = desired_service(&app("orders"), "shop", owner("u1"));
    assert_eq!(service_app_id(&desired), "orders");
    let mut bare = desired.clone();
    bare.metadata.annotations = None;
    bare.metadata.name = Some("ledger-dapr".to_owned());
    assert_eq!(service_app_id(&bare), "ledger");
    bare.metadata.name = Some("odd".to_owned());
    assert_eq!(service_app_id(&bare), "odd");
}
