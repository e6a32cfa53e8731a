//! `GET /api/stream`: Server-Sent Events of classifications as the detector publishes them.
//!
//! Events: `ready` (first: the subscription is in place), `classification` (data: a GeoJSON
//! feature, the shape of `/api/sensors`' items) and `resync` (this stream fell behind and skipped
//! events: reload `/api/sensors`). After `ready` and after each `resync` come the latest
//! classifications of the last minutes, one per sensor ([`Feed::replay`]): the snapshot comes
//! from PostgreSQL, which can lag the live feed. A comment is sent every 15 s so proxies keep the
//! connection. Streams end when the server shuts down.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::{Stream, StreamExt as _};
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio_util::sync::CancellationToken;

use super::AppState;
use crate::feed::Feed;
use crate::live::LiveEvent;
use crate::metrics::Metrics;

/// Decrements the open-streams gauge when the stream is dropped (the browser went away).
struct Open(Arc<Metrics>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.stream_clients.dec();
    }
}

struct Follow {
    receiver: broadcast::Receiver<LiveEvent>,
    feed: Feed,
    /// Replayed classifications still to send, each when no live one is waiting (so the replay
    /// cannot make the stream fall behind and resync again).
    replay: VecDeque<LiveEvent>,
    shutdown: CancellationToken,
    _open: Open,
}

pub async fn stream(
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    state.metrics.stream_clients.inc();
    // Subscribed before the replay is taken: nothing published in between is missed.
    let receiver = state.live.subscribe();
    let follow = Follow {
        receiver,
        replay: state.live.replay().into(),
        feed: state.live.clone(),
        shutdown: state.shutdown.clone(),
        _open: Open(state.metrics.clone()),
    };
    let events = futures_util::stream::unfold(follow, |mut follow| async move {
        if follow.shutdown.is_cancelled() {
            return None;
        }
        let event = if follow.replay.is_empty() {
            tokio::select! {
                _ = follow.shutdown.cancelled() => return None,
                received = follow.receiver.recv() => follow.live(received)?,
            }
        } else {
            match follow.receiver.try_recv() {
                Err(TryRecvError::Empty) => classification(&follow.replay.pop_front()?),
                Ok(json) => classification(&json),
                Err(TryRecvError::Lagged(skipped)) => {
                    follow.live(Err(RecvError::Lagged(skipped)))?
                }
                Err(TryRecvError::Closed) => return None,
            }
        };
        Some((Ok(event), follow))
    });
    // First a `ready` event: the subscription exists, nothing published from now on is missed.
    let ready = Event::default().event("ready").data("live");
    let events = futures_util::stream::once(async { Ok(ready) }).chain(events);
    let keep_alive = KeepAlive::new().interval(Duration::from_secs(15));
    Sse::new(events).keep_alive(keep_alive)
}

impl Follow {
    /// The event for what the live feed gave; `None` once it has closed. A stream that fell
    /// behind is told to resync and gets the replay again.
    fn live(&mut self, received: Result<LiveEvent, RecvError>) -> Option<Event> {
        match received {
            Ok(json) => Some(classification(&json)),
            Err(RecvError::Lagged(skipped)) => {
                self._open.0.stream_lagged.inc();
                tracing::debug!(skipped, "a stream fell behind; telling it to reload");
                self.replay = self.feed.replay().into();
                Some(Event::default().event("resync").data(skipped.to_string()))
            }
            Err(RecvError::Closed) => None,
        }
    }
}

fn classification(json: &str) -> Event {
    Event::default().event("classification").data(json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{PageConfig, app};
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt as _;

    fn state(live: Feed, shutdown: CancellationToken) -> AppState {
        let pool = sqlx::PgPool::connect_lazy("postgres://nobody@127.0.0.1:1/none").unwrap();
        let page = PageConfig {
            tile_url: String::new(),
            tile_attribution: String::new(),
            agent_stale_after_seconds: 60.0,
        };
        AppState {
            pool,
            metrics: Arc::new(Metrics::new()),
            live,
            page: Arc::new(page),
            agent_stale_after: Duration::from_secs(60),
            shutdown,
        }
    }

    /// The event names in `text` (an SSE body so far).
    fn events(text: &str) -> Vec<&str> {
        text.lines()
            .filter_map(|l| l.strip_prefix("event: "))
            .collect()
    }

    #[tokio::test]
    async fn a_stream_that_falls_behind_is_told_to_resync_and_shutdown_ends_it() {
        let live = Feed::new(4);
        let shutdown = CancellationToken::new();
        let request = Request::get("/api/stream")
            .header("accept-encoding", "gzip")
            .body(Body::empty())
            .unwrap();
        let response = app(state(live.clone(), shutdown.clone()))
            .oneshot(request)
            .await
            .unwrap();
        assert!(
            response.headers().get("content-encoding").is_none(),
            "never compressed"
        );
        for n in 0..10 {
            live.publish("s-1", format!("{{\"n\":{n}}}").into());
        }
        let mut body = response.into_body().into_data_stream();
        let mut text = String::new();
        while events(&text).len() < 7 {
            let chunk = body.next().await.unwrap().unwrap();
            text.push_str(std::str::from_utf8(&chunk).unwrap());
        }
        assert_eq!(
            events(&text),
            [
                "ready",
                "resync",
                "classification",
                "classification",
                "classification",
                "classification",
                "classification"
            ]
        );
        let data: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("data: {"))
            .collect();
        assert_eq!(
            data,
            ["\"n\":6}", "\"n\":7}", "\"n\":8}", "\"n\":9}", "\"n\":9}"],
            "after the resync, the live ones waiting, then the sensor's latest (replayed): {text}"
        );
        assert!(
            text.contains("data: {\"n\":9}"),
            "the newest events follow: {text}"
        );
        shutdown.cancel();
        let rest = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(chunk) = body.next().await {
                chunk.unwrap();
            }
        });
        rest.await.expect("the stream did not end at shutdown");
    }

    /// Pushed before the page subscribed (and maybe not yet in PostgreSQL when it loads its
    /// snapshot): replayed after `ready`, the sensor's latest only.
    #[tokio::test]
    async fn a_new_stream_gets_the_latest_of_each_sensor_after_ready() {
        let live = Feed::new(16);
        live.publish("s-1", "{\"s\":1,\"n\":1}".into());
        live.publish("s-1", "{\"s\":1,\"n\":2}".into());
        live.publish("s-2", "{\"s\":2,\"n\":1}".into());
        let shutdown = CancellationToken::new();
        let request = Request::get("/api/stream").body(Body::empty()).unwrap();
        let response = app(state(live.clone(), shutdown.clone()))
            .oneshot(request)
            .await
            .unwrap();
        live.publish("s-3", "{\"s\":3,\"n\":1}".into());
        let mut body = response.into_body().into_data_stream();
        let mut text = String::new();
        while events(&text).len() < 4 {
            let chunk = body.next().await.unwrap().unwrap();
            text.push_str(std::str::from_utf8(&chunk).unwrap());
        }
        let data: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .collect();
        assert_eq!(events(&text)[0], "ready");
        assert_eq!(
            data[1], "{\"s\":3,\"n\":1}",
            "a live one waiting goes first: {text}"
        );
        let mut replayed = data[2..4].to_vec();
        replayed.sort_unstable();
        assert_eq!(
            replayed,
            ["{\"s\":1,\"n\":2}", "{\"s\":2,\"n\":1}"],
            "{text}"
        );
        shutdown.cancel();
    }
}
