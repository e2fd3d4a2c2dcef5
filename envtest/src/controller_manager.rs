//! The real `kube-controller-manager` next to a [`ControlPlane`], for tests that need what its
//! controllers do: Deployments create ReplicaSets create Pods, Endpoints follow Services and Pods,
//! namespaces get their `default` ServiceAccount and its token Secret, owners' deletion cascades.
//! Only those controllers run (no node lifecycle, no pod garbage collection: the test node agent
//! stands in for kubelets, and no scheduler: it binds Pods itself). Dropping it kills it by PID.

use crate::Error;
use crate::control_plane::{ControlPlane, wait_until};
use crate::process::Process;
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Api;
use std::path::Path;
use std::time::Duration;

/// The controllers a one-machine cluster needs.
pub const CONTROLLERS: &[&str] = &[
    "deployment",
    "replicaset",
    "endpoint",
    "serviceaccount",
    "serviceaccount-token",
    "garbagecollector",
];

/// How long it may take to create the `default` ServiceAccount of `default` on a busy machine.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A running kube-controller-manager.
#[derive(Debug)]
pub struct ControllerManager {
    process: Process,
}

impl ControllerManager {
    /// Starts it against `control_plane` (as the admin user, with the key the apiserver verifies
    /// service-account tokens with) and waits until its controllers act: the `default` namespace
    /// has its `default` ServiceAccount with a token Secret.
    pub async fn start(control_plane: &ControlPlane) -> Result<ControllerManager, Error> {
        let assets = control_plane.assets();
        assets.require(&assets.kube_controller_manager)?;
        let dir = control_plane.dir();
        let mut process = Process::spawn(
            "kube-controller-manager",
            &assets.kube_controller_manager,
            args(dir, control_plane.kubeconfig()),
            dir.join("kube-controller-manager.log"),
        )?;
        let client = control_plane.client().await?;
        let accounts: Api<ServiceAccount> = Api::namespaced(client, "default");
        wait_until(&mut [&mut process], READY_TIMEOUT, || {
            let accounts = accounts.clone();
            async move {
                let account = accounts.get_opt("default").await.ok().flatten();
                account.is_some_and(|a| a.secrets.is_some_and(|s| !s.is_empty()))
            }
        })
        .await?;
        Ok(ControllerManager { process })
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The end of its log, for a failing test's output.
    pub fn log_tail(&self, lines: usize) -> String {
        self.process.log_tail(lines)
    }
}

fn args(dir: &Path, kubeconfig: &Path) -> Vec<String> {
    let file = |name: &str| dir.join(name).display().to_string();
    vec![
        format!("--kubeconfig={}", kubeconfig.display()),
        format!("--controllers={}", CONTROLLERS.join(",")),
        format!("--service-account-private-key-file={}", file("sa.key")),
        format!("--root-ca-file={}", file("apiserver-certs/apiserver.crt")),
        "--use-service-account-credentials=true".into(),
        "--leader-elect=false".into(),
        // No serving: nothing scrapes it, and fixed ports would collide between test binaries.
        "--port=0".into(),
        "--secure-port=0".into(),
        // React within a second, as a test wants (the defaults suit a large cluster).
        "--concurrent-endpoint-syncs=5".into(),
        "--endpoint-updates-batch-period=0s".into(),
    ]
}
