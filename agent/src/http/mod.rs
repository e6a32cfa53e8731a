//! The agent's HTTP side: ingest (`POST /ingest`, `POST /v1/readings`) and the service
//! endpoints (`/healthz`, `/readyz`, `/metrics`).

mod error;
mod ingest;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use emberline_core::Limits;
use prometheus_client::registry::Registry;

pub use error::{ApiError, RETRY_AFTER_FULL_SECS};

use crate::auth::Tokens;
use crate::buffer::Buffer;
use crate::metrics::Metrics;

/// Whether the bridge answered the forwarder's last attempt; shown by `/readyz`.
#[derive(Debug, Default)]
pub struct BridgeStatus {
    reachable: AtomicBool,
}

impl BridgeStatus {
    pub fn set(&self, reachable: bool) {
        self.reachable.store(reachable, Ordering::Relaxed);
    }

    pub fn reachable(&self) -> bool {
        self.reachable.load(Ordering::Relaxed)
    }
}

#[derive(Debug)]
pub struct Inner {
    pub buffer: Buffer,
    pub limits: Limits,
    /// `None`: no device tokens configured, every device is accepted.
    pub tokens: Option<Arc<Tokens>>,
    pub metrics: Metrics,
    pub registry: Registry,
    pub bridge: Arc<BridgeStatus>,
    /// The local alert bus, when enabled.
    pub alerts: Option<crate::alerts::Alerts>,
    /// Largest `POST /ingest` body.
    pub max_reading_bytes: usize,
    /// Largest `POST /v1/readings` body.
    pub max_batch_bytes: usize,
    /// Most items in one `POST /v1/readings`: each becomes a reading and an item of the answer,
    /// so this bounds what one request can make the agent hold (an 8 MiB body of `[1,1,…]` is
    /// four million items).
    pub max_batch_items: usize,
    /// Most buffered bytes before `/readyz` says the agent cannot take more.
    pub max_buffer_bytes: u64,
}

pub type AppState = Arc<Inner>;

pub fn app(state: AppState) -> Router {
    let ingest = Router::new()
        .route(
            "/ingest",
            post(ingest::single).layer(DefaultBodyLimit::max(state.max_reading_bytes)),
        )
        .route(
            "/v1/readings",
            post(ingest::batch).layer(DefaultBodyLimit::max(state.max_batch_bytes)),
        );
    // Before the body is read: a caller without a token is refused at once, not after it has
    // sent (or trickled) megabytes. Only with tokens configured: the layer costs every reading
    // (about 8 % of the HTTP ceiling at 50 connections, docs/benchmarks.md).
    let ingest = if state.tokens.is_some() {
        ingest.route_layer(middleware::from_fn_with_state(state.clone(), authorized))
    } else {
        ingest
    };
    Router::new()
        .merge(ingest)
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// Lets a request with a valid device token through (every request when none are configured).
async fn authorized(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match ingest::authorize(&state, request.headers()) {
        Ok(()) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

/// Ready while the buffer can take readings. A bridge that cannot be reached does not make the
/// agent unready — buffering is its job — but is reported as its own state.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let stats = match state.buffer.stats().await {
        Ok(stats) => stats,
        Err(error) => {
            let body = serde_json::json!({"status": "unavailable", "reason": error.to_string()});
            return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body));
        }
    };
    // Full: no room for one more typical reading (1 KiB, or the average one if larger).
    let average = stats.bytes.checked_div(stats.depth).unwrap_or(0);
    let full = state.max_buffer_bytes.saturating_sub(stats.bytes) < average.max(1024);
    let status = match (full, state.bridge.reachable()) {
        (true, _) => "full",
        (false, true) => "ready",
        (false, false) => "buffering: bridge unreachable",
    };
    let code = if full {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let body = serde_json::json!({
        "status": status,
        "bridge_reachable": state.bridge.reachable(),
        "buffer_readings": stats.depth,
        "buffer_bytes": stats.bytes,
    });
    (code, axum::Json(body))
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut text = String::new();
    if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &state.registry) {
        tracing::error!(%error, "cannot encode metrics");
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain")],
            String::new(),
        );
    }
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], text)
}
