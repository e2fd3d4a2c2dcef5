//! A throwaway `mosquitto` on a free loopback port, for tests of the MQTT pub/sub and binding:
//! a generated config file (anonymous access, no persistence) in a fresh temp directory, the
//! broker's log beside it, and the process killed (and the directory removed) on drop.

use crate::{free_port, fresh_dir};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `mosquitto`, killed on drop.
#[derive(Debug)]
pub struct MosquittoServer {
    child: Child,
    port: u16,
    dir: PathBuf,
    /// Extra lines of the listener's configuration (TLS).
    listener: String,
}

const START_DEADLINE: Duration = Duration::from_secs(10);
/// A free port can be taken by someone else before the broker binds it; try a few.
const ATTEMPTS: usize = 3;

fn find_mosquitto() -> PathBuf {
    let mut candidates: Vec<PathBuf> = ["/usr/sbin", "/usr/local/sbin", "/usr/bin"]
        .iter()
        .map(|dir| PathBuf::from(dir).join("mosquitto"))
        .collect();
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|dir| dir.join("mosquitto")));
    }
    candidates.into_iter().find(|p| p.is_file()).unwrap_or_else(|| {
        panic!("mosquitto not found in /usr/sbin, /usr/local/sbin or PATH; run scripts/test.sh, which installs it")
    })
}

/// Whether an MQTT broker on `port` answers a CONNECT with a CONNACK that accepts it.
fn answers_connect(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    // CONNECT, MQTT 3.1.1, clean session, keep-alive 60 s, client id "probe".
    let connect = [
        0x10, 17, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 5, b'p', b'r', b'o', b'b', b'e',
    ];
    if stream.write_all(&connect).is_err() {
        return false;
    }
    let mut connack = [0u8; 4];
    let accepted = stream.read_exact(&mut connack).is_ok() && connack == [0x20, 2, 0, 0];
    let _ = stream.write_all(&[0xe0, 0]); // DISCONNECT
    accepted
}

fn spawn(bin: &Path, dir: &Path, port: u16, listener: &str) -> Child {
    let config = dir.join("mosquitto.conf");
    std::fs::write(
        &config,
        format!("listener {port} 127.0.0.1\n{listener}allow_anonymous true\npersistence false\nlog_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\n"),
    )
    .expect("write mosquitto.conf");
    let log = std::fs::File::create(dir.join("mosquitto.log")).expect("create mosquitto.log");
    Command::new(bin)
        .arg("-c")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {}: {e}", bin.display()))
}

/// Waits until the broker accepts a connection; `Err` says why not.
fn wait_ready(child: &mut Child, port: u16) -> Result<(), String> {
    let deadline = Instant::now() + START_DEADLINE;
    loop {
        if answers_connect(port) {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("mosquitto on port {port} exited with {status}"));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "mosquitto on port {port} did not accept a connection in time"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until something accepts TCP connections on `port` (a TLS listener, which the plain
/// CONNECT probe cannot talk to).
fn wait_listening(child: &mut Child, port: u16) -> Result<(), String> {
    let deadline = Instant::now() + START_DEADLINE;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("mosquitto on port {port} exited with {status}"));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("mosquitto on port {port} did not listen in time"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A test CA with a server certificate for 127.0.0.1 and a client certificate, made with the
/// `openssl` command in a fresh directory (removed on drop): `ca.crt`, `server.crt`/`server.key`,
/// `client.crt`/`client.key`.
#[derive(Debug)]
pub struct TestCerts {
    pub dir: PathBuf,
}

impl TestCerts {
    pub fn generate() -> TestCerts {
        let dir = fresh_dir("tandem-certs");
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .output()
                .expect("run openssl (scripts/test.sh installs it)");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        openssl(
            &[
                &["req", "-x509"][..],
                &ec,
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.crt",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=tandem test CA",
                ],
            ]
            .concat(),
        );
        for (name, usage) in [("server", "serverAuth"), ("client", "clientAuth")] {
            let ext = format!("{name}.ext");
            std::fs::write(
                dir.join(&ext),
                format!("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage={usage}\n"),
            )
            .expect("write extensions");
            let (key, csr, crt) = (
                format!("{name}.key"),
                format!("{name}.csr"),
                format!("{name}.crt"),
            );
            openssl(
                &[
                    &["req"][..],
                    &ec,
                    &[
                        "-keyout",
                        &key,
                        "-out",
                        &csr,
                        "-subj",
                        &format!("/CN=tandem test {name}"),
                    ],
                ]
                .concat(),
            );
            openssl(&[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &crt,
                "-days",
                "2",
                "-extfile",
                &ext,
            ]);
        }
        for key in ["server.key", "client.key"] {
            // mosquitto reads its key after dropping root for its own user.
            let _ = std::fs::set_permissions(
                dir.join(key),
                std::os::unix::fs::PermissionsExt::from_mode(0o644),
            );
        }
        TestCerts { dir }
    }

    /// The PEM text of one of the files.
    pub fn pem(&self, file: &str) -> String {
        std::fs::read_to_string(self.dir.join(file)).expect("read a generated PEM file")
    }
}

impl Drop for TestCerts {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl MosquittoServer {
    /// Starts a broker and returns once it accepts MQTT connections. Blocks the calling thread
    /// briefly (test code only).
    pub fn start() -> MosquittoServer {
        Self::start_with(String::new(), true)
    }

    /// Starts a broker whose listener speaks TLS with `certs`' server certificate and requires
    /// a client certificate signed by `certs`' CA.
    pub fn start_tls(certs: &TestCerts) -> MosquittoServer {
        let d = &certs.dir;
        let listener = format!(
            "cafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate true\n",
            d.join("ca.crt").display(),
            d.join("server.crt").display(),
            d.join("server.key").display()
        );
        Self::start_with(listener, false)
    }

    fn start_with(listener: String, plain: bool) -> MosquittoServer {
        let bin = find_mosquitto();
        let dir = fresh_dir("tandem-mosquitto");
        let mut last_failure = String::new();
        for _ in 0..ATTEMPTS {
            let port = free_port();
            let mut child = spawn(&bin, &dir, port, &listener);
            let ready = if plain {
                wait_ready(&mut child, port)
            } else {
                wait_listening(&mut child, port)
            };
            match ready {
                Ok(()) => {
                    return MosquittoServer {
                        child,
                        port,
                        dir,
                        listener,
                    };
                }
                Err(why) => last_failure = why,
            }
        }
        let log = std::fs::read_to_string(dir.join("mosquitto.log")).unwrap_or_default();
        let _ = std::fs::remove_dir_all(&dir);
        panic!("could not start mosquitto: {last_failure}\n{log}");
    }

    /// Kills the broker (no DISCONNECT to anyone, no state kept) and starts a new one on the
    /// same port: what clients see when a broker crashes and comes back.
    pub fn restart(&mut self) {
        self.stop();
        let bin = find_mosquitto();
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            let mut child = spawn(&bin, &self.dir, self.port, &self.listener);
            let ready = if self.listener.is_empty() {
                wait_ready(&mut child, self.port)
            } else {
                wait_listening(&mut child, self.port)
            };
            match ready {
                Ok(()) => {
                    self.child = child;
                    return;
                }
                Err(why) => assert!(Instant::now() < deadline, "restarting mosquitto: {why}"),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills the broker; [`MosquittoServer::restart`] brings it back.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// `tcp://127.0.0.1:port` (`ssl://` for a TLS broker), the form the `url` metadata takes.
    pub fn url(&self) -> String {
        let scheme = if self.listener.is_empty() {
            "tcp"
        } else {
            "ssl"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for MosquittoServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
