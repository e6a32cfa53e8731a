//! The request-body bound: once a request head is in, its whole body must arrive within
//! [`HttpOptions::body_timeout`](super::HttpOptions::body_timeout), however it trickles.
//!
//! The body is wrapped in tower-http's [`DeadlineBody`] (one timer from the end of the head,
//! never reset by a frame; its `TimeoutBody` resets on every frame, so a client sending a byte
//! a second would hold the connection for as long as the body is long). A handler reading the
//! body past the deadline gets an error; axum's `Bytes` extractor would answer that with 400
//! ("Failed to buffer the request body"), a handler of its own with whatever it maps body errors
//! to. Whatever the handler answers, a request whose body timed out is answered 408 with
//! `Connection: close`, so hyper closes the connection after writing it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use http_body_util::BodyExt as _;
use hyper::body::{Body as _, Incoming};
use tower::ServiceExt as _;
use tower_http::timeout::{DeadlineBody, TimeoutError};

/// The machine-readable code of the 408 answer (`{"error": "body_timeout", "message": …}`,
/// the shape of the agent's and the bridge's other errors).
pub const BODY_TIMEOUT_CODE: &str = "body_timeout";

/// Whether `error`, or an error behind it, is the body deadline running out: for handlers that
/// read the body themselves and want to name the cause (e.g. in a metric's label).
pub fn is_body_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error.is::<TimeoutError>() {
            return true;
        }
        cause = error.source();
    }
    false
}

/// Answers one request with `router`, its body bounded by `limit`.
pub(super) async fn answer(
    router: Router,
    request: Request<Incoming>,
    limit: Duration,
    peer: SocketAddr,
) -> Result<Response, Infallible> {
    // A body that is already complete (a GET, an empty POST) needs no timer.
    if request.body().is_end_stream() {
        return router.oneshot(request.map(Body::new)).await;
    }
    let timed_out = Arc::new(AtomicBool::new(false));
    let seen = timed_out.clone();
    let request = request.map(|body| {
        let bounded = DeadlineBody::new(limit, body).map_err(move |error| {
            if error.is::<TimeoutError>() {
                seen.store(true, Ordering::Relaxed);
            }
            error
        });
        Body::new(bounded)
    });
    let response = router.oneshot(request).await?;
    if !timed_out.load(Ordering::Relaxed) {
        return Ok(response);
    }
    tracing::debug!(%peer, ?limit, "request body not received in time; closing");
    Ok(timeout_response(response, limit))
}

/// 408 with `Connection: close`; a handler's own 408 (with its own body) is kept.
fn timeout_response(response: Response, limit: Duration) -> Response {
    let mut response = if response.status() == StatusCode::REQUEST_TIMEOUT {
        response
    } else {
        let message = format!("the request body did not arrive within {limit:?}");
        let body = serde_json::json!({ "error": BODY_TIMEOUT_CODE, "message": message });
        (StatusCode::REQUEST_TIMEOUT, axum::Json(body)).into_response()
    };
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use axum::body::Bytes;
    use hyper::body::Frame;

    use super::*;

    /// A body whose data never comes.
    struct Stalled;

    impl hyper::body::Body for Stalled {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            Poll::Pending
        }
    }

    #[tokio::test]
    async fn a_timeout_is_found_behind_other_errors() {
        #[derive(Debug, thiserror::Error)]
        #[error("could not read the body")]
        struct Outer(#[source] axum::Error);
        assert!(!is_body_timeout(&Outer(axum::Error::new("reset by peer"))));
        let bounded = DeadlineBody::new(Duration::from_millis(10), Stalled);
        let error = bounded.collect().await.err().unwrap();
        assert!(is_body_timeout(&Outer(axum::Error::new(error))));
    }
}
