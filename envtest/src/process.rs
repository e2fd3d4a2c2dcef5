//! One control-plane process: its output goes to a log file, and dropping it kills it by PID and
//! reaps it, also while a panicking test unwinds.

use crate::Error;
use std::ffi::OsStr;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

/// A running child process of the test binary.
#[derive(Debug)]
pub(crate) struct Process {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Process {
    /// Starts `program args…` with stdout and stderr appended to `log`.
    pub(crate) fn spawn<I, S>(
        name: &'static str,
        program: &Path,
        args: I,
        log: PathBuf,
    ) -> Result<Self, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let io = |what: String| move |source| Error::Io { what, source };
        let out = File::create(&log).map_err(io(format!("creating {}", log.display())))?;
        let err = out
            .try_clone()
            .map_err(io(format!("opening {}", log.display())))?;
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(io(format!("starting {}", program.display())))?;
        Ok(Process { name, child, log })
    }

    pub(crate) fn name(&self) -> &'static str {
        self.name
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status, if the process has exited.
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The last `lines` lines of the process's log.
    pub(crate) fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// An error saying the process exited early, with the end of its log.
    pub(crate) fn exited_error(&self, status: ExitStatus) -> Error {
        Error::Exited {
            name: self.name,
            status,
            log: self.log_tail(30),
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // SIGKILL to the PID, then wait so no zombie is left; the data dir is thrown away anyway.
        if self.exited().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
