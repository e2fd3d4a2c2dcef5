use super::*;
use k8s_openapi::api::authentication::v1::UserInfo;
use k8s_openapi::api::core::v1::PodStatus;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

fn reviewed(audiences: Option<&[&str]>) -> TokenReviewStatus {
    TokenReviewStatus {
        authenticated: Some(true),
        audiences: audiences.map(|a| a.iter().map(|s| (*s).to_owned()).collect()),
        user: Some(UserInfo {
            username: Some("system:serviceaccount:shop:orders".to_owned()),
            ..UserInfo::default()
        }),
        ..TokenReviewStatus::default()
    }
}

#[test]
fn only_a_token_for_the_ca_audience_is_a_credential() {
    let ours = vec!["tandem.io/operator".to_owned()];
    let ok = audience_bound_caller(&reviewed(Some(&["tandem.io/operator"])), &ours);
    assert_eq!(ok.map(|c| c.service_account), Ok("orders".to_owned()));
    for granted in [
        None,
        Some(&[][..]),
        Some(&["https://kubernetes.default.svc"][..]),
    ] {
        let refused = audience_bound_caller(&reviewed(granted), &ours);
        assert!(
            matches!(refused, Err(Denied::OtherAudience(ref a)) if *a == ours),
            "{granted:?}: {refused:?}"
        );
    }
    let mut unauthenticated = reviewed(Some(&["tandem.io/operator"]));
    unauthenticated.authenticated = Some(false);
    assert!(audience_bound_caller(&unauthenticated, &ours).is_err());
}

#[test]
fn a_finished_or_deleting_pod_gets_no_certificate() {
    let pod = |phase: Option<&str>, deleting: bool| {
        let mut pod = Pod {
            status: Some(PodStatus {
                phase: phase.map(str::to_owned),
                ..PodStatus::default()
            }),
            ..Pod::default()
        };
        if deleting {
            pod.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::now()));
        }
        pod
    };
    let cases = [
        (None, false, None),
        (Some("Pending"), false, None),
        (Some("Running"), false, None),
        (Some("Running"), true, Some("being deleted")),
        (Some("Succeeded"), false, Some("finished")),
        (Some("Failed"), false, Some("finished")),
    ];
    for (phase, deleting, expected) in cases {
        assert_eq!(
            finished(&pod(phase, deleting)),
            expected,
            "{phase:?} {deleting}"
        );
    }
}

#[test]
fn the_app_id_is_the_annotation_else_the_pod_name() {
    let mut pod = Pod::default();
    assert_eq!(pod_app_id(&pod, "web-1"), "web-1");
    pod.metadata.annotations = Some(
        [(keys::APP_ID.to_owned(), "orders".to_owned())]
            .into_iter()
            .collect(),
    );
    assert_eq!(pod_app_id(&pod, "web-1"), "orders");
}

#[test]
fn every_refusal_has_its_metric_reason() {
    let pod = || ("p".to_owned(), "ns".to_owned());
    let cases = [
        (Denied::NoToken, SignFailure::InvalidToken),
        (
            Denied::InvalidToken(String::new()),
            SignFailure::InvalidToken,
        ),
        (
            Denied::NotServiceAccount("alice".into()),
            SignFailure::InvalidToken,
        ),
        (
            Denied::OtherAudience(vec!["a".into()]),
            SignFailure::WrongAudience,
        ),
        (
            Denied::OtherNamespace {
                token: "a".into(),
                asked: "b".into(),
            },
            SignFailure::NamespaceMismatch,
        ),
        (
            Denied::OtherPod {
                token: "a".into(),
                asked: "b".into(),
            },
            SignFailure::PodMismatch,
        ),
        (
            Denied::OtherServiceAccount {
                pod: pod().0,
                pod_account: "a".into(),
                token_account: "b".into(),
            },
            SignFailure::PodMismatch,
        ),
        (
            Denied::NoSuchPod {
                namespace: pod().1,
                pod: pod().0,
            },
            SignFailure::NoSuchPod,
        ),
        (
            Denied::NotDaprEnabled { pod: pod().0 },
            SignFailure::NotDaprEnabled,
        ),
    ];
    for (denied, reason) in cases {
        assert_eq!(refusal_reason(&denied), reason, "{denied:?}");
        assert_eq!(Refused::from(denied.clone()).reason, reason, "{denied:?}");
    }
    let signs = [
        (SignError::Csr("x".into()), SignFailure::MalformedCsr),
        (SignError::Ttl("1ms".into()), SignFailure::InvalidTtl),
        (SignError::Sign("x".into()), SignFailure::SignError),
    ];
    for (error, reason) in signs {
        assert_eq!(sign_error_reason(&error), reason, "{error:?}");
    }
    let malformed = Refused::from(ApiError::Malformed("not JSON".into()));
    assert_eq!(malformed.reason, SignFailure::MalformedRequest);
    let unavailable = Refused::from(ApiError::Unavailable("TokenReview failed".into()));
    assert_eq!(unavailable.reason, SignFailure::Unavailable);
}
