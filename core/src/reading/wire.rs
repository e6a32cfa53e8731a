//! The flat JSON form a reading has on the wire, as the device sent it: the reference fields,
//! `seq` when the device numbers its readings, then every extra field it sent.
//!
//! Written by hand rather than derived with `#[serde(flatten)]`: flatten buffers every field of
//! every reading in serde's intermediate `Content` before deserializing it again, and the derived
//! `into` conversion cloned each reading to serialize it. Every hop decodes and encodes readings
//! (agent, bridge, detector, writer, dashboard), so this is on all their hot paths.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::{Reading, fields};
use crate::rules::Measurements;

/// The reference fields in wire order; the numbers are `Measurements` in the same order.
pub(super) const NUMBERS: [&str; 8] = [
    "latitude",
    "longitude",
    "temperature",
    "humidity",
    "wind_speed",
    "wind_direction",
    "vegetation_density",
    "air_quality_index",
];

impl Serialize for Reading {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let len = 10 + usize::from(self.seq.is_some()) + self.extra.len();
        let mut map = serializer.serialize_map(Some(len))?;
        map.serialize_entry("timestamp", &Rfc3339(self.timestamp))?;
        for (name, value) in NUMBERS.iter().zip(self.measurements.to_array()) {
            map.serialize_entry(name, &value)?;
        }
        map.serialize_entry("source_name", &self.source_name)?;
        if let Some(seq) = self.seq {
            map.serialize_entry("seq", &seq)?;
        }
        for (name, value) in &self.extra {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Reading {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ReadingVisitor)
    }
}

/// A timestamp written and read as RFC 3339.
struct Rfc3339(OffsetDateTime);

impl Serialize for Rfc3339 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        time::serde::rfc3339::serialize(&self.0, serializer)
    }
}

impl<'de> Deserialize<'de> for Rfc3339 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        time::serde::rfc3339::deserialize(deserializer).map(Self)
    }
}

/// A reference field of the reading object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    Timestamp,
    /// Index into [`NUMBERS`] (and the order of `Measurements`).
    Number(usize),
    SourceName,
    Seq,
}

impl Field {
    pub(super) fn of(name: &str) -> Option<Self> {
        Self::of_bytes(name.as_bytes())
    }

    /// One `match` on the bytes (the names are ASCII): every key of every reading comes here.
    fn of_bytes(name: &[u8]) -> Option<Self> {
        Some(match name {
            b"timestamp" => Self::Timestamp,
            b"latitude" => Self::Number(0),
            b"longitude" => Self::Number(1),
            b"temperature" => Self::Number(2),
            b"humidity" => Self::Number(3),
            b"wind_speed" => Self::Number(4),
            b"wind_direction" => Self::Number(5),
            b"vegetation_density" => Self::Number(6),
            b"air_quality_index" => Self::Number(7),
            b"source_name" => Self::SourceName,
            b"seq" => Self::Seq,
            _ => return None,
        })
    }
}

/// A key of the reading object: a reference field (no allocation) or an extra one.
pub(super) enum Key {
    Known(Field),
    Extra(String),
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // As bytes: serde_json then hands over a key without checking it is UTF-8, which the
        // reference names (ASCII) do not need; an extra field's name is checked when it is kept.
        deserializer.deserialize_bytes(KeyVisitor)
    }
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Key, E> {
        Ok(match Field::of(name) {
            Some(field) => Key::Known(field),
            None => Key::Extra(name.to_owned()),
        })
    }

    fn visit_bytes<E: de::Error>(self, name: &[u8]) -> Result<Key, E> {
        if let Some(field) = Field::of_bytes(name) {
            return Ok(Key::Known(field));
        }
        match std::str::from_utf8(name) {
            Ok(name) => Ok(Key::Extra(name.to_owned())),
            Err(_) => Err(E::invalid_value(de::Unexpected::Bytes(name), &self)),
        }
    }
}

/// Refuses a reference field seen before.
fn once<E: de::Error>(seen: bool, field: &'static str) -> Result<(), E> {
    if seen {
        Err(E::duplicate_field(field))
    } else {
        Ok(())
    }
}

struct ReadingVisitor;

impl<'de> Visitor<'de> for ReadingVisitor {
    type Value = Reading;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a reading object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Reading, A::Error> {
        let mut timestamp = None;
        let mut numbers = [None; 8];
        let (mut source_name, mut seq, mut extra) = (None, None, Map::new());
        // A reference field given twice is refused (as serde's derive does): a record must not
        // be able to pass one value through the checks and mean another.
        let mut seq_seen = false;
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Known(Field::Timestamp) => {
                    once(timestamp.is_some(), "timestamp")?;
                    timestamp = Some(map.next_value::<Rfc3339>()?.0);
                }
                Key::Known(Field::Number(index)) => {
                    if let (Some(slot), Some(name)) = (numbers.get_mut(index), NUMBERS.get(index)) {
                        once(slot.is_some(), name)?;
                        *slot = Some(map.next_value::<f64>()?);
                    }
                }
                Key::Known(Field::SourceName) => {
                    once(source_name.is_some(), "source_name")?;
                    source_name = Some(map.next_value::<String>()?);
                }
                Key::Known(Field::Seq) => {
                    once(seq_seen, "seq")?;
                    seq_seen = true;
                    seq = map.next_value::<Option<u64>>()?;
                }
                Key::Extra(name) => {
                    extra.insert(name, map.next_value::<Value>()?);
                }
            }
        }
        let timestamp = timestamp.ok_or_else(|| de::Error::missing_field("timestamp"))?;
        let mut values = [0.0; 8];
        for ((value, number), name) in values.iter_mut().zip(numbers).zip(NUMBERS) {
            *value = number.ok_or_else(|| de::Error::missing_field(name))?;
        }
        let source_name = source_name.ok_or_else(|| de::Error::missing_field("source_name"))?;
        let measurements = Measurements::from_array(values);
        if !measurements.all_finite() {
            return Err(de::Error::custom("reading has a number that is not finite"));
        }
        fields::check_source_name(&source_name, usize::MAX)
            .map_err(|error| de::Error::custom(format!("source_name: {}", error.message)))?;
        Ok(Reading {
            timestamp,
            measurements,
            source_name,
            seq,
            extra,
        })
    }
}
