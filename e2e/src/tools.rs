//! The external tools the chart tests run, found under `$TANDEM_TOOLS`: `bin/helm` (Helm 3) and
//! `bin/kubernetes-validate`. A missing tool is an error that names the script installing it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The environment variable naming the directory `scripts/k8s-tools.sh` prints.
pub const TOOLS_ENV: &str = "TANDEM_TOOLS";

const INSTALL: &str =
    "run `export TANDEM_TOOLS=\"$(scripts/k8s-tools.sh)\"` (scripts/test.sh does it)";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{TOOLS_ENV} is not set; {INSTALL}")]
    Unset,
    #[error("{path} is missing or not executable; {INSTALL}")]
    Missing { path: PathBuf },
    #[error("cannot start {program}: {source}")]
    Start {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}):\n{stderr}{stdout}")]
    Failed {
        command: String,
        status: std::process::ExitStatus,
        stdout: String,
        stderr: String,
    },
}

/// Paths of the tools under `$TANDEM_TOOLS`.
#[derive(Clone, Debug)]
pub struct Tools {
    pub helm: PathBuf,
    pub kubernetes_validate: PathBuf,
}

impl Tools {
    /// The tools under `$TANDEM_TOOLS`, each checked to be there.
    pub fn from_env() -> Result<Tools, Error> {
        match std::env::var_os(TOOLS_ENV) {
            Some(dir) if !dir.is_empty() => Tools::in_dir(Path::new(&dir)),
            _ => Err(Error::Unset),
        }
    }

    /// The tools under `dir`, each checked to be there.
    pub fn in_dir(dir: &Path) -> Result<Tools, Error> {
        let tools = Tools {
            helm: dir.join("bin").join("helm"),
            kubernetes_validate: dir.join("bin").join("kubernetes-validate"),
        };
        require(&tools.helm)?;
        require(&tools.kubernetes_validate)?;
        Ok(tools)
    }
}

fn require(path: &Path) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() && meta.permissions().mode() & 0o111 != 0 => Ok(()),
        _ => Err(Error::Missing {
            path: path.to_path_buf(),
        }),
    }
}

/// Runs `command`; its stdout and stderr when it exits 0, else [`Error::Failed`] with both.
pub fn run(command: &mut Command) -> Result<Output, Error> {
    let program = command.get_program().to_string_lossy().into_owned();
    let described = std::iter::once(program.clone())
        .chain(command.get_args().map(|a| a.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ");
    let output = command
        .output()
        .map_err(|source| Error::Start { program, source })?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if output.status.success() {
        Ok(Output { stdout, stderr })
    } else {
        Err(Error::Failed {
            command: described,
            status: output.status,
            stdout,
            stderr,
        })
    }
}

/// What a tool printed.
#[derive(Clone, Debug)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a test fails on what it unwraps")]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tool_names_the_install_script() {
        let dir = tempfile::tempdir().unwrap();
        let error = Tools::in_dir(dir.path()).unwrap_err().to_string();
        assert!(error.contains("bin/helm"), "{error}");
        assert!(error.contains("scripts/k8s-tools.sh"), "{error}");
    }

    #[test]
    fn a_failing_command_reports_its_output() {
        let error = run(Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("exit status: 3"), "{error}");
        assert!(error.contains("err") && error.contains("out"), "{error}");
    }
}
