//! A private RabbitMQ node for tests: `rabbitmq-server` on free loopback ports (AMQP and Erlang
//! distribution) with its node name, database, logs, config, plugin list (none: no management
//! plugin) and Erlang cookie in a fresh temp directory.
//!
//! The node runs under a small `sh` "lifeline" that reads its stdin until end of file, then stops
//! the node with `rabbitmqctl stop` and removes the directory. The stdin is a pipe from the test
//! process, so the node is stopped when the handle is dropped *and* when the test process exits
//! without dropping it (which is what happens to [`RabbitServer::shared`]). A node that does not
//! stop in time is killed with its whole process group. Only the machine's shared `epmd` is left.
//!
//! A node takes 5-20 s to boot, so tests share one per test process ([`RabbitServer::shared`],
//! with names unique per test) and only a test that restarts the broker starts its own.

use crate::{free_port, fresh_dir};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A running RabbitMQ node, stopped on drop.
#[derive(Debug)]
pub struct RabbitServer {
    lifeline: Child,
    stdin: Option<ChildStdin>,
    port: u16,
    node: String,
    dir: PathBuf,
}

const RABBIT_BIN: &str = "/usr/lib/rabbitmq/bin";
const START_DEADLINE: Duration = Duration::from_secs(120);
const STOP_DEADLINE: Duration = Duration::from_secs(30);

/// Stops the node once stdin closes. `$1` is rabbitmq-server, `$2` rabbitmqctl.
const LIFELINE: &str = r#"
"$1" >"$DIR/server.log" 2>&1 </dev/null &
server=$!
cat >/dev/null
"$2" -n "$RABBITMQ_NODENAME" stop >/dev/null 2>&1 || kill -TERM "$server" 2>/dev/null
wait "$server"
rm -rf "$DIR"
"#;

fn binary(name: &str) -> PathBuf {
    let mut candidates = vec![PathBuf::from(RABBIT_BIN).join(name)];
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|dir| dir.join(name)));
    }
    candidates.into_iter().find(|p| p.is_file()).unwrap_or_else(|| {
        panic!("{name} not found in {RABBIT_BIN} or PATH; run scripts/test.sh, which installs rabbitmq-server")
    })
}

/// Whether an AMQP 0-9-1 server on `port` answers the protocol header with a method frame.
fn answers_amqp(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream.write_all(b"AMQP\x00\x00\x09\x01").is_err() {
        return false;
    }
    let mut frame_type = [0u8; 1];
    stream.read_exact(&mut frame_type).is_ok() && frame_type[0] == 1
}

impl RabbitServer {
    /// Starts a node of its own and returns once it accepts AMQP connections (guest/guest).
    /// Blocks the calling thread while the node boots (test code only).
    pub fn start() -> RabbitServer {
        let dir = fresh_dir("tandem-rabbitmq");
        let port = free_port();
        let node = format!("tandem-{port}@localhost");
        std::fs::write(
            dir.join("rabbitmq.conf"),
            format!("listeners.tcp.default = 127.0.0.1:{port}\n"),
        )
        .expect("write rabbitmq.conf");
        std::fs::write(dir.join("enabled_plugins"), "[].\n").expect("write enabled_plugins");
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(LIFELINE)
            .arg("lifeline")
            .arg(binary("rabbitmq-server"))
            .arg(binary("rabbitmqctl"))
            .env("DIR", &dir)
            .env("HOME", &dir)
            .env("RABBITMQ_NODENAME", &node)
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", port.to_string())
            .env("RABBITMQ_DIST_PORT", free_port().to_string())
            .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir.join("log"))
            .env("RABBITMQ_LOGS", "-")
            .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("enabled_plugins"))
            .env("RABBITMQ_PID_FILE", dir.join("rabbitmq.pid"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut lifeline = command.spawn().expect("spawn sh for rabbitmq-server");
        let stdin = lifeline.stdin.take();
        let mut server = RabbitServer {
            lifeline,
            stdin,
            port,
            node,
            dir,
        };
        let deadline = Instant::now() + START_DEADLINE;
        while !answers_amqp(port) {
            let exited = matches!(server.lifeline.try_wait(), Ok(Some(_)));
            if exited || Instant::now() > deadline {
                let log =
                    std::fs::read_to_string(server.dir.join("server.log")).unwrap_or_default();
                drop(server);
                panic!("rabbitmq-server on port {port} did not start; log:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    /// One node for every test of this process, stopped when the process exits.
    pub fn shared() -> &'static RabbitServer {
        static SHARED: OnceLock<RabbitServer> = OnceLock::new();
        SHARED.get_or_init(RabbitServer::start)
    }

    /// `amqp://guest:guest@127.0.0.1:port`, the form `connectionString` takes.
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Runs `rabbitmqctl -n <node> <args>` against this node.
    pub fn ctl(&self, args: &[&str]) -> Output {
        Command::new(binary("rabbitmqctl"))
            .arg("-n")
            .arg(&self.node)
            .args(args)
            .env("HOME", &self.dir)
            .output()
            .expect("run rabbitmqctl")
    }

    /// Stops and starts the RabbitMQ application: every connection is closed by the broker and
    /// non-durable queues are gone, as after a broker restart. Returns once AMQP answers again.
    pub fn restart_app(&self) {
        for step in ["stop_app", "start_app"] {
            let out = self.ctl(&[step]);
            assert!(
                out.status.success(),
                "rabbitmqctl {step}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let deadline = Instant::now() + START_DEADLINE;
        while !answers_amqp(self.port) {
            assert!(Instant::now() < deadline, "rabbitmq did not come back");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for RabbitServer {
    fn drop(&mut self) {
        drop(self.stdin.take()); // the lifeline stops the node
        let deadline = Instant::now() + STOP_DEADLINE;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.lifeline.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if let Ok(pgid) = i32::try_from(self.lifeline.id()) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pgid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.lifeline.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
