//! The one shape the map understands: a sensor's latest state as a GeoJSON `Feature`. Built from
//! a row of the hub's `sensors` table (the snapshot) or from a classified envelope on
//! `anomaly-data` (a live update), so the page handles both with the same code.

use emberline_core::{Envelope, Intensity};
use serde::Serialize;
use time::OffsetDateTime;

/// A GeoJSON `FeatureCollection`.
#[derive(Debug, Clone, Serialize)]
pub struct FeatureCollection {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub features: Vec<Feature>,
}

impl FeatureCollection {
    pub fn new(features: Vec<Feature>) -> Self {
        Self {
            kind: "FeatureCollection",
            features,
        }
    }
}

/// A GeoJSON `Feature` with a `Point` geometry.
#[derive(Debug, Clone, Serialize)]
pub struct Feature {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub geometry: Point,
    pub properties: SensorState,
}

#[derive(Debug, Clone, Serialize)]
pub struct Point {
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `[longitude, latitude]`, GeoJSON's order.
    pub coordinates: [f64; 2],
}

/// What the map knows of one sensor.
#[derive(Debug, Clone, Serialize)]
pub struct SensorState {
    pub source_name: String,
    /// The newest reading's id and timestamp (position and values follow it).
    pub reading_id: String,
    pub agent_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub observed_at: OffsetDateTime,
    /// The newest classification; `None` while the sensor's readings await the detector.
    pub intensity: Option<Intensity>,
    pub confidence_score: Option<f64>,
    pub rules_fired: Vec<String>,
    pub rules_version: Option<String>,
    /// The classified reading's timestamp.
    #[serde(with = "time::serde::rfc3339::option")]
    pub classified_at: Option<OffsetDateTime>,
    /// The classified reading's id: with `classified_at`, the order in which classifications
    /// replace each other (the page breaks ties on it, as PostgreSQL does).
    pub classified_reading_id: Option<String>,
    /// The newest reading as the device sent it (values, extra fields).
    pub reading: serde_json::Value,
}

impl Feature {
    pub fn new(longitude: f64, latitude: f64, properties: SensorState) -> Self {
        Self {
            kind: "Feature",
            geometry: Point {
                kind: "Point",
                coordinates: [longitude, latitude],
            },
            properties,
        }
    }

    /// A live update; `None` for an envelope without a classification.
    pub fn from_envelope(envelope: &Envelope) -> Option<Self> {
        let classification = envelope.classification.as_ref()?;
        let reading = &envelope.reading;
        let observed_at = reading.timestamp();
        let state = SensorState {
            source_name: reading.source_name().to_owned(),
            reading_id: envelope.reading_id.to_string(),
            agent_id: envelope.agent_id.to_string(),
            observed_at,
            intensity: Some(classification.intensity),
            confidence_score: Some(classification.confidence_score),
            rules_fired: classification.rules_fired.clone(),
            rules_version: Some(classification.rules_version.clone()),
            classified_at: Some(observed_at),
            classified_reading_id: Some(envelope.reading_id.to_string()),
            reading: serde_json::to_value(reading).unwrap_or(serde_json::Value::Null),
        };
        let position = reading.measurements();
        Some(Self::new(position.longitude, position.latitude, state))
    }
}

/// `"low"`, `"medium"`, `"high"` as stored by the hub.
pub fn parse_intensity(text: &str) -> Option<Intensity> {
    Intensity::ALL.into_iter().find(|i| i.as_str() == text)
}
