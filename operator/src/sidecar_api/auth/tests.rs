use super::*;
use k8s_openapi::api::authentication::v1::UserInfo;
use k8s_openapi::api::core::v1::PodSpec;
use std::collections::BTreeMap;

fn reviewed(username: &str, extra: &[(&str, &str)]) -> TokenReviewStatus {
    TokenReviewStatus {
        authenticated: Some(true),
        user: Some(UserInfo {
            username: Some(username.to_owned()),
            extra: Some(
                extra
                    .iter()
                    .map(|(k, v)| (k.to_string(), vec![v.to_string()]))
                    .collect(),
            ),
            ..UserInfo::default()
        }),
        ..TokenReviewStatus::default()
    }
}

fn bound_caller() -> Caller {
    caller_from(&reviewed(
        "system:serviceaccount:shop:order-sa",
        &[(POD_NAME_EXTRA, "order-1"), (POD_UID_EXTRA, "uid-1")],
    ))
    .expect("a service account token")
}

fn pod(account: Option<&str>, annotations: &[(&str, &str)]) -> Pod {
    Pod {
        metadata: tandem_crds::ObjectMeta {
            name: Some("order-1".into()),
            namespace: Some("shop".into()),
            uid: Some("uid-1".into()),
            annotations: Some(
                annotations
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..Default::default()
        },
        spec: Some(PodSpec {
            service_account_name: account.map(str::to_owned),
            ..PodSpec::default()
        }),
        ..Pod::default()
    }
}

const CLAIM: Claim<'static> = Claim {
    namespace: "shop",
    pod_name: "order-1",
    app_id: "order",
};

fn dapr_pod() -> Pod {
    pod(
        Some("order-sa"),
        &[(keys::ENABLED, "true"), (keys::APP_ID, "order")],
    )
}

#[test]
fn a_token_review_names_the_caller() {
    let caller = bound_caller();
    assert_eq!(caller.namespace, "shop");
    assert_eq!(caller.service_account, "order-sa");
    assert_eq!(caller.pod_name.as_deref(), Some("order-1"));
    assert_eq!(caller.pod_uid.as_deref(), Some("uid-1"));

    let legacy = caller_from(&reviewed("system:serviceaccount:shop:default", &[])).expect("legacy");
    assert_eq!(legacy.pod_name, None);
}

#[test]
fn unauthenticated_and_non_service_account_tokens_are_refused() {
    let refused = TokenReviewStatus {
        authenticated: Some(false),
        error: Some("token has expired".into()),
        ..TokenReviewStatus::default()
    };
    let denied = caller_from(&refused).expect_err("refused");
    assert!(denied.is_unauthenticated());
    assert!(denied.to_string().contains("token has expired"), "{denied}");
    assert!(caller_from(&TokenReviewStatus::default()).is_err());
    for user in [
        "admin",
        "system:serviceaccount:",
        "system:serviceaccount:shop",
        "system:serviceaccount::x",
    ] {
        let denied = caller_from(&reviewed(user, &[])).expect_err(user);
        assert!(
            matches!(denied, Denied::NotServiceAccount(_)),
            "{user}: {denied:?}"
        );
    }
}

#[test]
fn the_right_pod_is_admitted() {
    assert_eq!(admit(&bound_caller(), &CLAIM, Some(&dapr_pod())), Ok(()));
    // The app id defaults to the pod's name, as in Dapr.
    let unnamed = pod(Some("order-sa"), &[(keys::ENABLED, "yes")]);
    let by_pod_name = Claim {
        app_id: "order-1",
        ..CLAIM
    };
    assert_eq!(admit(&bound_caller(), &by_pod_name, Some(&unnamed)), Ok(()));
}

#[test]
fn every_mismatch_is_refused_with_its_reason() {
    let caller = bound_caller();
    let other_ns = Claim {
        namespace: "bank",
        ..CLAIM
    };
    assert!(matches!(
        admit(&caller, &other_ns, Some(&dapr_pod())),
        Err(Denied::OtherNamespace { .. })
    ));
    let other_pod = Claim {
        pod_name: "order-2",
        ..CLAIM
    };
    assert!(matches!(
        admit(&caller, &other_pod, Some(&dapr_pod())),
        Err(Denied::OtherPod { .. })
    ));
    assert!(matches!(
        admit(&caller, &CLAIM, None),
        Err(Denied::NoSuchPod { .. })
    ));
    let mut reborn = dapr_pod();
    reborn.metadata.uid = Some("uid-2".into());
    assert!(matches!(
        admit(&caller, &CLAIM, Some(&reborn)),
        Err(Denied::NoSuchPod { .. })
    ));
    let default_account = pod(None, &[(keys::ENABLED, "true"), (keys::APP_ID, "order")]);
    let denied = admit(&caller, &CLAIM, Some(&default_account)).expect_err("default SA");
    assert!(denied.to_string().contains("'default'"), "{denied}");
    let not_dapr = pod(Some("order-sa"), &[(keys::APP_ID, "order")]);
    assert!(matches!(
        admit(&caller, &CLAIM, Some(&not_dapr)),
        Err(Denied::NotDaprEnabled { .. })
    ));
    let other_app = Claim {
        app_id: "catalog",
        ..CLAIM
    };
    let denied = admit(&caller, &other_app, Some(&dapr_pod())).expect_err("other app");
    assert!(!denied.is_unauthenticated());
    assert_eq!(
        denied.to_string(),
        "pod order-1 has app id 'order', the request is for 'catalog'"
    );
}
