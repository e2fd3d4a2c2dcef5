//! `tandem-operator`: parse the flags (exit 64 on a bad one, before anything is bound), then run
//! until SIGTERM.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = match tandem_operator::Args::try_parse() {
        Ok(args) => args,
        Err(error) => {
            let _ = error.print();
            return ExitCode::from(if error.use_stderr() { 64 } else { 0 });
        }
    };
    if let Err(error) = args.timings() {
        eprintln!("tandem-operator: {error}");
        return ExitCode::from(64);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("tandem-operator: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(tandem_operator::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tandem-operator: {error}");
            ExitCode::FAILURE
        }
    }
}
