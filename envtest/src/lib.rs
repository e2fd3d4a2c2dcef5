//! Test support for cluster tests against a real Kubernetes control plane (no mocks): etcd and
//! kube-apiserver from `$KUBEBUILDER_ASSETS` (built once by `scripts/envtest.sh`), started on free
//! loopback ports and shared by the tests of one test binary while any of them runs. Each test gets
//! a [`TestEnv`]: its own `kube::Client`, a throwaway namespace, and kubectl wired to both.
//!
//! ```no_run
//! # async fn example() {
//! let env = tandem_envtest::TestEnv::start().await;
//! let out = env.kubectl_apply("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n").await;
//! # }
//! ```
//!
//! The processes are killed by PID when the last `TestEnv` is dropped, also when a test panics.

mod assets;
mod control_plane;
mod controller_manager;
mod crds;
mod error;
mod process;

pub use assets::{ASSETS_ENV, Assets};
pub use control_plane::ControlPlane;
pub use controller_manager::{CONTROLLERS, ControllerManager};
pub use error::Error;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ObjectMeta, PostParams};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One test's view of the shared control plane: a client and a namespace of its own.
pub struct TestEnv {
    control_plane: Arc<ControlPlane>,
    client: kube::Client,
    namespace: String,
}

impl TestEnv {
    /// Starts (or joins) the control plane and creates a namespace for this test. Panics with the
    /// reason when it cannot, for example that `KUBEBUILDER_ASSETS` is unset.
    pub async fn start() -> TestEnv {
        match TestEnv::try_start().await {
            Ok(env) => env,
            Err(error) => panic!("envtest: {error}"),
        }
    }

    /// [`TestEnv::start`] returning the error instead of panicking.
    pub async fn try_start() -> Result<TestEnv, Error> {
        // Every Tandem process uses rustls with ring; a test's own HTTP clients need it installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let control_plane = ControlPlane::shared().await?;
        let client = control_plane.client().await?;
        let namespace = format!("test-{:08x}", rand::random::<u32>());
        let object = Namespace {
            metadata: ObjectMeta {
                name: Some(namespace.clone()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &object)
            .await?;
        Ok(TestEnv {
            control_plane,
            client,
            namespace,
        })
    }

    /// A client for the admin user (cluster-admin), defaulting to this test's namespace.
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// This test's namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// `Api<K>` in this test's namespace.
    pub fn namespaced<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client(), &self.namespace)
    }

    pub fn control_plane(&self) -> &ControlPlane {
        &self.control_plane
    }

    /// `kubectl --kubeconfig <admin> --namespace <this test's>`; add arguments and run it.
    pub fn kubectl(&self) -> Result<tokio::process::Command, Error> {
        let assets = self.control_plane.assets();
        assets.require(&assets.kubectl)?;
        let mut command = tokio::process::Command::new(&assets.kubectl);
        command
            .arg("--kubeconfig")
            .arg(self.control_plane.kubeconfig())
            .arg("--namespace")
            .arg(&self.namespace)
            .kill_on_drop(true);
        Ok(command)
    }

    /// `kubectl apply -f -` with `manifest` on stdin; kubectl's output, or its error output.
    pub async fn kubectl_apply(&self, manifest: &str) -> Result<String, Error> {
        self.run_kubectl(&["apply", "-f", "-"], manifest).await
    }

    /// Runs kubectl with `args` and `stdin`; its stdout when it exits 0.
    pub async fn run_kubectl(&self, args: &[&str], stdin: &str) -> Result<String, Error> {
        use tokio::io::AsyncWriteExt;
        let failed = |message: String| Error::Kubectl {
            args: args.join(" "),
            message,
        };
        let mut child = self
            .kubectl()?
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| failed(format!("cannot start: {e}")))?;
        if let Some(mut pipe) = child.stdin.take() {
            pipe.write_all(stdin.as_bytes())
                .await
                .map_err(|e| failed(format!("writing stdin: {e}")))?;
        }
        let output = child
            .wait_with_output()
            .await
            .map_err(|e| failed(format!("waiting: {e}")))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(failed(format!(
                "{}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )))
        }
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- envtest: last lines of kube-apiserver's log ({}) ----\n{}",
                self.control_plane.dir().display(),
                self.control_plane.apiserver_log_tail(20)
            );
        }
    }
}

/// Polls `check` until it returns `Some`, for at most `timeout`; panics naming `what` when it
/// does not (test support: a condition that never holds fails the test).
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
