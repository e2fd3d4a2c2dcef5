//! A throwaway PostgreSQL cluster for tests of the PostgreSQL store: `initdb` into a fresh temp
//! directory, `postgres` on a free loopback port with its socket in the same directory, and on
//! drop the postmaster is stopped by PID and the directory removed.
//!
//! `initdb` and `postgres` refuse to run as root, so as root they run as the `postgres` user
//! through `runuser`, after the directory is handed to that user.

use crate::free_port;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running PostgreSQL server, stopped on drop.
#[derive(Debug)]
pub struct PostgresServer {
    dir: PathBuf,
    port: u16,
    /// `postgres`, or `runuser` when started as root (it forks `postgres` and waits for it).
    child: Child,
}

const START_DEADLINE: Duration = Duration::from_secs(30);
const STOP_DEADLINE: Duration = Duration::from_secs(10);
const ATTEMPTS: usize = 3;

fn find_binary(name: &str) -> PathBuf {
    let mut dirs = vec![PathBuf::from("/usr/local/bin")];
    if let Ok(versions) = fs::read_dir("/usr/lib/postgresql") {
        let mut found: Vec<PathBuf> = versions.flatten().map(|v| v.path().join("bin")).collect();
        found.sort();
        dirs.extend(found.into_iter().rev());
    }
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file()).unwrap_or_else(|| {
        panic!("{name} not found in /usr/local/bin, /usr/lib/postgresql/*/bin or PATH; run scripts/test.sh, which installs PostgreSQL")
    })
}

/// A new, empty directory under the system temp dir.
fn fresh_dir() -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    for n in 0..100u32 {
        let dir =
            std::env::temp_dir().join(format!("tandem-pg-{}-{nanos}-{n}", std::process::id()));
        if fs::create_dir(&dir).is_ok() {
            return dir;
        }
    }
    panic!("could not create a temp dir for PostgreSQL");
}

/// The uid and gid of the `postgres` user, from /etc/passwd.
fn postgres_user() -> (u32, u32) {
    let passwd = fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 3 && f[0] == "postgres")
        .and_then(|f| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
        .expect("running as root needs a postgres user (run scripts/test.sh, which creates it)")
}

/// `bin`, run as the postgres user when we are root.
fn command(bin: &Path, as_root: bool) -> Command {
    if as_root {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(bin);
        cmd
    } else {
        Command::new(bin)
    }
}

/// Whether a client can connect and run a query. The client needs a runtime of its own, and
/// the caller may be inside a (current-thread) test runtime, so it runs on its own thread.
fn accepts_connections(conn: &str) -> bool {
    let conn = conn.to_owned();
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return false;
        };
        rt.block_on(async {
            let attempt = async {
                let (client, connection) =
                    tokio_postgres::connect(&conn, tokio_postgres::NoTls).await?;
                tokio::spawn(connection);
                client.simple_query("SELECT 1").await
            };
            matches!(
                tokio::time::timeout(Duration::from_secs(2), attempt).await,
                Ok(Ok(_))
            )
        })
    })
    .join()
    .unwrap_or(false)
}

impl PostgresServer {
    /// Creates a cluster and starts a server on it; returns once a client can connect. Blocks
    /// the calling thread for a few seconds (test code only).
    pub fn start() -> PostgresServer {
        let (initdb, postgres) = (find_binary("initdb"), find_binary("postgres"));
        let dir = fresh_dir();
        let as_root = fs::metadata(&dir).expect("stat temp dir").uid() == 0;
        if as_root {
            let (uid, gid) = postgres_user();
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                .expect("chown temp dir to postgres");
        }
        let data = dir.join("data");
        let out = command(&initdb, as_root)
            .arg("-D")
            .arg(&data)
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ])
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", initdb.display()));
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );

        let log_path = dir.join("postgres.log");
        let mut last_failure = String::new();
        for _ in 0..ATTEMPTS {
            let port = free_port();
            let log = fs::File::create(&log_path).expect("create postgres log");
            let mut child = command(&postgres, as_root)
                .arg("-D")
                .arg(&data)
                .args(["-p", &port.to_string(), "-k"])
                .arg(&dir)
                .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
                .args(["-c", "synchronous_commit=off", "-c", "full_page_writes=off"])
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("clone log handle"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("spawning {}: {e}", postgres.display()));
            let conn = connection_string(port);
            let deadline = Instant::now() + START_DEADLINE;
            loop {
                if accepts_connections(&conn) {
                    return PostgresServer { dir, port, child };
                }
                if let Ok(Some(status)) = child.try_wait() {
                    last_failure = format!("postgres exited with {status}");
                    break;
                }
                if Instant::now() > deadline {
                    last_failure = "postgres did not accept connections in time".to_owned();
                    stop(&data, &mut child);
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let log = fs::read_to_string(&log_path).unwrap_or_default();
        let _ = fs::remove_dir_all(&dir);
        panic!("could not start postgres: {last_failure}\n{log}");
    }

    /// Keyword/value form: user `postgres`, database `postgres`, over TCP.
    pub fn connection_string(&self) -> String {
        connection_string(self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

fn connection_string(port: u16) -> String {
    format!("host=127.0.0.1 port={port} user=postgres dbname=postgres")
}

/// Stops the postmaster whose PID is in `data/postmaster.pid` (immediate shutdown), then makes
/// sure `child` is gone.
fn stop(data: &Path, child: &mut Child) {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let pid = fs::read_to_string(data.join("postmaster.pid"))
        .ok()
        .and_then(|s| s.lines().next().and_then(|l| l.trim().parse::<i32>().ok()));
    if let Some(pid) = pid {
        let _ = kill(Pid::from_raw(pid), Signal::SIGQUIT);
        let deadline = Instant::now() + STOP_DEADLINE;
        let mut gone = false;
        while !gone && Instant::now() < deadline {
            // Either the process no longer exists, or our child (postgres itself, or the runuser
            // that waits for it) has exited.
            gone =
                kill(Pid::from_raw(pid), None).is_err() || matches!(child.try_wait(), Ok(Some(_)));
            std::thread::sleep(Duration::from_millis(20));
        }
        if !gone {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        stop(&self.dir.join("data"), &mut self.child);
        let _ = fs::remove_dir_all(&self.dir);
    }
}
