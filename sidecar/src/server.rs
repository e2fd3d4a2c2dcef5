//! Serving a router on a listener with hyper-util directly (instead of `axum::serve`) for the
//! settings a sidecar needs: a header read timeout like daprd's 10 s (slow clients cannot hold
//! connections open), TCP_NODELAY, HTTP/1.1 and h2c on one port, and a graceful stop that lets
//! in-flight requests finish while refusing new connections.

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// The largest header list accepted or sent over h2 (hyper's default is 16 KiB).
pub const H2_MAX_HEADER_LIST: u32 = 128 << 10;

/// How long a client may take to send a request's headers (daprd's ReadHeaderTimeout).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

fn builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(1024)
        // Above the API's own 64 KiB header check, so peers never refuse what the caller accepted.
        .max_header_list_size(H2_MAX_HEADER_LIST);
    builder
}

/// Serves until `stop` fires, then waits for open connections to finish their requests.
pub async fn serve(listener: TcpListener, router: Router, stop: CancellationToken) {
    serve_with(listener, router, stop, None).await;
}

/// As [`serve`]; with `mtls`, every connection is a TLS handshake first (a client that fails it
/// is counted and dropped) and its requests carry the client's verified identity.
pub async fn serve_with(
    listener: TcpListener,
    router: Router,
    stop: CancellationToken,
    mtls: Option<crate::security::tls::Acceptor>,
) {
    let builder = builder();
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        if let Some(mtls) = &mtls {
            // The handshake runs in the connection's task, so a slow client holds no one up.
            let (mtls, router, builder) = (mtls.clone(), router.clone(), builder.clone());
            let watcher = graceful.watcher();
            tokio::spawn(async move {
                let Some((tls, identity)) = mtls.accept(stream).await else {
                    return;
                };
                let service = router.map_request(move |req: http::Request<Incoming>| {
                    let mut req = req.map(axum::body::Body::new);
                    req.extensions_mut().insert(identity.clone());
                    req
                });
                let connection = builder.serve_connection_with_upgrades(
                    TokioIo::new(tls),
                    TowerToHyperService::new(service),
                );
                if let Err(e) = watcher.watch(connection.into_owned()).await {
                    tracing::debug!(%peer, error = %e, "connection closed with an error");
                }
            });
            continue;
        }
        let service = router
            .clone()
            .map_request(|req: http::Request<Incoming>| req.map(axum::body::Body::new));
        let connection = builder.serve_connection_with_upgrades(
            TokioIo::new(stream),
            TowerToHyperService::new(service),
        );
        let connection = graceful.watch(connection.into_owned());
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "connection closed with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
