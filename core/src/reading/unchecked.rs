//! A device's JSON read straight into the slots of the reference fields, before any check.
//!
//! Decoding a body into a `serde_json::Value` first, then taking the fields out of its map,
//! allocated every key and moved every field through a map twice; this is every reading's
//! first step on the agent's ingest path. Here each reference field's value lands in its own
//! slot as it is decoded, and only unknown fields go into a map (they are kept, design §1).
//! What a value *means* is still judged by `fields`, with the same answers as before: a
//! repeated key keeps its last value, `null` counts as missing.

use std::fmt;

use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use super::wire::{Field, Key};

/// A JSON value read as a reading's fields, not yet checked; [`Reading::check`] turns it into a
/// [`Reading`] or names what is wrong. Decode one with serde (`serde_json::from_slice`), alone
/// or as an item of an array.
///
/// [`Reading::check`]: super::Reading::check
/// [`Reading`]: super::Reading
#[derive(Debug, Clone, PartialEq)]
pub struct Unchecked(pub(super) Shape);

// Boxing the object would cost an allocation for every reading to save space on the rare
// body that is not an object.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Shape {
    Object(Slots),
    /// Valid JSON that is not an object: what it is instead (`"an array"`).
    Other(&'static str),
}

/// Each reference field's value as sent (`None`: absent), and every other field.
#[derive(Debug, Clone, PartialEq, Default)]
pub(super) struct Slots {
    pub timestamp: Option<Value>,
    pub numbers: [Option<Value>; 8],
    pub source_name: Option<Value>,
    pub seq: Option<Value>,
    pub extra: Map<String, Value>,
}

impl Slots {
    fn slot(&mut self, field: Field) -> Option<&mut Option<Value>> {
        match field {
            Field::Timestamp => Some(&mut self.timestamp),
            Field::Number(index) => self.numbers.get_mut(index),
            Field::SourceName => Some(&mut self.source_name),
            Field::Seq => Some(&mut self.seq),
        }
    }

    /// The slots of an object already decoded.
    pub(super) fn from_map(map: Map<String, Value>) -> Self {
        let mut slots = Self::default();
        for (name, value) in map {
            match Field::of(&name) {
                Some(field) => slots.put(field, value),
                None => {
                    slots.extra.insert(name, value);
                }
            }
        }
        slots
    }

    fn put(&mut self, field: Field, value: Value) {
        if let Some(slot) = self.slot(field) {
            *slot = Some(value);
        }
    }
}

impl<'de> Deserialize<'de> for Unchecked {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UncheckedVisitor).map(Self)
    }
}

struct UncheckedVisitor;

impl<'de> Visitor<'de> for UncheckedVisitor {
    type Value = Shape;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
        let mut slots = Slots::default();
        while let Some(key) = map.next_key::<Key>()? {
            let value = map.next_value::<Value>()?;
            match key {
                Key::Known(field) => slots.put(field, value),
                Key::Extra(name) => {
                    slots.extra.insert(name, value);
                }
            }
        }
        Ok(Shape::Object(slots))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Shape::Other("an array"))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Shape, E> {
        Ok(Shape::Other("null"))
    }

    fn visit_none<E: de::Error>(self) -> Result<Shape, E> {
        Ok(Shape::Other("null"))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Shape, E> {
        Ok(Shape::Other("a boolean"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Shape, E> {
        Ok(Shape::Other("a number"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Shape, E> {
        Ok(Shape::Other("a number"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Shape, E> {
        Ok(Shape::Other("a number"))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Shape, E> {
        Ok(Shape::Other("a string"))
    }
}
