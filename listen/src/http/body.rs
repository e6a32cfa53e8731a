//! The request-body bound: once a request head is in, its whole body must arrive within
//! [`HttpOptions::body_timeout`](super::HttpOptions::body_timeout), however it trickles.
//!
//! The body is wrapped in [`Deadline`]: one deadline from the end of the head, never reset by a
//! frame (tower-http's `TimeoutBody` resets on every frame, so a client sending a byte a second
//! would hold the connection for as long as the body is long). Its timer is only made once the
//! body has to be waited for: a small body that came with its head (nearly every ingest request)
//! costs no timer at all. A handler reading the body past the deadline gets an error; axum's
//! `Bytes` extractor would answer that with 400 ("Failed to buffer the request body"), a handler
//! of its own with whatever it maps body errors to. Whatever the handler answers, a request
//! whose body timed out is answered 408 with `Connection: close`, so hyper closes the connection
//! after writing it.

use std::convert::Infallible;
use std::future::Future as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use hyper::body::{Body as _, Frame, Incoming, SizeHint};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt as _;

/// The machine-readable code of the 408 answer (`{"error": "body_timeout", "message": …}`,
/// the shape of the agent's and the bridge's other errors).
pub const BODY_TIMEOUT_CODE: &str = "body_timeout";

/// Whether `error`, or an error behind it, is the body deadline running out: for handlers that
/// read the body themselves and want to name the cause (e.g. in a metric's label).
pub fn is_body_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error.is::<BodyTimeout>() {
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
    let request = request.map(|body| {
        Body::new(Deadline {
            inner: body,
            deadline: Instant::now() + limit,
            timer: None,
            timed_out: timed_out.clone(),
        })
    });
    let response = router.oneshot(request).await?;
    if !timed_out.load(Ordering::Relaxed) {
        return Ok(response);
    }
    tracing::debug!(%peer, ?limit, "request body not received in time; closing");
    Ok(timeout_response(response, limit))
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body did not arrive within its bound.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTimeout;

/// A body that must end by `deadline`.
struct Deadline<B> {
    inner: B,
    deadline: Instant,
    /// Made at the first poll that finds no data ready; until then no timer is registered.
    timer: Option<Pin<Box<Sleep>>>,
    /// Set when the deadline passes, for [`answer`] to turn the response into a 408.
    timed_out: Arc<AtomicBool>,
}

impl<B> Deadline<B> {
    fn expired(&self) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.timed_out.store(true, Ordering::Relaxed);
        Poll::Ready(Some(Err(BodyTimeout.into())))
    }
}

impl<B> hyper::body::Body for Deadline<B>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Some(timer) = &mut this.timer
            && timer.as_mut().poll(cx).is_ready()
        {
            return this.expired();
        }
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        if this.timer.is_none() {
            let timer = this
                .timer
                .insert(Box::pin(tokio::time::sleep_until(this.deadline)));
            // The first poll registers the timer, which then wakes this task when it fires.
            if timer.as_mut().poll(cx).is_ready() {
                return this.expired();
            }
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
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

    use http_body_util::{BodyExt as _, Full};

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

    fn deadline<B>(inner: B, limit: Duration, timed_out: &Arc<AtomicBool>) -> Deadline<B> {
        Deadline {
            inner,
            deadline: Instant::now() + limit,
            timer: None,
            timed_out: timed_out.clone(),
        }
    }

    #[tokio::test]
    async fn a_body_that_is_already_here_needs_no_timer() {
        let timed_out = Arc::new(AtomicBool::new(false));
        let mut bounded = deadline(
            Full::new(Bytes::from_static(b"reading")),
            Duration::from_millis(10),
            &timed_out,
        );
        let frame = bounded.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), "reading");
        assert!(bounded.frame().await.is_none());
        assert!(bounded.timer.is_none());
        assert!(!timed_out.load(Ordering::Relaxed));
    }

    #[tokio::test]
    async fn a_timeout_is_found_behind_other_errors() {
        #[derive(Debug, thiserror::Error)]
        #[error("could not read the body")]
        struct Outer(#[source] axum::Error);
        assert!(!is_body_timeout(&Outer(axum::Error::new("reset by peer"))));
        let timed_out = Arc::new(AtomicBool::new(false));
        let bounded = deadline(Stalled, Duration::from_millis(10), &timed_out);
        let error = bounded.collect().await.err().unwrap();
        assert!(timed_out.load(Ordering::Relaxed));
        assert!(is_body_timeout(&Outer(axum::Error::new(error))));
    }
}
