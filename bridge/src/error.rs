//! What the HTTP API answers when it does not say 200: a status and
//! `{"error": code, "message": ...}` (plus `"line"` when one line of a batch is at fault).
//! Client mistakes get a precise message; server faults a generic one and a log line.

use axum::Json;
use axum::http::header::{RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use emberline_core::ENVELOPE_VERSION;

use crate::kafka::ProduceError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("a valid bearer token is required (Authorization: Bearer <token>)")]
    Unauthorized,
    #[error("{0}")]
    AgentMismatch(String),
    #[error("{message}")]
    Malformed {
        message: String,
        line: Option<usize>,
    },
    #[error("the body is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error(
        "record {record} is {size} bytes with its key, more than Kafka takes ({limit}, message.max.bytes)"
    )]
    RecordTooLarge {
        record: usize,
        size: usize,
        limit: usize,
    },
    /// A record in a newer envelope version than this bridge reads: an agent upgraded before
    /// its bridge. Not the agent's fault and not to be set aside: it keeps the batch and retries
    /// until the bridge is upgraded.
    #[error(
        "line {line}: envelope version {found} is newer than this bridge reads ({ENVELOPE_VERSION}); upgrade the bridge"
    )]
    NewerEnvelope {
        line: usize,
        found: u64,
        retry_after: u32,
    },
    /// The body did not arrive within `--body-timeout` of the request head; the listener closes
    /// the connection after this answer.
    #[error("the request body did not arrive within {0:?}")]
    BodyTimeout(std::time::Duration),
    #[error("{0}")]
    UnsupportedMedia(String),
    #[error("the bridge holds as many bytes as it may (limit {limit}); retry later")]
    Overloaded { limit: usize, retry_after: u32 },
    /// The same batch is being produced by another request right now (an agent that gave up
    /// on the first and sent it again); its outcome decides the answer to the retry.
    #[error("this batch is being produced by an earlier request; retry later")]
    InProgress { retry_after: u32 },
    #[error("Kafka did not acknowledge every record in time; retry later")]
    Unavailable {
        cause: ProduceError,
        retry_after: u32,
    },
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// A stable code for clients and the `reason` label of the rejections metric.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::AgentMismatch(_) => "agent_mismatch",
            Self::Malformed { .. } => "malformed",
            Self::TooLarge { .. } => "too_large",
            Self::RecordTooLarge { .. } => "record_too_large",
            Self::NewerEnvelope { .. } => "unsupported_version",
            Self::BodyTimeout(_) => emberline_listen::http::BODY_TIMEOUT_CODE,
            Self::UnsupportedMedia(_) => "unsupported_media_type",
            Self::Overloaded { .. } => "overloaded",
            Self::InProgress { .. } => "in_progress",
            Self::Unavailable { .. } => "kafka_unavailable",
            Self::Internal(_) => "internal",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::AgentMismatch(_) => StatusCode::FORBIDDEN,
            Self::Malformed { .. } => StatusCode::BAD_REQUEST,
            Self::TooLarge { .. } | Self::RecordTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::UnsupportedMedia(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Overloaded { .. }
            | Self::InProgress { .. }
            | Self::Unavailable { .. }
            | Self::NewerEnvelope { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn malformed(message: impl Into<String>) -> Self {
        Self::Malformed {
            message: message.into(),
            line: None,
        }
    }

    fn log(&self) {
        match self {
            Self::Unavailable { cause, .. } => {
                tracing::warn!(error = %cause, "batch not acknowledged by Kafka; answering 503");
            }
            Self::Internal(cause) => tracing::error!(error = %cause, "internal error"),
            Self::Overloaded { limit, .. } => {
                tracing::warn!(limit, "in-flight bytes limit reached; answering 503");
            }
            Self::NewerEnvelope { found, .. } => {
                tracing::warn!(
                    found,
                    reads = ENVELOPE_VERSION,
                    "an agent sends a newer envelope version than this bridge reads; answering 503 until the bridge is upgraded"
                );
            }
            other => tracing::info!(code = other.code(), error = %other, "request refused"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.log();
        let mut body = json!({ "error": self.code(), "message": self.to_string() });
        if let Self::Malformed {
            line: Some(line), ..
        } = &self
        {
            body["line"] = json!(line);
        }
        let mut response = (self.status(), Json(body)).into_response();
        let headers = response.headers_mut();
        match &self {
            Self::Unauthorized => {
                headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::Overloaded { retry_after, .. }
            | Self::InProgress { retry_after }
            | Self::Unavailable { retry_after, .. }
            | Self::NewerEnvelope { retry_after, .. } => {
                headers.insert(RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            _ => {}
        }
        response
    }
}
