//! The harness against the real binaries from `KUBEBUILDER_ASSETS`.

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::Api;
use std::path::PathBuf;
use tandem_envtest::{Assets, ControlPlane, TestEnv};

#[tokio::test]
async fn tests_share_one_apiserver_and_get_their_own_namespaces() {
    let first = TestEnv::start().await;
    let second = TestEnv::start().await;
    assert_eq!(
        first.control_plane().server(),
        second.control_plane().server()
    );
    assert_ne!(first.namespace(), second.namespace());

    let version = first.client().apiserver_version().await.expect("version");
    assert_eq!(version.git_version, "v1.20.2");
    let namespaces = Api::<Namespace>::all(first.client());
    for env in [&first, &second] {
        let ns = namespaces
            .get(env.namespace())
            .await
            .expect("namespace exists");
        assert_eq!(ns.metadata.name.as_deref(), Some(env.namespace()));
    }

    let applied = first
        .kubectl_apply(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: '1'}\n",
        )
        .await
        .expect("kubectl apply");
    assert_eq!(applied.trim(), "configmap/settings created");
    let read = first
        .namespaced::<ConfigMap>()
        .get("settings")
        .await
        .expect("the ConfigMap kubectl created, in the test's namespace");
    assert_eq!(
        read.data.and_then(|d| d.get("a").cloned()).as_deref(),
        Some("1")
    );
    let elsewhere = second.namespaced::<ConfigMap>().get_opt("settings").await;
    assert!(elsewhere.expect("get").is_none(), "namespaces are separate");

    let rejected = first
        .kubectl_apply("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Not_A_Name}\n")
        .await
        .expect_err("an invalid name is refused");
    assert!(rejected.to_string().contains("Not_A_Name"), "{rejected}");
}

#[test]
fn a_panicking_test_leaves_no_process_and_no_temp_dir() {
    let (tx, rx) = std::sync::mpsc::channel::<(Vec<u32>, PathBuf)>();
    let outcome = std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        runtime.block_on(async move {
            let assets = Assets::from_env().unwrap_or_else(|e| panic!("{e}"));
            let control_plane = ControlPlane::start(assets).await.expect("control plane");
            tx.send((control_plane.pids(), control_plane.dir().to_path_buf()))
                .expect("send");
            for pid in control_plane.pids() {
                assert!(running(pid), "{pid} runs while the control plane lives");
            }
            panic!("a test failing while it holds the control plane");
        })
    })
    .join();
    assert!(outcome.is_err(), "the thread panicked");
    let (pids, dir) = rx.recv().expect("the control plane had started");
    for pid in pids {
        assert!(!running(pid), "process {pid} outlived the panicking test");
    }
    assert!(
        !dir.exists(),
        "{} outlived the panicking test",
        dir.display()
    );
}

/// Whether `pid` is a live etcd or kube-apiserver (not a zombie, not a reused PID).
fn running(pid: u32) -> bool {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmdline = String::from_utf8_lossy(&cmdline);
    cmdline.contains("etcd") || cmdline.contains("kube-apiserver")
}
