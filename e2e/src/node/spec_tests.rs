//! Tests of the pod-spec decisions in `spec.rs`.

use super::images::Images;
use super::spec::*;
use k8s_openapi::api::core::v1::Pod;
use serde_json::json;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;

fn injected_pod() -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "order-1", "namespace": "shop", "uid": "u1"},
        "spec": {
            "serviceAccountName": "order",
            "containers": [
                {"name": "app", "image": "apps/order:1", "args": ["--port", "$(APP_PORT)"],
                 "env": [{"name": "APP_PORT", "value": "8080"},
                         {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "pw"}}}],
                 "volumeMounts": [{"name": "default-token", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]},
                {"name": "daprd", "image": "ghcr.io/t/sidecar:0.1", "command": ["/daprd"], "args": ["--mode", "kubernetes"],
                 "env": [{"name": "NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                         {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                         {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
                 "volumeMounts": [{"name": "identity", "mountPath": "/var/run/secrets/tandem.io/token", "readOnly": true}]}
            ],
            "volumes": [
                {"name": "default-token", "secret": {"secretName": "order-token-x"}},
                {"name": "identity", "projected": {"sources": [
                    {"serviceAccountToken": {"audience": "tandem.io/operator", "expirationSeconds": 7200, "path": "token"}}]}},
                {"name": "scratch", "emptyDir": {}}
            ]
        }
    }))
    .expect("pod")
}

fn fetched() -> Fetched {
    let mut fetched = Fetched::default();
    fetched.secrets.insert(
        "creds".into(),
        [("pw".to_owned(), b"s3cret".to_vec())].into(),
    );
    fetched.secrets.insert(
        "order-token-x".into(),
        [("token".to_owned(), b"api-token".to_vec())].into(),
    );
    let spec = TokenSpec {
        audience: "tandem.io/operator".into(),
        expiration_seconds: 7200,
    };
    fetched.tokens.insert(spec, "operator-token".into());
    fetched
}

#[test]
fn references_list_secrets_and_tokens_of_env_and_volumes() {
    let refs = references(&injected_pod());
    assert_eq!(
        refs.secrets.into_iter().collect::<Vec<_>>(),
        ["creds", "order-token-x"]
    );
    assert!(refs.config_maps.is_empty());
    assert_eq!(
        refs.tokens.into_iter().collect::<Vec<_>>(),
        [TokenSpec {
            audience: "tandem.io/operator".into(),
            expiration_seconds: 7200
        }]
    );
}

#[test]
fn volumes_hold_the_token_and_secret_files() {
    let volumes = volumes(&injected_pod(), &fetched()).expect("volumes");
    assert_eq!(
        volumes["identity"],
        VolumeContents::Files(vec![("token".into(), b"operator-token".to_vec())])
    );
    assert_eq!(
        volumes["default-token"],
        VolumeContents::Files(vec![("token".into(), b"api-token".to_vec())])
    );
    assert_eq!(volumes["scratch"], VolumeContents::Files(vec![]));
    let err =
        super::spec::volumes(&injected_pod(), &Fetched::default()).expect_err("nothing fetched");
    assert!(
        err.contains("order-token-x") || err.contains("token"),
        "{err}"
    );
}

#[test]
fn the_injected_sidecar_runs_the_mapped_executable_with_its_args_env_and_mounts() {
    let pod = injected_pod();
    let images = Images::new()
        .with("ghcr.io/t/sidecar", "/bin/sidecar")
        .with("apps/order", "/bin/order");
    let dirs: BTreeMap<String, PathBuf> = [
        ("identity".to_owned(), PathBuf::from("/p/volumes/identity")),
        (
            "default-token".to_owned(),
            PathBuf::from("/p/volumes/default-token"),
        ),
    ]
    .into();
    let placement = Placement {
        pod_ip: Ipv4Addr::new(10, 1, 1, 5),
        host_ip: Ipv4Addr::new(10, 1, 1, 1),
        volume_dirs: &dirs,
    };
    let containers = &pod.spec.as_ref().expect("spec").containers;
    let daprd = launch(&pod, &containers[1], &images, &fetched(), &placement).expect("daprd");
    assert_eq!(daprd.program, PathBuf::from("/bin/sidecar"));
    assert_eq!(daprd.args, ["--mode", "kubernetes"]);
    let env: BTreeMap<_, _> = daprd.env.iter().cloned().collect();
    assert_eq!(env["NAMESPACE"], "shop");
    assert_eq!(env["POD_NAME"], "order-1");
    assert_eq!(env["POD_IP"], "10.1.1.5");
    assert_eq!(
        daprd.mounts,
        [(
            PathBuf::from("/p/volumes/identity"),
            "/var/run/secrets/tandem.io/token".to_owned()
        )]
    );

    let app = launch(&pod, &containers[0], &images, &fetched(), &placement).expect("app");
    assert_eq!(app.program, PathBuf::from("/bin/order"));
    assert_eq!(app.args, ["--port", "8080"], "$(VAR) expanded");
    assert!(
        app.env
            .contains(&("PASSWORD".to_owned(), "s3cret".to_owned()))
    );

    let unknown = Images::new();
    let err = launch(&pod, &containers[0], &unknown, &fetched(), &placement).expect_err("no image");
    assert!(err.contains("apps/order:1"), "{err}");
}
