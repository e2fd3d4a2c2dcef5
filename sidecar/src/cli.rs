//! Command-line flags (daprd's names, each with an env fallback) and their validation. Everything
//! is checked here, before any port is bound; a bad value ends the process with one line naming
//! the flag and the value, and exit code 64 (EX_USAGE).

pub mod app_health;
pub mod control_plane;
pub mod mtls;

use app_health::AppHealthArgs;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
use tandem_crds::annotations::{defaults, ports};

/// Exit code for bad flags or configuration.
pub const EX_USAGE: u8 = 64;

#[derive(Debug, Parser)]
#[command(
    name = "tandem-sidecar",
    version,
    about = "Tandem: Dapr's HTTP API for the app next to it"
)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub sidecar: SidecarArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the app as a child process next to the sidecar, like `dapr run`.
    Run(RunArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub sidecar: SidecarArgs,
    /// The app's command line, after `--`.
    #[arg(last = true, required = true, value_name = "APP COMMAND")]
    pub app: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    Standalone,
    Kubernetes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AppProtocol {
    Http,
    Https,
    Grpc,
    Grpcs,
    H2c,
}

impl AppProtocol {
    /// The flag's value, as Dapr spells it (and `/v1.0/metadata` reports it).
    pub const fn as_str(self) -> &'static str {
        match self {
            AppProtocol::Http => "http",
            AppProtocol::Https => "https",
            AppProtocol::Grpc => "grpc",
            AppProtocol::Grpcs => "grpcs",
            AppProtocol::H2c => "h2c",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
}

/// The sidecar's settings.
#[derive(Debug, Clone, Args)]
pub struct SidecarArgs {
    /// The app's id; peers invoke it by this name.
    #[arg(long = "app-id", env = "APP_ID", default_value = "")]
    pub app_id: String,
    /// The port the app listens on; no app channel when unset.
    #[arg(long = "app-port", env = "APP_PORT")]
    pub app_port: Option<u16>,
    /// How the sidecar talks to the app.
    #[arg(
        long = "app-protocol",
        env = "APP_PROTOCOL",
        value_enum,
        default_value = "http"
    )]
    pub app_protocol: AppProtocol,
    /// The host the app listens on.
    #[arg(long = "app-channel-address", env = "DAPR_APP_CHANNEL_ADDRESS", default_value = defaults::APP_CHANNEL_ADDRESS)]
    pub app_channel_address: String,
    /// The app-facing HTTP API port.
    #[arg(long = "dapr-http-port", env = "DAPR_HTTP_PORT", default_value_t = ports::HTTP)]
    pub dapr_http_port: u16,
    /// The health-and-metadata-only port.
    #[arg(long = "dapr-public-port", env = "DAPR_PUBLIC_PORT", default_value_t = ports::PUBLIC)]
    pub dapr_public_port: u16,
    /// The app-facing gRPC API port.
    #[arg(long = "dapr-grpc-port", env = "DAPR_GRPC_PORT", default_value_t = ports::GRPC)]
    pub dapr_grpc_port: u16,
    /// The sidecar-to-sidecar port.
    #[arg(long = "dapr-internal-grpc-port", env = "DAPR_INTERNAL_GRPC_PORT", default_value_t = ports::INTERNAL)]
    pub dapr_internal_grpc_port: u16,
    /// Addresses the API ports listen on, comma separated (all interfaces when empty).
    #[arg(
        long = "dapr-listen-addresses",
        env = "DAPR_LISTEN_ADDRESSES",
        default_value = ""
    )]
    pub dapr_listen_addresses: String,
    /// The Prometheus port.
    #[arg(long = "metrics-port", env = "DAPR_METRICS_PORT", default_value_t = ports::METRICS)]
    pub metrics_port: u16,
    /// Serve Prometheus metrics.
    #[arg(long = "enable-metrics", env = "DAPR_ENABLE_METRICS", default_value_t = true, action = clap::ArgAction::Set)]
    pub enable_metrics: bool,
    /// Folders of component manifests (repeatable); embedded defaults when none is given.
    #[arg(
        long = "resources-path",
        alias = "components-path",
        env = "DAPR_RESOURCES_PATH",
        value_delimiter = ','
    )]
    pub resources_path: Vec<PathBuf>,
    /// A Configuration manifest file.
    #[arg(long = "config", env = "DAPR_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log level.
    #[arg(
        long = "log-level",
        env = "DAPR_LOG_LEVEL",
        value_enum,
        default_value = "info"
    )]
    pub log_level: LogLevel,
    /// Log JSON lines instead of plain text.
    #[arg(long = "log-as-json", env = "DAPR_LOG_AS_JSON", default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub log_as_json: bool,
    /// Largest request body accepted (`4Mi`, `10MB`, `1048576`).
    #[arg(long = "max-body-size", env = "DAPR_MAX_BODY_SIZE", default_value = "4Mi", value_parser = parse_size)]
    pub max_body_size: u64,
    /// How long in-flight work may take after SIGTERM.
    #[arg(long = "dapr-graceful-shutdown-seconds", env = "DAPR_GRACEFUL_SHUTDOWN_SECONDS", default_value_t = defaults::GRACEFUL_SHUTDOWN_SECONDS)]
    pub dapr_graceful_shutdown_seconds: u64,
    /// Where Tandem keeps the embedded state database and the standalone app registry.
    #[arg(long = "data-dir", env = "TANDEM_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// standalone (files + local registry) or kubernetes (the operator + cluster DNS).
    #[arg(
        long = "mode",
        env = "DAPR_MODE",
        value_enum,
        default_value = "standalone"
    )]
    pub mode: Mode,
    /// Kubernetes mode: the operator's sidecar API, `host:port`.
    #[arg(long = "control-plane-address", env = "DAPR_CONTROL_PLANE_ADDRESS")]
    pub control_plane_address: Option<String>,
    /// Kubernetes mode: the ServiceAccount token presented to the operator (read on each connection).
    #[arg(long = "control-plane-token-file", env = "TANDEM_CONTROL_PLANE_TOKEN_FILE", default_value = defaults::OPERATOR_TOKEN_FILE)]
    pub control_plane_token_file: PathBuf,
    /// Kubernetes mode: the cluster's DNS domain (default: from resolv.conf's search path, else cluster.local).
    #[arg(long = "kubernetes-cluster-domain", env = "KUBE_CLUSTER_DOMAIN")]
    pub kubernetes_cluster_domain: Option<String>,
    /// Kubernetes mode: the resolver configuration peers are looked up with.
    #[arg(
        long = "resolv-conf",
        env = "TANDEM_RESOLV_CONF",
        default_value = "/etc/resolv.conf"
    )]
    pub resolv_conf: PathBuf,
    /// Kubernetes mode: ask this DNS server (`ip:port`) instead of resolv.conf's.
    #[arg(long = "dns-server", env = "TANDEM_DNS_SERVER")]
    pub dns_server: Option<std::net::SocketAddr>,
    #[command(flatten)]
    pub app_health: AppHealthArgs,
    #[command(flatten)]
    pub mtls: mtls::MtlsArgs,
    #[command(flatten)]
    pub control_plane_trust: control_plane::ControlPlaneTrustArgs,
}

/// Parses sizes as daprd does: a number of bytes, or with a `Ki/Mi/Gi` or `K/M/G(B)` suffix.
pub fn parse_size(v: &str) -> Result<u64, String> {
    let v = v.trim();
    let split = v
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let num: f64 = num
        .parse()
        .map_err(|_| format!("{v:?} is not a size like 4Mi or 4194304"))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "K" | "KB" | "k" | "kB" => 1_000,
        "Ki" | "KiB" => 1 << 10,
        "M" | "MB" => 1_000_000,
        "Mi" | "MiB" => 1 << 20,
        "G" | "GB" => 1_000_000_000,
        "Gi" | "GiB" => 1 << 30,
        other => return Err(format!("unknown size unit {other:?} in {v:?}")),
    };
    let bytes = num * mult as f64;
    if !(1.0..=(1u64 << 40) as f64).contains(&bytes) {
        return Err(format!("{v:?} is out of range"));
    }
    Ok(bytes as u64)
}

impl SidecarArgs {
    /// Checks combinations clap cannot express. The error names the flag and the value.
    pub fn validate(&self) -> Result<(), String> {
        if self.mode == Mode::Kubernetes {
            if self
                .control_plane_address
                .as_deref()
                .is_none_or(str::is_empty)
            {
                return Err("--mode kubernetes needs --control-plane-address (the operator's sidecar API, host:port)".into());
            }
            if self.app_id.is_empty() {
                return Err("--mode kubernetes needs --app-id".into());
            }
        }
        if let Some(reason) = crate::blocks::invoke::target::invalid_app_id(&self.app_id) {
            return Err(format!(
                "invalid value '{}' for '--app-id': {reason}",
                self.app_id
            ));
        }
        self.app_health.validate()?;
        if self.app_port == Some(0) {
            return Err("invalid value '0' for '--app-port': must be 1-65535".into());
        }
        for addr in self.listen_addresses() {
            if addr.parse::<std::net::IpAddr>().is_err() {
                return Err(format!(
                    "invalid value '{addr}' for '--dapr-listen-addresses': not an IP address"
                ));
            }
        }
        let ports = [
            ("--dapr-http-port", self.dapr_http_port),
            ("--dapr-public-port", self.dapr_public_port),
            ("--dapr-grpc-port", self.dapr_grpc_port),
            ("--dapr-internal-grpc-port", self.dapr_internal_grpc_port),
        ];
        for (i, (name, port)) in ports.iter().enumerate() {
            if *port == 0 {
                return Err(format!("invalid value '0' for '{name}': must be 1-65535"));
            }
            if let Some((other, _)) = ports[..i].iter().find(|(_, p)| p == port) {
                return Err(format!(
                    "invalid value '{port}' for '{name}': already used by {other}"
                ));
            }
        }
        Ok(())
    }

    /// The listen addresses, `[::1]` style brackets removed; all interfaces when none.
    pub fn listen_addresses(&self) -> Vec<String> {
        let addrs: Vec<String> = self
            .dapr_listen_addresses
            .split(',')
            .map(|a| {
                a.trim()
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned()
            })
            .filter(|a| !a.is_empty())
            .collect();
        if addrs.is_empty() {
            vec!["0.0.0.0".to_owned()]
        } else {
            addrs
        }
    }

    /// The data directory: the flag, else `$HOME/.tandem`.
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(std::env::temp_dir)
                .join(".tandem")
        })
    }
}

/// Parses and validates the command line. On a bad flag, prints one line and returns exit 64.
pub fn parse() -> Result<Cli, ExitCode> {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            use clap::error::ErrorKind;
            if matches!(
                err.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
            ) {
                let _ = err.print();
                return Err(ExitCode::SUCCESS);
            }
            let text = err.to_string();
            let line = text.lines().next().unwrap_or("invalid arguments");
            eprintln!("tandem-sidecar: {}", line.trim_start_matches("error: "));
            return Err(ExitCode::from(EX_USAGE));
        }
    };
    let args = match &cli.command {
        Some(Command::Run(run)) => &run.sidecar,
        None => &cli.sidecar,
    };
    if let Err(msg) = args.validate() {
        eprintln!("tandem-sidecar: {msg}");
        return Err(ExitCode::from(EX_USAGE));
    }
    Ok(cli)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_args(args: &[&str]) -> Result<SidecarArgs, String> {
        let cli =
            Cli::try_parse_from(std::iter::once("tandem-sidecar").chain(args.iter().copied()))
                .map_err(|e| e.to_string())?;
        cli.sidecar.validate()?;
        Ok(cli.sidecar)
    }

    #[test]
    fn defaults_match_daprd() {
        let a = parse_args(&["--app-id", "a"]).expect("valid");
        assert_eq!(
            (
                a.dapr_http_port,
                a.dapr_public_port,
                a.dapr_grpc_port,
                a.dapr_internal_grpc_port,
                a.metrics_port
            ),
            (3500, 3501, 50001, 50002, 9090)
        );
        assert_eq!(a.max_body_size, 4 << 20);
        assert_eq!(a.dapr_graceful_shutdown_seconds, 5);
        assert_eq!(a.listen_addresses(), vec!["0.0.0.0"]);
    }

    #[test]
    fn bad_values_name_the_flag() {
        for (args, needle) in [
            (&["--app-port", "abc"][..], "--app-port"),
            (&["--app-id", "a.b"][..], "--app-id"),
            (&["--app-protocol", "quic"][..], "--app-protocol"),
            (&["--max-body-size", "4Qi"][..], "--max-body-size"),
            (&["--dapr-http-port", "50002"][..], "--dapr-http-port"),
            (&["--dapr-grpc-port", "3500"][..], "--dapr-grpc-port"),
            (&["--dapr-grpc-port", "0"][..], "--dapr-grpc-port"),
            (
                &["--dapr-listen-addresses", "nope"][..],
                "--dapr-listen-addresses",
            ),
            (&["--mode", "kubernetes"][..], "--control-plane-address"),
            (
                &[
                    "--mode",
                    "kubernetes",
                    "--control-plane-address",
                    "op:6500",
                    "--app-id",
                    "",
                ][..],
                "--app-id",
            ),
        ] {
            let err = parse_args(args).expect_err("must be refused");
            assert!(err.contains(needle), "{args:?}: {err}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4Mi"), Ok(4 << 20));
        assert_eq!(parse_size("10MB"), Ok(10_000_000));
        assert_eq!(parse_size("1024"), Ok(1024));
        assert!(parse_size("0").is_err());
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn run_takes_the_app_command() {
        let cli = Cli::try_parse_from([
            "tandem-sidecar",
            "run",
            "--app-id",
            "x",
            "--app-port",
            "8080",
            "--",
            "python3",
            "app.py",
        ])
        .expect("valid");
        match cli.command {
            Some(Command::Run(run)) => {
                assert_eq!(run.app, vec!["python3", "app.py"]);
                assert_eq!(run.sidecar.app_port, Some(8080));
            }
            None => panic!("expected the run subcommand"),
        }
    }
}
