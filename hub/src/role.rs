//! What both roles share around their loop: errors at start, the background tasks (HTTP side,
//! lag reporter), retry timing and a bounded shutdown.

use std::future::Future;
use std::time::Duration;

use backon::{BackoffBuilder as _, ExponentialBuilder};
use rdkafka::error::KafkaError;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::ConfigError;
use crate::detector::rules::LoadError;
use crate::http::{self, AppState, Listening};
use crate::kafka::GroupConsumer;
use crate::metrics::Metrics;

/// Longest pause between two retries of a transient failure.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Why a role cannot start (or run).
#[derive(Debug, thiserror::Error)]
pub enum RoleError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Rules(#[from] LoadError),
    #[error("cannot create the Kafka client: {0}")]
    Kafka(#[from] KafkaError),
    #[error("PostgreSQL: {0}")]
    Database(#[from] sqlx::Error),
    #[error("the database migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot set up TLS for the HTTP listener: {0}")]
    Tls(#[from] emberline_listen::TlsError),
}

/// Retry timing for transient failures: exponential with jitter, 100 ms up to [`MAX_BACKOFF`],
/// never giving up (a role pauses; it does not skip).
pub fn backoff() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_jitter()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(MAX_BACKOFF)
        .without_max_times()
}

/// A token cancelled `grace` after `token`: how long the batch in hand may still take once
/// shutdown starts.
pub fn hard_stop(token: &CancellationToken, grace: Duration) -> CancellationToken {
    let hard = CancellationToken::new();
    let (token, stop) = (token.clone(), hard.clone());
    tokio::spawn(async move {
        token.cancelled().await;
        tokio::time::sleep(grace).await;
        stop.cancel();
    });
    hard
}

/// Runs `attempt` until it succeeds, pausing with [`backoff`] after each failure; `None` when
/// `stop` is cancelled first. Failures are logged and counted as retries of `what`.
pub async fn retry<T, E, F, Fut>(
    what: &'static str,
    metrics: &Metrics,
    stop: &CancellationToken,
    mut attempt: F,
) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let mut backoff = backoff().build();
    loop {
        let error = tokio::select! {
            _ = stop.cancelled() => return None,
            outcome = attempt() => match outcome {
                Ok(value) => return Some(value),
                Err(error) => error,
            },
        };
        metrics.retry(what);
        let delay = backoff.next().unwrap_or(MAX_BACKOFF);
        tracing::warn!(%error, ?delay, what, "transient failure; retrying the batch");
        tokio::select! {
            _ = stop.cancelled() => return None,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// Starts the HTTP side and the lag reporter; both end when `token` is cancelled.
pub fn background(
    (listener, listening): (tokio::net::TcpListener, Listening),
    state: AppState,
    consumer: &GroupConsumer,
    lag_interval: Duration,
    token: &CancellationToken,
) -> JoinSet<()> {
    let mut tasks = JoinSet::new();
    let metrics = state.metrics.clone();
    tasks.spawn(http::serve(listener, state, listening, token.clone()));
    let (consumer, token) = (consumer.clone(), token.clone());
    tasks.spawn(async move {
        loop {
            tokio::select! {
                _ = token.cancelled() => return,
                _ = tokio::time::sleep(lag_interval) => consumer.report_lag(&metrics).await,
            }
        }
    });
    tasks
}

/// Waits for the background tasks, then commits the stored offsets and closes the consumer,
/// each within a quarter of `timeout` (the batch in hand had the first half).
/// The background tasks go first: the lag reporter holds the consumer too, and the consumer's
/// last handle must be dropped on the closing thread, never on the runtime.
pub async fn finish(consumer: GroupConsumer, mut tasks: JoinSet<()>, timeout: Duration) {
    let drained = tokio::time::timeout(timeout / 4, async {
        while tasks.join_next().await.is_some() {}
    });
    if drained.await.is_err() {
        tracing::warn!("background tasks did not stop in time");
        tasks.abort_all();
    }
    consumer.close(timeout / 4).await;
    tracing::info!("stopped");
}
