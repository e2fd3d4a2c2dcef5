//! A container as a local process: `ip netns exec <pod's namespace> sh -c '<mounts>; exec "$0" "$@"'
//! <program> <args…>`. `ip netns exec` gives the process a private mount namespace (with the pod's
//! resolv.conf over `/etc/resolv.conf`); the shell bind-mounts the pod's volumes at their paths in
//! it and then becomes the program, so the PID is the program's. Killed and reaped on drop.

use super::spec::Launch;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};

/// A running (or exited) container process.
#[derive(Debug)]
pub struct ContainerProcess {
    child: Child,
    pub started_at: String,
}

/// `ip` and its arguments that run `launch` in network namespace `netns`.
pub fn command_line(netns: &str, launch: &Launch) -> Vec<String> {
    let mut script = String::from("set -e; ");
    for (source, target) in &launch.mounts {
        let (source, target) = (quote(&source.to_string_lossy()), quote(target));
        script.push_str(&format!(
            "if [ -d {source} ]; then mkdir -p {target}; else mkdir -p \"$(dirname {target})\"; touch {target}; fi; \
             mount --bind {source} {target}; "
        ));
    }
    script.push_str("exec \"$0\" \"$@\"");
    let mut line = vec![
        "ip".to_owned(),
        "netns".to_owned(),
        "exec".to_owned(),
        netns.to_owned(),
        "sh".to_owned(),
        "-c".to_owned(),
        script,
        launch.program.to_string_lossy().into_owned(),
    ];
    line.extend(launch.args.iter().cloned());
    line
}

/// `text` in single quotes for sh.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

impl ContainerProcess {
    /// Starts `launch` in `netns` with its output appended to `log` and `cwd` as its directory.
    pub fn start(netns: &str, launch: &Launch, log: &Path, cwd: &Path) -> Result<Self, String> {
        let line = command_line(netns, launch);
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| format!("opening {}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| format!("log: {e}"))?;
        let child = Command::new(&line[0])
            .args(&line[1..])
            .env_clear()
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", launch.program.display()))?;
        Ok(ContainerProcess {
            child,
            started_at: now_rfc3339(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status once it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Sends SIGTERM (the kubelet's stop signal).
    pub fn terminate(&mut self) {
        if self.exited().is_none()
            && let Ok(pid) = i32::try_from(self.child.id())
        {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
    }
}

impl Drop for ContainerProcess {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The current time as the API writes it (`2006-01-02T15:04:05Z`).
pub fn now_rfc3339() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn the_command_line_mounts_volumes_then_becomes_the_program() {
        let launch = Launch {
            program: PathBuf::from("/bin/app"),
            args: vec!["--port".into(), "8080".into()],
            env: vec![],
            mounts: vec![(PathBuf::from("/tmp/pod/volumes/t"), "/var/run/it's".into())],
        };
        let line = command_line("ns1", &launch);
        assert_eq!(line[..6], ["ip", "netns", "exec", "ns1", "sh", "-c"]);
        assert!(
            line[6].contains("mount --bind '/tmp/pod/volumes/t' '/var/run/it'\\''s'"),
            "{}",
            line[6]
        );
        assert!(line[6].ends_with("exec \"$0\" \"$@\""));
        assert_eq!(line[7..], ["/bin/app", "--port", "8080"]);
    }
}
