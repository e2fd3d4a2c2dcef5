//! Serving a router on a listener with hyper-util directly (instead of `axum::serve`) for the
//! settings a sidecar needs: daprd's 10 s header read timeout, started as Go starts it
//! ([`header_timeout`]: slow clients cannot hold connections open, idle kept-alive ones stay),
//! TCP_NODELAY, HTTP/1.1 and h2c on one port, and a graceful stop that lets in-flight requests
//! finish while refusing new connections.

mod header_timeout;

use header_timeout::{BytesRead, HeaderTimer, ReadCounted, sniff_over};

use crate::security::PeerIdentity;

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
    builder.http1().keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(1024)
        // Above the API's own 64 KiB header check, so peers never refuse what the caller accepted.
        .max_header_list_size(H2_MAX_HEADER_LIST);
    builder
}

/// The builder for one connection whose reads `read` counts: its own HTTP/1 header timer.
fn connection_builder(
    shared: &auto::Builder<TokioExecutor>,
    read: &BytesRead,
    header_timeout: Duration,
) -> auto::Builder<TokioExecutor> {
    let mut builder = shared.clone();
    builder
        .http1()
        .timer(HeaderTimer::new(read.clone()))
        .header_read_timeout(header_timeout);
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
    serve_timed(listener, router, stop, mtls, HEADER_READ_TIMEOUT).await;
}

/// As [`serve_with`], with the header read timeout given.
async fn serve_timed(
    listener: TcpListener,
    router: Router,
    stop: CancellationToken,
    mtls: Option<crate::security::tls::Acceptor>,
    header_timeout: Duration,
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
        let connection = Connection {
            router: router.clone(),
            shared: builder.clone(),
            watcher: graceful.watcher(),
            header_timeout,
            peer,
        };
        let mtls = mtls.clone();
        tokio::spawn(async move {
            match mtls {
                None => connection.serve(stream, None).await,
                // The handshake runs in the connection's task, so a slow client holds no one up.
                Some(mtls) => {
                    if let Some((tls, identity)) = mtls.accept(stream).await {
                        connection.serve(tls, Some(identity)).await;
                    }
                }
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// One accepted connection and what serving it needs.
struct Connection {
    router: Router,
    shared: auto::Builder<TokioExecutor>,
    watcher: hyper_util::server::graceful::Watcher,
    header_timeout: Duration,
    peer: std::net::SocketAddr,
}

impl Connection {
    /// Serves `io` to its end; with mTLS, each request carries the client's verified `identity`.
    /// hyper-util reads the first bytes to tell HTTP/1 from h2 before either has a timer, so a
    /// client that sends (almost) nothing is cut off here once the header timeout passes with
    /// that sniff still running.
    async fn serve<IO>(self, io: IO, identity: Option<PeerIdentity>)
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let read = BytesRead::default();
        let builder = connection_builder(&self.shared, &read, self.header_timeout);
        let service = self
            .router
            .map_request(move |req: http::Request<Incoming>| {
                let mut req = req.map(axum::body::Body::new);
                if let Some(identity) = &identity {
                    req.extensions_mut().insert(identity.clone());
                }
                req
            });
        let connection = builder.serve_connection_with_upgrades(
            TokioIo::new(ReadCounted::new(io, read.clone())),
            TowerToHyperService::new(service),
        );
        let connection = self.watcher.watch(connection.into_owned());
        tokio::pin!(connection);
        let peer = self.peer;
        let ended = tokio::select! {
            ended = &mut connection => ended,
            () = tokio::time::sleep(self.header_timeout) => {
                if !sniff_over(&read) {
                    tracing::debug!(%peer, "no request within the header read timeout: closed");
                    return;
                }
                connection.await
            }
        };
        if let Err(e) = ended {
            tracing::debug!(%peer, error = %e, "connection closed with an error");
        }
    }
}

#[cfg(test)]
mod tests;
