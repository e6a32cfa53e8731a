//! The HTTP API: `app(state) -> Router`, shared state, probes and metrics.

mod ingest;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use emberline_core::AgentId;

use crate::auth::{Tokens, bearer};
use crate::config::Config;
use crate::error::ApiError;
use crate::kafka::Kafka;
use crate::limit::InFlight;
use crate::metrics::Metrics;
use crate::readiness::Readiness;
use crate::repeat::Recent;

/// Largest heartbeat body; a heartbeat is a few hundred bytes.
pub const MAX_HEARTBEAT_BYTES: usize = 64 * 1024;

/// What every request shares; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

#[derive(Debug)]
pub struct Shared {
    pub kafka: Kafka,
    /// `None`: no tokens configured, every request is accepted (warned about at start).
    pub tokens: Option<Tokens>,
    pub raw_topic: String,
    pub status_topic: String,
    pub max_body_bytes: u64,
    pub max_batch_bytes: u64,
    /// Largest record the producer sends ([`Config::max_record_bytes`]).
    pub max_record_bytes: usize,
    pub retry_after_seconds: u32,
    /// `--body-timeout`, named in the 408 a slow body gets (the listener enforces it).
    pub body_timeout: std::time::Duration,
    /// Bounds the bytes all requests hold at once, so many agents cannot exhaust memory.
    pub in_flight: InFlight,
    pub metrics: Metrics,
    /// Batches produced recently, so that one sent again is not produced twice.
    pub recent: Recent,
    readiness: Readiness,
}

impl AppState {
    /// State for a checked `config`.
    pub fn new(config: &Config, tokens: Option<Tokens>, kafka: Kafka) -> Self {
        let topics = vec![config.raw_topic.clone(), config.status_topic.clone()];
        let in_flight = usize::try_from(config.max_in_flight_bytes).unwrap_or(usize::MAX);
        Self(Arc::new(Shared {
            readiness: Readiness::new(kafka.clone(), topics),
            kafka,
            tokens,
            raw_topic: config.raw_topic.clone(),
            status_topic: config.status_topic.clone(),
            max_body_bytes: config.max_body_bytes,
            max_batch_bytes: config.max_batch_bytes,
            max_record_bytes: config.max_record_bytes(),
            retry_after_seconds: config.retry_after_seconds,
            body_timeout: config.body_timeout,
            in_flight: InFlight::new(in_flight),
            metrics: Metrics::new(),
            recent: Recent::default(),
        }))
    }

    pub fn shared(&self) -> &Shared {
        &self.0
    }

    /// The agent the request's token names; `None` when no tokens are configured.
    fn authenticate(&self, headers: &HeaderMap) -> Result<Option<AgentId>, ApiError> {
        let Some(tokens) = &self.0.tokens else {
            return Ok(None);
        };
        bearer(headers)
            .and_then(|token| tokens.agent(token))
            .cloned()
            .map(Some)
            .ok_or(ApiError::Unauthorized)
    }

    /// Turns an outcome into the response, counting refusals by reason.
    fn respond<T: IntoResponse>(&self, outcome: Result<T, ApiError>) -> Response {
        match outcome {
            Ok(answer) => answer.into_response(),
            Err(error) => {
                self.0.metrics.reject(error.code());
                error.into_response()
            }
        }
    }
}

/// Every route of the bridge.
pub fn app(state: AppState) -> Router {
    let batch_limit = usize::try_from(state.0.max_body_bytes).unwrap_or(usize::MAX);
    Router::new()
        .route(
            "/v1/batches",
            post(ingest::batches).layer(DefaultBodyLimit::max(batch_limit)),
        )
        .route(
            "/v1/heartbeats",
            post(ingest::heartbeats).layer(DefaultBodyLimit::max(MAX_HEARTBEAT_BYTES)),
        )
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// Alive, unless the producer hit a fatal error it can never recover from (restart us).
async fn healthz(State(state): State<AppState>) -> Response {
    match state.0.kafka.fatal_error() {
        None => (StatusCode::OK, "ok\n").into_response(),
        Some(error) => {
            tracing::error!(%error, "the Kafka producer is in a fatal state");
            let message = format!("the Kafka producer failed fatally: {error}\n");
            (StatusCode::SERVICE_UNAVAILABLE, message).into_response()
        }
    }
}

/// Ready when the brokers answer and both topics exist.
async fn readyz(State(state): State<AppState>) -> Response {
    match state.0.readiness.check().await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(reason) => {
            tracing::warn!(%reason, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {reason}\n"),
            )
                .into_response()
        }
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    let shared = &state.0;
    match shared
        .metrics
        .render(shared.in_flight.in_use(), shared.in_flight.limit())
    {
        Ok(text) => {
            let content_type = "text/plain; version=0.0.4; charset=utf-8";
            ([(CONTENT_TYPE, content_type)], text).into_response()
        }
        Err(error) => ApiError::Internal(format!("cannot encode metrics: {error}")).into_response(),
    }
}
