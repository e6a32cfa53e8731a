//! The HTTP/1.1 accept loop every Emberline service serves its router with (agent, bridge, hub
//! roles, dashboard).
//!
//! `axum::serve` has no header-read timeout (it gives hyper no timer), so a client that sends
//! half a request head and stalls keeps its connection and task forever. Here hyper gets a timer
//! and [`HttpOptions::header_read_timeout`]; a TLS handshake has its own bound, and a request's
//! body must arrive within [`HttpOptions::body_timeout`] of its head ([`body`]: 408, then the
//! connection is closed). Responses are never bounded in length: a long-lived one (the
//! dashboard's Server-Sent Events) streams for as long as the handler keeps it open and the
//! client reads it; a client that stops reading is cut off once no write has gone through for
//! [`HttpOptions::write_timeout`] ([`stall`]).

mod body;
mod stall;

use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::Acceptor;
pub use body::{BODY_TIMEOUT_CODE, is_body_timeout};

/// Bounds on how long a client may take to send a request: slow clients cannot hold
/// connections (and their tasks) open.
#[derive(Debug, Clone, Copy)]
pub struct HttpOptions {
    /// From the connection (or the end of the previous response) to a whole request head;
    /// past it hyper closes the connection (HTTP 408 if nothing was read yet). Also the bound
    /// on an idle keep-alive connection.
    pub header_read_timeout: Duration,
    /// From accept to a finished TLS handshake.
    pub handshake_timeout: Duration,
    /// From the end of a request head to the last byte of its body, however it trickles in:
    /// past it the request is answered 408 and the connection closed. Bodies that must cross a
    /// slow link whole (the bridge's batches) set the pace for this bound.
    pub body_timeout: Duration,
    /// How long an answer may wait on a client that reads none of it; past it the connection
    /// is closed. Counted from the last write that went through, so a slow reader is not cut.
    pub write_timeout: Duration,
}

impl HttpOptions {
    /// The handshake shares the header-read bound: both are "the client has not yet said what
    /// it wants"; a stalled answer shares the body's: both are bytes a client is slow to move.
    pub fn new(header_timeout: Duration, body_timeout: Duration) -> Self {
        Self {
            header_read_timeout: header_timeout,
            handshake_timeout: header_timeout,
            body_timeout,
            write_timeout: body_timeout,
        }
    }
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self::new(Duration::from_secs(10), Duration::from_secs(30))
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
        let router = router.clone();
        let service = hyper::service::service_fn(move |request| {
            body::answer(router.clone(), request, options.body_timeout, peer)
        });
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
            let stream = stall::WriteDeadline::new(stream, options.write_timeout);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            if let Err(error) = watcher.watch(connection).await {
                tracing::debug!(%peer, %error, "HTTP connection ended");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
