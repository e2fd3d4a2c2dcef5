//! The mTLS flags. `--enable-mtls` is daprd's name; like daprd's standalone mode it is off
//! unless asked for (in Kubernetes the injector passes `--enable-mtls true` unless the chart's
//! `global.mtls.enabled` is false).

use clap::Args;
use std::time::Duration;

/// Dapr's default workload certificate TTL.
const DEFAULT_TTL: &str = "24h";
/// Shorter certificates would renew faster than a handshake storm can settle.
const MIN_TTL: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Args)]
pub struct MtlsArgs {
    /// Speak only mTLS on the internal port and to other sidecars, with a SPIFFE identity from
    /// the local CA in `--data-dir` (standalone) or the control plane's CA (Kubernetes mode).
    #[arg(long = "enable-mtls", env = "DAPR_ENABLE_MTLS", default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub enable_mtls: bool,
    /// How long a workload certificate lives (Go durations: `30s`, `1h30m`, `24h`); renewed at
    /// half-life. Standalone only: in Kubernetes the control plane's CA decides (the
    /// Configuration's `spec.mtls.workloadCertTTL`).
    #[arg(long = "mtls-cert-ttl", env = "TANDEM_MTLS_CERT_TTL", default_value = DEFAULT_TTL, value_parser = parse_ttl)]
    pub mtls_cert_ttl: Duration,
}

/// Parses a Go-style duration of at least two seconds.
pub fn parse_ttl(v: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(v.trim())
        .map_err(|e| format!("{v:?} is not a duration like 30s or 24h: {e}"))?;
    if d < MIN_TTL {
        return Err(format!("{v:?} is shorter than {}s", MIN_TTL.as_secs()));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_ttl("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_ttl("24h"), Ok(Duration::from_secs(86400)));
        assert_eq!(parse_ttl("1h30m"), Ok(Duration::from_secs(5400)));
        assert!(parse_ttl("1s").is_err());
        assert!(parse_ttl("soon").is_err());
    }
}
