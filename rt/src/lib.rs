//! What `tandem-operator` and `tandem-injector` share, and nothing else: the admin port
//! ([`admin`]: `/healthz`, `/readyz`, `/metrics`), a shutdown token cancelled by SIGTERM or SIGINT
//! ([`cancel_on_signal`]), and log setup ([`init_tracing`]).

pub mod admin;

use tokio_util::sync::CancellationToken;

/// Cancels `shutdown` on SIGTERM or SIGINT (at once if the handlers cannot be installed).
pub async fn cancel_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stopping");
        shutdown.cancel();
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
    shutdown.cancel();
}

/// Logs to stderr, as text or JSON lines; the level comes from `RUST_LOG` (default info).
pub fn init_tracing(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
