//! The SQL behind the API, over the tables `emberline-hub write` fills (`hub/migrations`).
//! Read-only; every query uses one of the hub's time-ordered indexes or reads `sensors` whole.

use serde::Serialize;
use sqlx::PgPool;
use time::OffsetDateTime;

use crate::feature::{Feature, SensorState, parse_intensity};
use crate::filter::SensorFilter;

/// One row of `sensors`.
#[derive(Debug, sqlx::FromRow)]
struct SensorRow {
    source_name: String,
    reading_id: String,
    agent_id: String,
    observed_at: OffsetDateTime,
    latitude: f64,
    longitude: f64,
    payload: serde_json::Value,
    classified_observed_at: Option<OffsetDateTime>,
    classified_reading_id: Option<String>,
    intensity: Option<String>,
    confidence_score: Option<f64>,
    rules_fired: Option<serde_json::Value>,
    rules_version: Option<String>,
}

impl From<SensorRow> for Feature {
    fn from(row: SensorRow) -> Self {
        let rules_fired = row
            .rules_fired
            .and_then(|rules| serde_json::from_value(rules).ok())
            .unwrap_or_default();
        let state = SensorState {
            source_name: row.source_name,
            reading_id: row.reading_id,
            agent_id: row.agent_id,
            observed_at: row.observed_at,
            intensity: row.intensity.as_deref().and_then(parse_intensity),
            confidence_score: row.confidence_score,
            rules_fired,
            rules_version: row.rules_version,
            classified_at: row.classified_observed_at,
            classified_reading_id: row.classified_reading_id,
            reading: row.payload,
        };
        Feature::new(row.longitude, row.latitude, state)
    }
}

/// Latest state of every sensor `filter` keeps, by name.
pub async fn sensors(pool: &PgPool, filter: &SensorFilter) -> Result<Vec<Feature>, sqlx::Error> {
    let intensities: Option<Vec<&str>> = filter
        .intensities
        .as_ref()
        .map(|list| list.iter().map(|i| i.as_str()).collect());
    let [min_lon, min_lat, max_lon, max_lat] = filter.bbox.map_or([None; 4], |b| b.map(Some));
    let rows: Vec<SensorRow> = sqlx::query_as(
        "SELECT source_name, reading_id, agent_id, observed_at, latitude, longitude, payload,
                classified_observed_at, classified_reading_id, intensity, confidence_score,
                rules_fired, rules_version
         FROM sensors
         WHERE ($1::text[] IS NULL OR intensity = ANY($1))
           AND ($2::timestamptz IS NULL OR observed_at >= $2)
           AND ($3::float8 IS NULL OR (latitude BETWEEN $4 AND $6 AND CASE
                WHEN $3 <= $5 THEN longitude BETWEEN $3 AND $5
                ELSE longitude >= $3 OR longitude <= $5 END))
           AND ($7::text IS NULL OR strpos(lower(source_name), lower($7)) > 0)
         ORDER BY source_name",
    )
    .bind(intensities)
    .bind(filter.since)
    .bind(min_lon)
    .bind(min_lat)
    .bind(max_lon)
    .bind(max_lat)
    .bind(filter.source.as_deref())
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(Feature::from).collect())
}

/// The reference system's `/data`: the newest `limit` classified readings, oldest first, each
/// the reading as the device sent it plus `intensity` and `confidence_score`.
pub async fn classified_readings(
    pool: &PgPool,
    limit: i64,
    since: Option<OffsetDateTime>,
) -> Result<Vec<serde_json::Value>, sqlx::Error> {
    let rows: Vec<(serde_json::Value, String, f64)> = sqlx::query_as(
        "SELECT r.payload, c.intensity, c.confidence_score
         FROM (SELECT reading_id, observed_at, intensity, confidence_score
               FROM classifications
               WHERE $2::timestamptz IS NULL OR observed_at >= $2
               ORDER BY observed_at DESC, reading_id DESC LIMIT $1) c
         JOIN readings r USING (reading_id)
         ORDER BY c.observed_at, c.reading_id",
    )
    .bind(limit)
    .bind(since)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(mut payload, intensity, confidence)| {
            if let Some(object) = payload.as_object_mut() {
                object.insert("intensity".into(), intensity.into());
                object.insert("confidence_score".into(), confidence.into());
            }
            payload
        })
        .collect())
}

/// A `high` classification, for the alerts list.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Alert {
    pub reading_id: String,
    pub source_name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub observed_at: OffsetDateTime,
    pub confidence_score: f64,
    pub rules_fired: serde_json::Value,
    pub latitude: f64,
    pub longitude: f64,
}

/// The newest `limit` high classifications, newest first.
pub async fn alerts(
    pool: &PgPool,
    limit: i64,
    since: Option<OffsetDateTime>,
) -> Result<Vec<Alert>, sqlx::Error> {
    sqlx::query_as(
        "SELECT c.reading_id, c.source_name, c.observed_at, c.confidence_score, c.rules_fired,
                r.latitude, r.longitude
         FROM classifications c JOIN readings r USING (reading_id)
         WHERE c.intensity = 'high' AND ($2::timestamptz IS NULL OR c.observed_at >= $2)
         ORDER BY c.observed_at DESC, c.reading_id DESC LIMIT $1",
    )
    .bind(limit)
    .bind(since)
    .fetch_all(pool)
    .await
}

/// An agent's latest heartbeat and whether it is overdue.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Agent {
    pub agent_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen_at: OffsetDateTime,
    pub version: String,
    pub buffer_depth: i64,
    pub buffer_bytes: i64,
    pub oldest_buffered_age_seconds: Option<f64>,
    /// Seconds since `last_seen_at`, by the dashboard's clock.
    #[sqlx(skip)]
    pub last_seen_seconds_ago: f64,
    /// No heartbeat for longer than `--agent-stale-after`.
    #[sqlx(skip)]
    pub stale: bool,
}

/// Every agent by id, `stale` when silent longer than `stale_after` at `now`.
pub async fn agents(
    pool: &PgPool,
    now: OffsetDateTime,
    stale_after: std::time::Duration,
) -> Result<Vec<Agent>, sqlx::Error> {
    let mut agents: Vec<Agent> = sqlx::query_as(
        "SELECT agent_id, last_seen_at, version, buffer_depth, buffer_bytes,
                oldest_buffered_age_seconds
         FROM agents ORDER BY agent_id",
    )
    .fetch_all(pool)
    .await?;
    for agent in &mut agents {
        let ago = (now - agent.last_seen_at).as_seconds_f64();
        agent.last_seen_seconds_ago = ago;
        agent.stale = ago > stale_after.as_secs_f64();
    }
    Ok(agents)
}
