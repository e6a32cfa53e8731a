//! HTTP answers for everything that is not a 202: precise for client mistakes, generic (and
//! logged) for faults of the agent.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use emberline_core::ReadingError;
use serde_json::json;

/// Seconds a device is asked to wait when the buffer is full.
pub const RETRY_AFTER_FULL_SECS: u64 = 5;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("a valid device token is required")]
    Unauthorized,
    #[error("Content-Type must be {0}")]
    UnsupportedMediaType(&'static str),
    #[error(transparent)]
    Reading(#[from] ReadingError),
    #[error("{0}")]
    Batch(String),
    #[error("the batch holds more than {0} readings; send it in parts")]
    TooManyItems(usize),
    #[error("the buffer is full; retry later")]
    Full,
    #[error("internal error")]
    Internal(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = |code: &str, message: String| json!({"error": code, "message": message});
        match self {
            Self::Unauthorized => {
                let mut response = (
                    StatusCode::UNAUTHORIZED,
                    Json(body("unauthorized", self.to_string())),
                )
                    .into_response();
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                response
            }
            Self::UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Json(body("unsupported_media_type", self.to_string())),
            )
                .into_response(),
            Self::Reading(error @ ReadingError::Malformed(_)) => {
                (StatusCode::BAD_REQUEST, Json(error)).into_response()
            }
            Self::Reading(error) => (StatusCode::UNPROCESSABLE_ENTITY, Json(error)).into_response(),
            Self::Batch(message) => (
                StatusCode::BAD_REQUEST,
                Json(body("malformed_batch", message)),
            )
                .into_response(),
            Self::TooManyItems(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                Json(body("too_many_items", self.to_string())),
            )
                .into_response(),
            Self::Full => {
                let mut response = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(body("buffer_full", self.to_string())),
                )
                    .into_response();
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(RETRY_AFTER_FULL_SECS),
                );
                response
            }
            Self::Internal(detail) => {
                tracing::error!(%detail, "ingest failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Json(body("internal", "internal error".into())),
                )
                    .into_response()
            }
        }
    }
}
