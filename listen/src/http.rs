//! The HTTP/1.1 accept loop the agent and the bridge serve their routers with.
//!
//! `axum::serve` has no header-read timeout (it gives hyper no timer), so a client that sends
//! half a request head and stalls keeps its connection and task forever. Here hyper gets a timer
//! and [`HttpOptions::header_read_timeout`]; a TLS handshake has its own bound.

use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::Acceptor;

/// Bounds on what a client may take before it has sent a request.
#[derive(Debug, Clone, Copy)]
pub struct HttpOptions {
    /// From the connection (or the end of the previous response) to a whole request head;
    /// past it hyper closes the connection (HTTP 408 if nothing was read yet).
    pub header_read_timeout: Duration,
    /// From accept to a finished TLS handshake.
    pub handshake_timeout: Duration,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// Serves `router` on `listener` until `shutdown`; then stops accepting and lets open
/// connections finish their request in flight (idle ones are closed at once). The caller
/// bounds how long it waits for that.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    acceptor: Acceptor,
    options: HttpOptions,
    shutdown: CancellationToken,
) {
    let graceful = GracefulShutdown::new();
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, most likely: let connections close first.
                    tracing::warn!(%error, "HTTP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(router.clone());
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let stream = match acceptor.accept(tcp, options.handshake_timeout).await {
                Ok(stream) => stream,
                Err(error) => {
                    tracing::debug!(%peer, %error, "TLS handshake failed");
                    return;
                }
            };
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(options.header_read_timeout);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            if let Err(error) = watcher.watch(connection).await {
                tracing::debug!(%peer, %error, "HTTP connection ended");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
