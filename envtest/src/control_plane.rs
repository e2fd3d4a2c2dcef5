//! etcd and kube-apiserver on free loopback ports, with their data, certificates and keys in one
//! temp dir. The apiserver serves TLS with the self-signed certificate it writes to its `--cert-dir`;
//! clients trust that file and authenticate with a static admin token. Dropping the control plane
//! kills both processes by PID (apiserver first), then removes the temp dir.

use crate::Error;
use crate::assets::Assets;
use crate::process::Process;
use kube::config::{KubeConfigOptions, Kubeconfig};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// How long etcd may take to listen, and the apiserver to become ready, on a busy machine.
const ETCD_TIMEOUT: Duration = Duration::from_secs(30);
const APISERVER_TIMEOUT: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(200);

/// The control plane the tests of one test binary share while any of them runs.
static SHARED: tokio::sync::Mutex<Weak<ControlPlane>> = tokio::sync::Mutex::const_new(Weak::new());

/// A running etcd + kube-apiserver.
#[derive(Debug)]
pub struct ControlPlane {
    // Field order is drop order: the apiserver goes before etcd, both before the temp dir.
    apiserver: Process,
    etcd: Process,
    server: String,
    kubeconfig: PathBuf,
    assets: Assets,
    dir: tempfile::TempDir,
}

impl ControlPlane {
    /// The control plane of this test binary: a running one if another test holds it, else a new
    /// one from `$KUBEBUILDER_ASSETS`. It stops when the last test holding it ends (or panics).
    pub async fn shared() -> Result<Arc<ControlPlane>, Error> {
        let mut slot = SHARED.lock().await;
        if let Some(running) = slot.upgrade() {
            return Ok(running);
        }
        let started = Arc::new(ControlPlane::start(Assets::from_env()?).await?);
        *slot = Arc::downgrade(&started);
        Ok(started)
    }

    /// Starts etcd and kube-apiserver from `assets` and waits until the apiserver is ready.
    pub async fn start(assets: Assets) -> Result<ControlPlane, Error> {
        let dir = tempfile::Builder::new()
            .prefix("tandem-envtest-")
            .tempdir()
            .map_err(|source| Error::io("creating the temp dir", source))?;
        let root = dir.path();
        let token = format!("{:032x}", rand::random::<u128>());
        write(
            &root.join("tokens.csv"),
            &format!("{token},admin,admin,\"system:masters\"\n"),
        )?;
        // The apiserver signs service-account tokens with this key (required flags since 1.20).
        let key = rcgen::KeyPair::generate()?;
        write(&root.join("sa.key"), &key.serialize_pem())?;
        write(&root.join("sa.pub"), &key.public_key_pem())?;

        let [etcd_port, peer_port, api_port] = free_ports()?;
        let mut etcd = Process::spawn(
            "etcd",
            &assets.etcd,
            etcd_args(root, etcd_port, peer_port),
            root.join("etcd.log"),
        )?;
        let etcd_addr = SocketAddr::from(([127, 0, 0, 1], etcd_port));
        wait_until(&mut [&mut etcd], ETCD_TIMEOUT, || async move {
            tokio::net::TcpStream::connect(etcd_addr).await.is_ok()
        })
        .await?;

        let mut apiserver = Process::spawn(
            "kube-apiserver",
            &assets.kube_apiserver,
            apiserver_args(root, etcd_port, api_port),
            root.join("kube-apiserver.log"),
        )?;
        let server = format!("https://127.0.0.1:{api_port}");
        let ca = root.join("apiserver-certs").join("apiserver.crt");
        let kubeconfig = root.join("kubeconfig");
        write(&kubeconfig, &kubeconfig_json(&server, &ca, &token))?;
        wait_until(&mut [&mut apiserver, &mut etcd], APISERVER_TIMEOUT, || {
            let (ca, kubeconfig) = (&ca, &kubeconfig);
            async move { ca.exists() && readyz(kubeconfig).await }
        })
        .await?;
        Ok(ControlPlane {
            apiserver,
            etcd,
            server,
            kubeconfig,
            assets,
            dir,
        })
    }

    /// A new client for the admin user. A `kube::Client` belongs to the tokio runtime it was made
    /// on, so each test makes its own.
    pub async fn client(&self) -> Result<kube::Client, Error> {
        client_from(&self.kubeconfig).await
    }

    /// `https://127.0.0.1:<port>`.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// A kubeconfig file for the admin user (for kubectl).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    pub fn assets(&self) -> &Assets {
        &self.assets
    }

    /// The temp dir with etcd's data, the certificates, keys and logs; removed on drop.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The PIDs of etcd and kube-apiserver.
    pub fn pids(&self) -> Vec<u32> {
        vec![self.etcd.pid(), self.apiserver.pid()]
    }

    /// The end of the apiserver's log, for a failing test's output.
    pub fn apiserver_log_tail(&self, lines: usize) -> String {
        self.apiserver.log_tail(lines)
    }
}

fn etcd_args(root: &Path, port: u16, peer_port: u16) -> Vec<String> {
    let client = format!("http://127.0.0.1:{port}");
    let peer = format!("http://127.0.0.1:{peer_port}");
    vec![
        "--name=envtest".into(),
        format!("--data-dir={}", root.join("etcd").display()),
        format!("--listen-client-urls={client}"),
        format!("--advertise-client-urls={client}"),
        format!("--listen-peer-urls={peer}"),
        format!("--initial-advertise-peer-urls={peer}"),
        format!("--initial-cluster=envtest={peer}"),
    ]
}

fn apiserver_args(root: &Path, etcd_port: u16, port: u16) -> Vec<String> {
    let file = |name: &str| root.join(name).display().to_string();
    vec![
        format!("--etcd-servers=http://127.0.0.1:{etcd_port}"),
        format!("--secure-port={port}"),
        "--bind-address=127.0.0.1".into(),
        format!("--cert-dir={}", file("apiserver-certs")),
        format!("--token-auth-file={}", file("tokens.csv")),
        "--authorization-mode=RBAC".into(),
        "--service-account-issuer=https://kubernetes.default.svc".into(),
        format!("--service-account-key-file={}", file("sa.pub")),
        format!("--service-account-signing-key-file={}", file("sa.key")),
        "--service-cluster-ip-range=10.0.0.0/24".into(),
        "--allow-privileged=true".into(),
    ]
}

fn kubeconfig_json(server: &str, ca: &Path, token: &str) -> String {
    // JSON is YAML, so kubectl and kube read it alike.
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "envtest", "cluster": {"server": server, "certificate-authority": ca}}],
        "users": [{"name": "admin", "user": {"token": token}}],
        "contexts": [{"name": "envtest", "context": {"cluster": "envtest", "user": "admin"}}],
        "current-context": "envtest",
    })
    .to_string()
}

async fn client_from(kubeconfig: &Path) -> Result<kube::Client, Error> {
    let kubeconfig = Kubeconfig::read_from(kubeconfig)?;
    let config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    Ok(kube::Client::try_from(config)?)
}

/// Whether the apiserver answers `GET /readyz` with `ok`.
async fn readyz(kubeconfig: &Path) -> bool {
    let Ok(client) = client_from(kubeconfig).await else {
        return false;
    };
    let Ok(request) = http::Request::get("/readyz").body(Vec::new()) else {
        return false;
    };
    client
        .request_text(request)
        .await
        .is_ok_and(|body| body.trim() == "ok")
}

/// Polls `ready` until it is true; fails when `timeout` passes or one of `processes` exits.
pub(crate) async fn wait_until<F, Fut>(
    processes: &mut [&mut Process],
    timeout: Duration,
    mut ready: F,
) -> Result<(), Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        for process in processes.iter_mut() {
            if let Some(status) = process.exited() {
                return Err(process.exited_error(status));
            }
        }
        if ready().await {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let last = processes.first().map(|p| (p.name(), p.log_tail(30)));
            let (name, log) = last.unwrap_or(("process", String::new()));
            return Err(Error::NotReady {
                name,
                waited: timeout,
                log,
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// `N` distinct loopback ports that were free a moment ago.
fn free_ports<const N: usize>() -> Result<[u16; N], Error> {
    let listeners = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| Error::io("finding a free port", source))?;
    let mut ports = [0; N];
    for (port, listener) in ports.iter_mut().zip(&listeners) {
        *port = listener
            .local_addr()
            .map_err(|source| Error::io("finding a free port", source))?
            .port();
    }
    Ok(ports)
}

fn write(path: &Path, contents: &str) -> Result<(), Error> {
    std::fs::write(path, contents)
        .map_err(|source| Error::io(format!("writing {}", path.display()), source))
}
