//! The HTTP side of both roles: `/healthz` (alive), `/readyz` (dependencies reachable, the answer
//! kept for [`READY_TTL`] so probes do not hammer them) and `/metrics`, served by
//! `emberline_listen::http::serve` (TLS when configured; slow clients cut off).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use emberline_listen::http::HttpOptions;
use emberline_listen::{Acceptor, TlsError};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::config::Common;
use crate::metrics::Metrics;

/// How long a readiness answer is reused.
pub const READY_TTL: Duration = Duration::from_secs(2);

/// What a readiness check returns: `Err` says which dependency is missing.
pub type ReadyFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// A role's dependencies check.
pub trait Ready: Send + Sync + 'static {
    fn check(&self) -> ReadyFuture<'_>;
}

/// A readiness answer and when it was found.
type Answer = Option<(Instant, Result<(), String>)>;

/// What the routes share.
#[derive(Clone)]
pub struct AppState {
    pub metrics: Arc<Metrics>,
    ready: Arc<dyn Ready>,
    /// The last readiness answer and when it was found; the lock also keeps probes from
    /// checking at once.
    last: Arc<Mutex<Answer>>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

impl AppState {
    pub fn new(metrics: Arc<Metrics>, ready: Arc<dyn Ready>) -> Self {
        Self {
            metrics,
            ready,
            last: Arc::new(Mutex::new(None)),
        }
    }

    async fn ready(&self) -> Result<(), String> {
        let mut last = self.last.lock().await;
        if let Some((_, answer)) = last.as_ref().filter(|(at, _)| at.elapsed() < READY_TTL) {
            return answer.clone();
        }
        let answer = self.ready.check().await;
        *last = Some((Instant::now(), answer.clone()));
        answer
    }
}

/// The routes.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.ready().await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}\n"),
        )
            .into_response(),
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    match state.metrics.render() {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(error) => {
            tracing::error!(%error, "cannot render metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// How a role's HTTP side listens: TLS or plain TCP, and the bounds on slow clients.
#[derive(Debug, Clone)]
pub struct Listening {
    pub acceptor: Acceptor,
    /// Handshake, header-read and body bounds.
    pub options: HttpOptions,
}

impl Listening {
    /// From the roles' flags; a certificate or key that cannot be used is an error at start.
    pub fn new(common: &Common) -> Result<Self, TlsError> {
        let files = common.tls_cert.as_deref().zip(common.tls_key.as_deref());
        Ok(Self {
            acceptor: Acceptor::new(files, &[b"http/1.1"])?,
            options: HttpOptions::new(common.header_timeout, common.body_timeout),
        })
    }
}

/// Serves `app` on `listener` until `token` is cancelled.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    listening: Listening,
    token: CancellationToken,
) {
    if let Ok(address) = listener.local_addr() {
        let tls = listening.acceptor.is_tls();
        tracing::info!(%address, tls, "serving /healthz, /readyz and /metrics");
    }
    let Listening { acceptor, options } = listening;
    emberline_listen::http::serve(listener, app(state), acceptor, options, token).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt as _;

    struct Never;
    impl Ready for Never {
        fn check(&self) -> ReadyFuture<'_> {
            Box::pin(async { Err("the database does not answer".to_owned()) })
        }
    }

    async fn get(path: &str) -> (StatusCode, String) {
        let state = AppState::new(Arc::new(Metrics::new()), Arc::new(Never));
        let request = Request::get(path).body(Body::empty()).unwrap();
        let response = app(state).oneshot(request).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn probes_and_metrics_answer() {
        assert_eq!(get("/healthz").await.0, StatusCode::OK);
        let (status, body) = get("/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("database"), "{body}");
        let (status, body) = get("/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("emberline_hub_"), "{body}");
    }
}
