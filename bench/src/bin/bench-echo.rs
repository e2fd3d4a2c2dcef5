//! `bench-echo`: the echo app behind the sidecars and the "hello server" baseline.

use clap::Parser;

/// A minimal hyper HTTP/1.1 server that answers every request with 200 and the request body.
#[derive(Parser)]
#[command(name = "bench-echo")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port)).await?;
    println!("listening on {}", listener.local_addr()?);
    tandem_bench::echo::serve(listener).await
}
