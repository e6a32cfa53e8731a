//! The HTTP side: the page and its assets ([`assets`]), the JSON API ([`api`]), the live stream
//! ([`stream`]), probes and metrics. [`app`] builds the router from an [`AppState`], so routes
//! are tested with `oneshot` without a socket.

pub mod api;
pub mod assets;
pub mod stream;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tower_http::compression::CompressionLayer;

use crate::feed::Feed;
use crate::filter::FilterError;
use crate::metrics::Metrics;

/// What the page learns from `/config.json`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PageConfig {
    /// Empty: no base map.
    pub tile_url: String,
    pub tile_attribution: String,
    pub agent_stale_after_seconds: f64,
}

/// What the routes share.
#[derive(Debug, Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub metrics: Arc<Metrics>,
    /// Live classifications; each stream subscribes its own receiver and gets the replay.
    pub live: Feed,
    pub page: Arc<PageConfig>,
    pub agent_stale_after: Duration,
    /// Cancelled at shutdown: open streams end so the graceful shutdown does not wait on them.
    pub shutdown: CancellationToken,
}

/// The routes.
pub fn app(state: AppState) -> Router {
    Router::new()
        .merge(assets::routes())
        .route("/config.json", get(api::page_config))
        .route("/data", get(api::data))
        .route("/api/sensors", get(api::sensors))
        .route("/api/alerts", get(api::alerts))
        .route("/api/agents", get(api::agents))
        .route("/api/stream", get(stream::stream))
        .route("/api/openapi.json", get(assets::openapi))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(middleware::from_fn_with_state(state.clone(), count))
        // tower-http's default predicate leaves `text/event-stream` and tiny bodies uncompressed.
        .layer(CompressionLayer::new())
        .with_state(state)
}

/// Counts and times every request by its route pattern (never the raw path: bounded labels).
async fn count(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let seconds = started.elapsed().as_secs_f64();
    state
        .metrics
        .request(&route, response.status().as_u16(), seconds);
    response
}

/// An API failure: a client mistake gets a precise message, a server fault a generic one and a
/// log line.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    BadRequest(#[from] FilterError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = match &self {
            Self::BadRequest(error) => (StatusCode::BAD_REQUEST, "bad_request", error.to_string()),
            Self::Database(error) => {
                tracing::error!(%error, "database query failed");
                let message = "the database is not available; try again shortly".to_owned();
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
            }
        };
        let body = serde_json::json!({ "error": code, "message": message });
        (status, axum::Json(body)).into_response()
    }
}

/// Ready when PostgreSQL answers within 2 s.
async fn readyz(State(state): State<AppState>) -> Response {
    let ping = sqlx::query("SELECT 1").execute(&state.pool);
    let reason = match tokio::time::timeout(Duration::from_secs(2), ping).await {
        Ok(Ok(_)) => return (StatusCode::OK, "ready\n").into_response(),
        Ok(Err(error)) => format!("PostgreSQL does not answer: {error}"),
        Err(_) => "PostgreSQL does not answer within 2s".to_owned(),
    };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        format!("not ready: {reason}\n"),
    )
        .into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    match state.metrics.render() {
        Ok(text) => {
            let kind = "application/openmetrics-text; version=1.0.0; charset=utf-8";
            ([(header::CONTENT_TYPE, kind)], text).into_response()
        }
        Err(error) => {
            tracing::error!(%error, "cannot render metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
