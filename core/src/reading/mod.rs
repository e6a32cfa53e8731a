//! The sensor's reading (design §1), exactly the reference system's payload.
//!
//! [`Reading::parse`] checks a device's JSON against [`Limits`] and the agent's clock and reports
//! every bad field at once. Deserializing a [`Reading`] (from an envelope already accepted by an
//! agent) checks only what the type guarantees — finite numbers, a valid timestamp and
//! `source_name` — because plausibility limits are the accepting agent's configuration.

mod error;
mod fields;
mod limits;
mod wire;

use serde_json::{Map, Value};
use time::OffsetDateTime;

pub use error::{FieldError, FieldErrorCode, ReadingError};
pub use limits::{Bounds, Limits, LimitsError};

use crate::rules::Measurements;
use fields::FieldReader;

/// A valid sensor reading. Only [`Reading::parse`], [`Reading::from_json`] and deserialization
/// make one, so a `Reading` never holds an invalid value.
/// On the wire it is the flat JSON object the device sent (see `wire`).
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    timestamp: OffsetDateTime,
    measurements: Measurements,
    source_name: String,
    seq: Option<u64>,
    extra: Map<String, Value>,
}

impl Reading {
    /// Parses a device's JSON body, checking every field against `limits`; `now` is the agent's
    /// clock, against which timestamps from the future are refused.
    pub fn parse(body: &[u8], limits: &Limits, now: OffsetDateTime) -> Result<Self, ReadingError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|error| ReadingError::Malformed(error.to_string()))?;
        Self::from_json(value, limits, now)
    }

    /// Like [`Reading::parse`] for a value already decoded (an item of a batch).
    pub fn from_json(
        value: Value,
        limits: &Limits,
        now: OffsetDateTime,
    ) -> Result<Self, ReadingError> {
        let mut object = match value {
            Value::Object(object) => object,
            other => return Err(ReadingError::NotAnObject(json_kind(&other))),
        };
        let mut fields = FieldReader::new(&mut object);
        let timestamp = fields.timestamp(now.checked_add(limits.max_future_skew));
        let latitude = fields.number("latitude", &limits.latitude);
        let longitude = fields.number("longitude", &limits.longitude);
        let temperature = fields.number("temperature", &limits.temperature);
        let humidity = fields.number("humidity", &limits.humidity);
        let wind_speed = fields.number("wind_speed", &limits.wind_speed);
        let wind_direction = fields.number("wind_direction", &limits.wind_direction);
        let vegetation_density = fields.number("vegetation_density", &limits.vegetation_density);
        let air_quality_index = fields.number("air_quality_index", &limits.air_quality_index);
        let source_name = fields.source_name(limits.source_name_max_chars);
        let seq = fields.seq();
        let errors = fields.into_errors();

        match (
            timestamp,
            [
                latitude,
                longitude,
                temperature,
                humidity,
                wind_speed,
                wind_direction,
                vegetation_density,
                air_quality_index,
            ],
            source_name,
            seq,
        ) {
            (
                Some(timestamp),
                [
                    Some(lat),
                    Some(lon),
                    Some(t),
                    Some(h),
                    Some(ws),
                    Some(wd),
                    Some(v),
                    Some(aqi),
                ],
                Some(source_name),
                Some(seq),
            ) if errors.is_empty() => Ok(Self {
                timestamp,
                measurements: Measurements {
                    latitude: lat,
                    longitude: lon,
                    temperature: t,
                    humidity: h,
                    wind_speed: ws,
                    wind_direction: wd,
                    vegetation_density: v,
                    air_quality_index: aqi,
                },
                source_name,
                seq,
                extra: object,
            }),
            _ => Err(ReadingError::Invalid(errors)),
        }
    }

    /// When the sensor says it measured, with the offset it gave.
    pub fn timestamp(&self) -> OffsetDateTime {
        self.timestamp
    }

    /// The numeric values, as the rules engine sees them.
    pub fn measurements(&self) -> &Measurements {
        &self.measurements
    }

    /// The sensor's identity; also the Kafka key, so one sensor stays on one partition.
    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    /// The device's own counter, when it sends one; retries carry the same value.
    pub fn seq(&self) -> Option<u64> {
        self.seq
    }

    /// Fields the device sent that Emberline does not interpret, kept as sent.
    pub fn extra(&self) -> &Map<String, Value> {
        &self.extra
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests;
