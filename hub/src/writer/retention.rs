//! Retention: readings (with their classifications) and heartbeats older than the configured
//! age are deleted in the background, in small batches, so no statement holds locks for long.
//! Latest-state rows (sensors, agents) and dead letters are kept.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// Deletes in batches of `batch` rows until nothing older than `max_age` is left; returns how
/// many rows went.
pub async fn prune(pool: &PgPool, max_age: Duration, batch: i64) -> Result<u64, sqlx::Error> {
    let seconds = max_age.as_secs_f64();
    let mut deleted = 0;
    for statement in [
        "DELETE FROM readings WHERE reading_id IN (SELECT reading_id FROM readings
           WHERE observed_at < now() - make_interval(secs => $1) LIMIT $2)",
        "DELETE FROM agent_heartbeats WHERE (agent_id, sent_at) IN (SELECT agent_id, sent_at
           FROM agent_heartbeats WHERE sent_at < now() - make_interval(secs => $1) LIMIT $2)",
    ] {
        loop {
            let done = sqlx::query(statement)
                .bind(seconds)
                .bind(batch)
                .execute(pool)
                .await?
                .rows_affected();
            deleted += done;
            if done < u64::try_from(batch).unwrap_or(u64::MAX) {
                break;
            }
        }
    }
    Ok(deleted)
}

/// Prunes (`batch` rows per statement) every `every` until `token` is cancelled; a failure is logged and tried next time.
pub async fn run(
    pool: PgPool,
    max_age: Duration,
    (batch, every): (i64, Duration),
    metrics: Arc<Metrics>,
    token: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let pruning = prune(&pool, max_age, batch);
        let outcome = tokio::select! {
            _ = token.cancelled() => return,
            outcome = pruning => outcome,
        };
        match outcome {
            Ok(0) => {}
            Ok(deleted) => {
                tracing::info!(deleted, ?max_age, "retention removed old rows");
                metrics.retention_deleted.inc_by(deleted);
            }
            Err(error) => tracing::warn!(%error, "retention failed; trying again later"),
        }
    }
}
