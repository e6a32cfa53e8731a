//! The JSON API (described in `dashboard/openapi.json`).

use axum::Json;
use axum::extract::{Query, State};
use time::OffsetDateTime;

use super::{ApiError, AppState, PageConfig};
use crate::feature::FeatureCollection;
use crate::filter::{ListQuery, SensorQuery};
use crate::query::{self, Agent, Alert};

/// `/data` answers this many readings unless `limit` says otherwise.
const DATA_LIMIT: i64 = 1000;
/// `/api/alerts` answers this many alerts unless `limit` says otherwise.
const ALERTS_LIMIT: i64 = 50;

pub async fn page_config(State(state): State<AppState>) -> Json<PageConfig> {
    Json(PageConfig::clone(&state.page))
}

/// `GET /data`: the reference system's list, newest last.
pub async fn data(
    State(state): State<AppState>,
    Query(params): Query<ListQuery>,
) -> Result<Json<Vec<serde_json::Value>>, ApiError> {
    let (limit, since) = params.parse(DATA_LIMIT, OffsetDateTime::now_utc())?;
    let readings = query::classified_readings(&state.pool, limit, since).await?;
    Ok(Json(readings))
}

/// `GET /api/sensors`: one GeoJSON feature per sensor.
pub async fn sensors(
    State(state): State<AppState>,
    Query(params): Query<SensorQuery>,
) -> Result<Json<FeatureCollection>, ApiError> {
    let filter = params.parse(OffsetDateTime::now_utc())?;
    let features = query::sensors(&state.pool, &filter).await?;
    Ok(Json(FeatureCollection::new(features)))
}

/// `GET /api/alerts`: the newest high classifications.
pub async fn alerts(
    State(state): State<AppState>,
    Query(params): Query<ListQuery>,
) -> Result<Json<Vec<Alert>>, ApiError> {
    let (limit, since) = params.parse(ALERTS_LIMIT, OffsetDateTime::now_utc())?;
    Ok(Json(query::alerts(&state.pool, limit, since).await?))
}

/// `GET /api/agents`: every agent's latest heartbeat.
pub async fn agents(State(state): State<AppState>) -> Result<Json<Vec<Agent>>, ApiError> {
    let now = OffsetDateTime::now_utc();
    let agents = query::agents(&state.pool, now, state.agent_stale_after).await?;
    Ok(Json(agents))
}
