//! `tandem-sidecar`: parse the flags (exit 64 on a bad one, before any port is bound), then run.

/// mimalloc instead of glibc's malloc: a sidecar hop allocates and frees dozens of small buffers
/// per request, and glibc's malloc/free (consolidation included) were ~28 % of its instructions
/// under callgrind (BENCHMARKS.md, issue 17). Built without transparent huge pages (`no_thp`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    tandem_sidecar::http_client::install_crypto_provider();
    let cli = match tandem_sidecar::cli::parse() {
        Ok(cli) => cli,
        Err(exit) => return exit,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("tandem-sidecar: cannot start the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    runtime.block_on(tandem_sidecar::run(cli))
}
