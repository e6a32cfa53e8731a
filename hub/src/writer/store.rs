//! The writer's SQL: one transaction per batch, one multi-row `UNNEST` statement per table.
//!
//! # Invariants
//! - Idempotent: inserts are `ON CONFLICT DO NOTHING` on the natural keys; latest-state upserts
//!   move forward only when the incoming `(timestamp, id)` is newer than the stored one. Writing
//!   a batch twice leaves the database as writing it once.
//! - Latest-state rows are touched in key order (see `decode`), so writers do not deadlock.

use emberline_core::Envelope;
use emberline_core::batch::Heartbeat;
use serde_json::Value;
use sqlx::{PgPool, Postgres, Transaction};
use time::OffsetDateTime;

use super::decode::{Rows, latest_per_agent, latest_per_sensor};
use crate::kafka::DeadLetter;

type Tx = Transaction<'static, Postgres>;
type Query = sqlx::query::Query<'static, Postgres, sqlx::postgres::PgArguments>;

/// Writes `rows` in one transaction; nothing is written unless everything is.
#[tracing::instrument(skip_all, fields(
    readings = rows.readings.len(),
    classified = rows.classified.len(),
    heartbeats = rows.heartbeats.len(),
    dead = rows.dead.len(),
))]
pub async fn write(pool: &PgPool, rows: &Rows<'_>) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    insert_readings(&mut tx, &by_id(&rows.readings)).await?;
    upsert_sensors(&mut tx, &latest_per_sensor(&rows.readings)).await?;
    insert_classifications(&mut tx, &by_id(&rows.classified)).await?;
    update_sensor_intensity(&mut tx, &latest_per_sensor(&rows.classified)).await?;
    insert_heartbeats(&mut tx, &rows.heartbeats).await?;
    upsert_agents(&mut tx, &latest_per_agent(&rows.heartbeats)).await?;
    insert_dead_letters(&mut tx, &rows.dead).await?;
    tx.commit().await
}

/// `envelopes` in `reading_id` order. Rows are inserted in key order, like the latest-state
/// rows: writers racing on the same readings (one from raw-data, one from anomaly-data) then
/// wait on each other instead of deadlocking.
fn by_id<'a>(envelopes: &[&'a Envelope]) -> Vec<&'a Envelope> {
    let mut sorted = envelopes.to_vec();
    sorted.sort_by(|a, b| a.reading_id.cmp(&b.reading_id));
    sorted
}

/// The columns of a set of envelopes, one vector per column.
#[derive(Default)]
struct ReadingColumns {
    ids: Vec<String>,
    sources: Vec<String>,
    agents: Vec<String>,
    protocols: Vec<String>,
    observed: Vec<OffsetDateTime>,
    received: Vec<OffsetDateTime>,
    values: [Vec<f64>; 8],
    payloads: Vec<Value>,
}

impl ReadingColumns {
    fn new(envelopes: &[&Envelope]) -> Self {
        let mut c = Self::default();
        for e in envelopes {
            let m = e.reading.measurements();
            c.ids.push(e.reading_id.as_str().to_owned());
            c.sources.push(e.key().to_owned());
            c.agents.push(e.agent_id.as_str().to_owned());
            c.protocols.push(protocol(e));
            c.observed.push(e.reading.timestamp());
            c.received.push(e.received_at);
            let values = [
                m.latitude,
                m.longitude,
                m.temperature,
                m.humidity,
                m.wind_speed,
                m.wind_direction,
                m.vegetation_density,
                m.air_quality_index,
            ];
            for (column, value) in c.values.iter_mut().zip(values) {
                column.push(value);
            }
            c.payloads
                .push(serde_json::to_value(&e.reading).unwrap_or(Value::Null));
        }
        c
    }
}

fn protocol(envelope: &Envelope) -> String {
    serde_json::to_value(envelope.protocol)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

async fn insert_readings(tx: &mut Tx, envelopes: &[&Envelope]) -> Result<(), sqlx::Error> {
    if envelopes.is_empty() {
        return Ok(());
    }
    let c = ReadingColumns::new(envelopes);
    let [lat, lon, temp, hum, wind, dir, veg, aqi] = c.values;
    sqlx::query(
        "INSERT INTO readings (reading_id, source_name, agent_id, protocol, observed_at,
            received_at, latitude, longitude, temperature, humidity, wind_speed, wind_direction,
            vegetation_density, air_quality_index, payload)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[],
            $5::timestamptz[], $6::timestamptz[], $7::float8[], $8::float8[], $9::float8[],
            $10::float8[], $11::float8[], $12::float8[], $13::float8[], $14::float8[],
            $15::jsonb[])
         ON CONFLICT (reading_id) DO NOTHING",
    )
    .bind(c.ids)
    .bind(c.sources)
    .bind(c.agents)
    .bind(c.protocols)
    .bind(c.observed)
    .bind(c.received)
    .bind(lat)
    .bind(lon)
    .bind(temp)
    .bind(hum)
    .bind(wind)
    .bind(dir)
    .bind(veg)
    .bind(aqi)
    .bind(c.payloads)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn upsert_sensors(tx: &mut Tx, latest: &[&Envelope]) -> Result<(), sqlx::Error> {
    if latest.is_empty() {
        return Ok(());
    }
    let c = ReadingColumns::new(latest);
    let [lat, lon, ..] = c.values;
    sqlx::query(
        "INSERT INTO sensors (source_name, reading_id, agent_id, observed_at, latitude,
            longitude, payload)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::timestamptz[],
            $5::float8[], $6::float8[], $7::jsonb[])
         ON CONFLICT (source_name) DO UPDATE SET reading_id = EXCLUDED.reading_id,
            agent_id = EXCLUDED.agent_id, observed_at = EXCLUDED.observed_at,
            latitude = EXCLUDED.latitude, longitude = EXCLUDED.longitude,
            payload = EXCLUDED.payload, updated_at = now()
         WHERE (sensors.observed_at, sensors.reading_id COLLATE \"C\")
             < (EXCLUDED.observed_at, EXCLUDED.reading_id COLLATE \"C\")",
    )
    .bind(c.sources)
    .bind(c.ids)
    .bind(c.agents)
    .bind(c.observed)
    .bind(lat)
    .bind(lon)
    .bind(c.payloads)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The classification columns of classified envelopes.
#[derive(Default)]
struct ClassColumns {
    ids: Vec<String>,
    sources: Vec<String>,
    observed: Vec<OffsetDateTime>,
    intensities: Vec<String>,
    confidences: Vec<f64>,
    fired: Vec<Value>,
    versions: Vec<String>,
    detected: Vec<OffsetDateTime>,
}

impl ClassColumns {
    fn new(envelopes: &[&Envelope]) -> Self {
        let mut c = Self::default();
        for e in envelopes {
            let Some(k) = &e.classification else { continue };
            c.ids.push(e.reading_id.as_str().to_owned());
            c.sources.push(e.key().to_owned());
            c.observed.push(e.reading.timestamp());
            c.intensities.push(k.intensity.as_str().to_owned());
            c.confidences.push(k.confidence_score);
            c.fired.push(Value::from(k.rules_fired.clone()));
            c.versions.push(k.rules_version.clone());
            c.detected.push(k.detected_at);
        }
        c
    }

    /// Binds `$1..=$7` in field order (all but `detected`, which is returned).
    fn bind(self, query: Query) -> (Query, Vec<OffsetDateTime>) {
        let query = query
            .bind(self.ids)
            .bind(self.sources)
            .bind(self.observed)
            .bind(self.intensities)
            .bind(self.confidences)
            .bind(self.fired)
            .bind(self.versions);
        (query, self.detected)
    }
}

async fn insert_classifications(tx: &mut Tx, classified: &[&Envelope]) -> Result<(), sqlx::Error> {
    if classified.is_empty() {
        return Ok(());
    }
    let (query, detected) = ClassColumns::new(classified).bind(sqlx::query(
        "INSERT INTO classifications (reading_id, source_name, observed_at, intensity,
            confidence_score, rules_fired, rules_version, detected_at)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::timestamptz[], $4::text[],
            $5::float8[], $6::jsonb[], $7::text[], $8::timestamptz[])
         ON CONFLICT (reading_id) DO NOTHING",
    ));
    query.bind(detected).execute(&mut **tx).await?;
    Ok(())
}

/// The sensor rows exist: their readings were upserted earlier in the same transaction.
async fn update_sensor_intensity(tx: &mut Tx, latest: &[&Envelope]) -> Result<(), sqlx::Error> {
    if latest.is_empty() {
        return Ok(());
    }
    let (query, _) = ClassColumns::new(latest).bind(sqlx::query(
        "UPDATE sensors s SET classified_reading_id = u.reading_id,
            classified_observed_at = u.observed_at, intensity = u.intensity,
            confidence_score = u.confidence_score, rules_fired = u.rules_fired,
            rules_version = u.rules_version, updated_at = now()
         FROM UNNEST($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::float8[],
            $6::jsonb[], $7::text[])
            AS u (reading_id, source_name, observed_at, intensity, confidence_score,
                  rules_fired, rules_version)
         WHERE s.source_name = u.source_name
           AND (s.classified_observed_at IS NULL
                OR (s.classified_observed_at, s.classified_reading_id COLLATE \"C\")
                   < (u.observed_at, u.reading_id COLLATE \"C\"))",
    ));
    query.execute(&mut **tx).await?;
    Ok(())
}

/// The columns of a set of heartbeats.
#[derive(Default)]
struct HeartbeatColumns {
    agents: Vec<String>,
    sent: Vec<OffsetDateTime>,
    versions: Vec<String>,
    depths: Vec<i64>,
    bytes: Vec<i64>,
    ages: Vec<Option<f64>>,
}

impl HeartbeatColumns {
    fn new(heartbeats: &[&Heartbeat]) -> Self {
        let mut c = Self::default();
        for h in heartbeats {
            c.agents.push(h.agent_id.as_str().to_owned());
            c.sent.push(h.sent_at);
            c.versions.push(h.version.clone());
            c.depths
                .push(i64::try_from(h.buffer_depth).unwrap_or(i64::MAX));
            c.bytes
                .push(i64::try_from(h.buffer_bytes).unwrap_or(i64::MAX));
            c.ages.push(h.oldest_buffered_age_seconds);
        }
        c
    }

    /// Binds `$1..=$6` in field order.
    fn bind(self, query: Query) -> Query {
        query
            .bind(self.agents)
            .bind(self.sent)
            .bind(self.versions)
            .bind(self.depths)
            .bind(self.bytes)
            .bind(self.ages)
    }
}

async fn insert_heartbeats(tx: &mut Tx, heartbeats: &[&Heartbeat]) -> Result<(), sqlx::Error> {
    if heartbeats.is_empty() {
        return Ok(());
    }
    HeartbeatColumns::new(heartbeats)
        .bind(sqlx::query(
            "INSERT INTO agent_heartbeats (agent_id, sent_at, version, buffer_depth, buffer_bytes,
            oldest_buffered_age_seconds)
         SELECT * FROM UNNEST($1::text[], $2::timestamptz[], $3::text[], $4::int8[],
            $5::int8[], $6::float8[])
         ON CONFLICT (agent_id, sent_at) DO NOTHING",
        ))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn upsert_agents(tx: &mut Tx, latest: &[&Heartbeat]) -> Result<(), sqlx::Error> {
    if latest.is_empty() {
        return Ok(());
    }
    HeartbeatColumns::new(latest)
        .bind(sqlx::query(
            "INSERT INTO agents (agent_id, last_seen_at, version, buffer_depth, buffer_bytes,
            oldest_buffered_age_seconds)
         SELECT * FROM UNNEST($1::text[], $2::timestamptz[], $3::text[], $4::int8[],
            $5::int8[], $6::float8[])
         ON CONFLICT (agent_id) DO UPDATE SET last_seen_at = EXCLUDED.last_seen_at,
            version = EXCLUDED.version, buffer_depth = EXCLUDED.buffer_depth,
            buffer_bytes = EXCLUDED.buffer_bytes,
            oldest_buffered_age_seconds = EXCLUDED.oldest_buffered_age_seconds,
            updated_at = now()
         WHERE agents.last_seen_at < EXCLUDED.last_seen_at",
        ))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn insert_dead_letters(tx: &mut Tx, dead: &[&DeadLetter]) -> Result<(), sqlx::Error> {
    if dead.is_empty() {
        return Ok(());
    }
    let topics: Vec<&str> = dead.iter().map(|d| d.source_topic.as_str()).collect();
    let partitions: Vec<i32> = dead.iter().map(|d| d.source_partition).collect();
    let offsets: Vec<i64> = dead.iter().map(|d| d.source_offset).collect();
    let codes: Vec<&str> = dead.iter().map(|d| d.error_code).collect();
    let errors: Vec<&str> = dead.iter().map(|d| d.error.as_str()).collect();
    let keys: Vec<Option<&[u8]>> = dead.iter().map(|d| d.key.as_deref()).collect();
    let payloads: Vec<Option<&[u8]>> = dead.iter().map(|d| d.payload.as_deref()).collect();
    sqlx::query(
        "INSERT INTO dead_letters (source_topic, source_partition, source_offset, error_code,
            error, record_key, payload)
         SELECT * FROM UNNEST($1::text[], $2::int4[], $3::int8[], $4::text[], $5::text[],
            $6::bytea[], $7::bytea[])
         ON CONFLICT (source_topic, source_partition, source_offset) DO NOTHING",
    )
    .bind(topics)
    .bind(partitions)
    .bind(offsets)
    .bind(codes)
    .bind(errors)
    .bind(keys)
    .bind(payloads)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
