//! `POST /v1/batches` and `POST /v1/heartbeats`: authenticate, bound, check, produce, and answer
//! 200 only once Kafka acknowledged every record.

use std::time::Instant;

use axum::Json;
use axum::extract::rejection::{BytesRejection, FailedToBufferBody};
use axum::extract::{FromRequest as _, Request, State};
use axum::http::HeaderMap;
use axum::http::header::CONTENT_LENGTH;
use axum::response::Response;
use bytes::Bytes;
use emberline_core::AgentId;
use emberline_core::batch::{BATCH_CONTENT_TYPE, Heartbeat};
use emberline_listen::http::is_body_timeout;
use serde_json::{Value, json};

use super::{AppState, MAX_HEARTBEAT_BYTES};
use crate::body::{self, Encoding, Record};
use crate::error::ApiError;
use crate::limit::{Overloaded, Reservation};
use crate::repeat::Seen;

const HEARTBEAT_CONTENT_TYPE: &str = "application/json";

/// A request body read within the limits, from an authenticated agent.
struct Received {
    /// `None` when no tokens are configured.
    agent: Option<AgentId>,
    encoding: Encoding,
    body: Bytes,
    /// Holds the body's bytes (and later its decompressed bytes) against the in-flight limit.
    reservation: Reservation,
}

pub(super) async fn batches(State(state): State<AppState>, request: Request) -> Response {
    let outcome = accept_batch(&state, request).await;
    state.respond(outcome.map(|accepted| Json(json!({ "accepted": accepted }))))
}

pub(super) async fn heartbeats(State(state): State<AppState>, request: Request) -> Response {
    let outcome = accept_heartbeat(&state, request).await;
    state.respond(outcome)
}

async fn accept_batch(state: &AppState, request: Request) -> Result<usize, ApiError> {
    let shared = state.shared();
    let received = receive(state, request, BATCH_CONTENT_TYPE, shared.max_body_bytes).await?;
    shared
        .metrics
        .received_bytes
        .inc_by(received.body.len() as u64);
    let (max, retry_after) = (shared.max_batch_bytes, shared.retry_after_seconds);
    let max_record = shared.max_record_bytes;
    let Received {
        agent,
        encoding,
        body,
        mut reservation,
    } = received;
    let decoding_state = state.clone();
    let (records, digest, reservation) = tokio::task::spawn_blocking(move || {
        let batch = body::decompress(body, encoding, max, &mut reservation, retry_after)?;
        let records = body::records(&batch, agent.as_ref(), max_record)?;
        let digest = decoding_state.shared().recent.digest(&batch);
        Ok::<_, ApiError>((records, digest, reservation))
    })
    .await
    .map_err(|error| ApiError::Internal(format!("batch decoding stopped: {error}")))??;
    let producing = match shared.recent.check(digest) {
        Seen::New(producing) => producing,
        Seen::Produced => {
            shared.metrics.repeated.inc();
            tracing::debug!(
                records = records.len(),
                "batch produced before; answered again"
            );
            return Ok(records.len());
        }
        Seen::InFlight => return Err(ApiError::InProgress { retry_after }),
    };
    produce(state, &shared.raw_topic, &records).await?;
    producing.produced();
    drop(reservation);
    let bytes: usize = records.iter().map(|r| r.payload.len()).sum();
    shared.metrics.batches.inc();
    shared.metrics.records.inc_by(records.len() as u64);
    shared.metrics.produced_bytes.inc_by(bytes as u64);
    tracing::debug!(records = records.len(), bytes, "batch acknowledged");
    Ok(records.len())
}

async fn accept_heartbeat(state: &AppState, request: Request) -> Result<Json<Value>, ApiError> {
    let shared = state.shared();
    let max = MAX_HEARTBEAT_BYTES as u64;
    let received = receive(state, request, HEARTBEAT_CONTENT_TYPE, max).await?;
    let Received {
        agent,
        encoding,
        body,
        mut reservation,
    } = received;
    let body = body::decompress(
        body,
        encoding,
        max,
        &mut reservation,
        shared.retry_after_seconds,
    )?;
    let heartbeat: Heartbeat = serde_json::from_slice(&body)
        .map_err(|error| ApiError::malformed(format!("the heartbeat is not valid: {error}")))?;
    if let Some(agent) = agent.filter(|agent| *agent != heartbeat.agent_id) {
        return Err(ApiError::AgentMismatch(format!(
            "the heartbeat names agent {} but the token belongs to agent {agent}",
            heartbeat.agent_id
        )));
    }
    let record = Record {
        key: heartbeat.key().to_owned(),
        payload: body,
    };
    produce(state, &shared.status_topic, std::slice::from_ref(&record)).await?;
    shared.metrics.heartbeats.inc();
    Ok(Json(json!({ "accepted": 1 })))
}

/// Authenticates, checks the media type, reserves the body's bytes and reads it, in that order:
/// nothing is buffered for a request that will be refused.
async fn receive(
    state: &AppState,
    request: Request,
    content_type: &str,
    max: u64,
) -> Result<Received, ApiError> {
    let shared = state.shared();
    let (parts, body) = request.into_parts();
    let agent = state.authenticate(&parts.headers)?;
    let encoding = body::encoding(&parts.headers, content_type)?;
    let declared = content_length(&parts.headers);
    if declared.is_some_and(|length| length > max) {
        return Err(ApiError::TooLarge { limit: max });
    }
    let reserve = usize::try_from(declared.unwrap_or(max)).unwrap_or(usize::MAX);
    let reservation = shared
        .in_flight
        .reserve(reserve)
        .map_err(|e| overloaded(state, e))?;
    let request = Request::from_parts(parts, body);
    let body = Bytes::from_request(request, &())
        .await
        .map_err(|rejection| match rejection {
            BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_)) => {
                ApiError::TooLarge { limit: max }
            }
            other if is_body_timeout(&other) => ApiError::BodyTimeout(shared.body_timeout),
            other => ApiError::malformed(format!("the body could not be read: {other}")),
        })?;
    Ok(Received {
        agent,
        encoding,
        body,
        reservation,
    })
}

/// Produces and waits for every acknowledgement, timing it.
async fn produce(state: &AppState, topic: &str, records: &[Record]) -> Result<(), ApiError> {
    let shared = state.shared();
    let started = Instant::now();
    shared
        .kafka
        .produce_all(topic, records)
        .await
        .map_err(|cause| ApiError::Unavailable {
            cause,
            retry_after: shared.retry_after_seconds,
        })?;
    shared
        .metrics
        .produce_seconds
        .observe(started.elapsed().as_secs_f64());
    Ok(())
}

fn overloaded(state: &AppState, error: Overloaded) -> ApiError {
    ApiError::Overloaded {
        limit: error.limit,
        retry_after: state.shared().retry_after_seconds,
    }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}
