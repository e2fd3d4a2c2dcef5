//! `tandem-sidecar run -- <app…>`: the app as a child process with `DAPR_HTTP_PORT`,
//! `DAPR_GRPC_PORT` and `APP_ID` set, signals forwarded, and the sidecar exiting with the app.

use crate::cli::SidecarArgs;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::process::ExitCode;
use std::time::Duration;
use tandem_crds::annotations::env;
use tokio::process::{Child, Command};
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

pub fn spawn_app(command: &[String], args: &SidecarArgs) -> std::io::Result<Child> {
    let (program, rest) = command.split_first().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty app command")
    })?;
    let mut cmd = Command::new(program);
    cmd.args(rest)
        .env(env::DAPR_HTTP_PORT, args.dapr_http_port.to_string())
        .env(env::DAPR_GRPC_PORT, args.dapr_grpc_port.to_string())
        .env(env::APP_ID, &args.app_id);
    if let Some(port) = args.app_port {
        cmd.env("APP_PORT", port.to_string());
    }
    cmd.spawn()
}

fn forward(child: &Child, sig: Signal) {
    if let Some(pid) = child.id().and_then(|id| i32::try_from(id).ok()) {
        let _ = kill(Pid::from_raw(pid), sig);
    }
}

fn exit_code_of(status: std::process::ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        (None, Some(sig)) => ExitCode::from(u8::try_from(128 + sig).unwrap_or(1)),
        _ => ExitCode::FAILURE,
    }
}

/// The sidecar's exit code once the app ended after `forwarded` was passed on to it: an app that
/// died of that signal (or exited 128 + it, as shells do) stopped as asked, which is success, as
/// with `dapr run`; any other code is the app's own.
fn exit_code_after(status: std::process::ExitStatus, forwarded: Signal) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    let sig = forwarded as i32;
    if status.signal() == Some(sig) || status.code() == Some(128 + sig) {
        ExitCode::SUCCESS
    } else {
        exit_code_of(status)
    }
}

/// Waits for a reason to stop: SIGTERM/SIGINT (forwarded to the app, which then gets the grace
/// period to exit), the shutdown token, or the app exiting. Returns the app's exit code when
/// there is an app.
pub async fn wait_for_shutdown(
    mut child: Option<Child>,
    shutdown: &CancellationToken,
    grace: Duration,
) -> Option<ExitCode> {
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(t), Ok(i)) => (t, i),
        _ => {
            tracing::error!("cannot install signal handlers");
            shutdown.cancelled().await;
            return None;
        }
    };
    let received = tokio::select! {
        _ = term.recv() => Some(Signal::SIGTERM),
        _ = int.recv() => Some(Signal::SIGINT),
        _ = shutdown.cancelled() => None,
        status = async { match child.as_mut() { Some(c) => c.wait().await, None => std::future::pending().await } } => {
            let code = status.map(exit_code_of).unwrap_or(ExitCode::FAILURE);
            tracing::info!("the app exited; stopping the sidecar");
            shutdown.cancel();
            return Some(code);
        }
    };
    shutdown.cancel();
    let mut child = child?;
    forward(&child, received.unwrap_or(Signal::SIGTERM));
    let forwarded = received.unwrap_or(Signal::SIGTERM);
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => Some(
            status
                .map(|s| exit_code_after(s, forwarded))
                .unwrap_or(ExitCode::FAILURE),
        ),
        Err(_) => {
            tracing::warn!("the app did not exit within the grace period; killing it");
            let _ = child.kill().await;
            Some(ExitCode::FAILURE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn dying_of_the_forwarded_signal_is_success() {
        // Raw wait statuses: a signal number alone, or an exit code shifted by 8.
        let killed_by_term = std::process::ExitStatus::from_raw(15);
        let shell_143 = std::process::ExitStatus::from_raw(143 << 8);
        let own_code = std::process::ExitStatus::from_raw(3 << 8);
        let killed_by_kill = std::process::ExitStatus::from_raw(9);
        assert_eq!(
            exit_code_after(killed_by_term, Signal::SIGTERM),
            ExitCode::SUCCESS
        );
        assert_eq!(
            exit_code_after(shell_143, Signal::SIGTERM),
            ExitCode::SUCCESS
        );
        assert_eq!(
            exit_code_after(own_code, Signal::SIGTERM),
            ExitCode::from(3)
        );
        assert_eq!(
            exit_code_after(killed_by_kill, Signal::SIGTERM),
            ExitCode::from(137)
        );
    }
}
