//! The sensor's reading (design §1), exactly the reference system's payload.
//!
//! [`Reading::parse`] checks a device's JSON against [`Limits`] and the agent's clock and reports
//! every bad field at once. Deserializing a [`Reading`] (from an envelope already accepted by an
//! agent) checks only what the type guarantees — finite numbers, a valid timestamp and
//! `source_name` — because plausibility limits are the accepting agent's configuration.

mod error;
mod fields;
mod limits;
mod unchecked;
mod wire;

use serde_json::{Map, Value};

use time::OffsetDateTime;
use unchecked::{Shape, Slots};

pub use error::{FieldError, FieldErrorCode, ReadingError};
pub use limits::{Bounds, Limits, LimitsError};
pub use unchecked::Unchecked;

use crate::rules::Measurements;
use fields::FieldReader;

/// A valid sensor reading. Only [`Reading::parse`], [`Reading::check`], [`Reading::from_json`]
/// and deserialization
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
        let unchecked: Unchecked = serde_json::from_slice(body)
            .map_err(|error| ReadingError::Malformed(error.to_string()))?;
        Self::check(unchecked, limits, now)
    }

    /// Like [`Reading::parse`] for a value already decoded.
    pub fn from_json(
        value: Value,
        limits: &Limits,
        now: OffsetDateTime,
    ) -> Result<Self, ReadingError> {
        let shape = match value {
            Value::Object(object) => Shape::Object(Slots::from_map(object)),
            other => Shape::Other(json_kind(&other)),
        };
        Self::check(Unchecked(shape), limits, now)
    }

    /// Like [`Reading::parse`] for a value already decoded as [`Unchecked`] (an item of a batch).
    pub fn check(
        unchecked: Unchecked,
        limits: &Limits,
        now: OffsetDateTime,
    ) -> Result<Self, ReadingError> {
        let slots = match unchecked.0 {
            Shape::Object(slots) => slots,
            Shape::Other(kind) => return Err(ReadingError::NotAnObject(kind)),
        };
        let mut fields = FieldReader::default();
        let timestamp = fields.timestamp(slots.timestamp, now.checked_add(limits.max_future_skew));
        let [
            latitude,
            longitude,
            temperature,
            humidity,
            wind_speed,
            wind_direction,
            vegetation_density,
            air_quality_index,
        ] = slots.numbers;
        let latitude = fields.number("latitude", latitude, &limits.latitude);
        let longitude = fields.number("longitude", longitude, &limits.longitude);
        let temperature = fields.number("temperature", temperature, &limits.temperature);
        let humidity = fields.number("humidity", humidity, &limits.humidity);
        let wind_speed = fields.number("wind_speed", wind_speed, &limits.wind_speed);
        let wind_direction =
            fields.number("wind_direction", wind_direction, &limits.wind_direction);
        let vegetation_density = fields.number(
            "vegetation_density",
            vegetation_density,
            &limits.vegetation_density,
        );
        let air_quality_index = fields.number(
            "air_quality_index",
            air_quality_index,
            &limits.air_quality_index,
        );
        let source_name = fields.source_name(slots.source_name, limits.source_name_max_chars);
        let seq = fields.seq(slots.seq);
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
                extra: slots.extra,
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
