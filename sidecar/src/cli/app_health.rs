//! The app health check flags, daprd's names and defaults: probe `--app-health-check-path`
//! every `--app-health-probe-interval` seconds, allow `--app-health-probe-timeout`
//! milliseconds, and count the app unhealthy after `--app-health-threshold` failures in a row.

use crate::channels::app::health::AppHealthCheck;
use clap::Args;
use std::time::Duration;
use tandem_crds::annotations::defaults;

#[derive(Debug, Clone, Args)]
pub struct AppHealthArgs {
    /// Probe the app's health; pub/sub and input bindings pause while it is unhealthy.
    #[arg(long = "enable-app-health-check", env = "DAPR_ENABLE_APP_HEALTH_CHECK", default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub enable_app_health_check: bool,
    /// The path probed with GET; a 2xx answer means healthy.
    #[arg(long = "app-health-check-path", env = "DAPR_APP_HEALTH_CHECK_PATH", default_value = defaults::APP_HEALTH_CHECK_PATH)]
    pub app_health_check_path: String,
    /// Seconds between probes.
    #[arg(long = "app-health-probe-interval", env = "DAPR_APP_HEALTH_PROBE_INTERVAL", default_value_t = defaults::APP_HEALTH_PROBE_INTERVAL_SECONDS)]
    pub app_health_probe_interval: u64,
    /// Milliseconds a probe may take.
    #[arg(long = "app-health-probe-timeout", env = "DAPR_APP_HEALTH_PROBE_TIMEOUT", default_value_t = defaults::APP_HEALTH_PROBE_TIMEOUT_MS)]
    pub app_health_probe_timeout: u64,
    /// Failed probes in a row that make the app unhealthy.
    #[arg(long = "app-health-threshold", env = "DAPR_APP_HEALTH_THRESHOLD", default_value_t = defaults::APP_HEALTH_THRESHOLD)]
    pub app_health_threshold: u32,
}

impl AppHealthArgs {
    /// Refuses values daprd refuses; the message names the flag and the value.
    pub fn validate(&self) -> Result<(), String> {
        let AppHealthArgs {
            enable_app_health_check: _,
            app_health_check_path: path,
            app_health_probe_interval: interval,
            app_health_probe_timeout: timeout,
            app_health_threshold: threshold,
        } = self;
        if !path.starts_with('/') {
            return Err(format!(
                "invalid value '{path}' for '--app-health-check-path': must start with /"
            ));
        }
        if *interval == 0 {
            return Err(
                "invalid value '0' for '--app-health-probe-interval': must be at least 1 second"
                    .into(),
            );
        }
        if *timeout == 0 || *timeout > interval.saturating_mul(1000) {
            return Err(format!(
                "invalid value '{timeout}' for '--app-health-probe-timeout': must be 1 ms up to the probe interval ({interval} s)"
            ));
        }
        if *threshold == 0 {
            return Err(
                "invalid value '0' for '--app-health-threshold': must be at least 1".into(),
            );
        }
        Ok(())
    }

    /// The health check to run, when enabled.
    pub fn check(&self) -> Option<AppHealthCheck> {
        self.enable_app_health_check.then(|| AppHealthCheck {
            path: self.app_health_check_path.clone(),
            interval: Duration::from_secs(self.app_health_probe_interval),
            timeout: Duration::from_millis(self.app_health_probe_timeout),
            threshold: self.app_health_threshold,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, SidecarArgs};
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<SidecarArgs, String> {
        let cli =
            Cli::try_parse_from(std::iter::once("tandem-sidecar").chain(args.iter().copied()))
                .map_err(|e| e.to_string())?;
        cli.sidecar.validate()?;
        Ok(cli.sidecar)
    }

    #[test]
    fn off_by_default_with_daprs_defaults_when_on() {
        let off = parse(&["--app-id", "a"]).expect("valid");
        assert_eq!(off.app_health.check(), None);
        let on = parse(&["--enable-app-health-check", "--app-id", "a"]).expect("valid");
        assert_eq!(
            on.app_health.check(),
            Some(AppHealthCheck {
                path: "/healthz".into(),
                interval: Duration::from_secs(5),
                timeout: Duration::from_millis(500),
                threshold: 3,
            })
        );
    }

    #[test]
    fn bad_values_name_the_flag() {
        for (args, flag) in [
            (
                &["--app-health-probe-timeout", "6000"][..],
                "--app-health-probe-timeout",
            ),
            (
                &["--app-health-probe-timeout", "0"][..],
                "--app-health-probe-timeout",
            ),
            (
                &["--app-health-probe-interval", "0"][..],
                "--app-health-probe-interval",
            ),
            (
                &["--app-health-threshold", "0"][..],
                "--app-health-threshold",
            ),
            (
                &["--app-health-check-path", "x"][..],
                "--app-health-check-path",
            ),
            (
                &["--app-health-threshold", "many"][..],
                "--app-health-threshold",
            ),
        ] {
            let err = parse(args).expect_err("must be refused");
            assert!(err.contains(flag), "{args:?}: {err}");
        }
    }
}
