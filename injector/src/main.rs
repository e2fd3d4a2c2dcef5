//! `tandem-injector`: parse and validate the flags (exit 64 on a bad one, before any port is
//! bound), then serve until SIGTERM.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = match tandem_injector::Args::try_parse() {
        Ok(args) => args,
        Err(error) => {
            let _ = error.print();
            return ExitCode::from(if error.use_stderr() { 64 } else { 0 });
        }
    };
    let resolv_conf = std::fs::read_to_string("/etc/resolv.conf").ok();
    let config = match tandem_injector::InjectorConfig::from_args(args, resolv_conf.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("tandem-injector: {error}");
            return ExitCode::from(64);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("tandem-injector: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(tandem_injector::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tandem-injector: {error}");
            ExitCode::FAILURE
        }
    }
}
