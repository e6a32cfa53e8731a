//! A reading's compact binary form, for an agent's buffer: what sits on the edge node's disk
//! between the commit that acknowledged the reading and the bridge's `200`.
//!
//! The JSON envelope of a reading is about three times its size (field names, numbers as text),
//! and every stored byte is written twice (the WAL, then the checkpoint): the form stored is the
//! binary one, and the JSON is made when the reading is forwarded. Decoding gives back the same
//! [`Reading`], value for value, so its JSON is byte for byte what it would have been.
//!
//! Layout, integers little-endian:
//!
//! | bytes | what |
//! |---|---|
//! | 8 + 4 + 4 | timestamp: Unix seconds (i64), nanoseconds (u32), UTC offset in seconds (i32) |
//! | 8 × 8 | the eight numbers as f64, in wire order |
//! | 1 | flags: [`HAS_SEQ`], [`HAS_EXTRA`] |
//! | 8 | `seq` (u64), when flagged |
//! | 4 + n | `source_name`: its length in bytes (u32), then its UTF-8 |
//! | rest | the extra fields as one JSON object, when flagged |

use serde_json::{Map, Value};
use time::{OffsetDateTime, UtcOffset};

use super::{Reading, fields};
use crate::rules::Measurements;

const HAS_SEQ: u8 = 1;
const HAS_EXTRA: u8 = 2;

/// Why bytes are not a reading's compact form: a damaged record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("damaged stored reading: {0}")]
pub struct CompactError(&'static str);

impl CompactError {
    /// What is wrong with the record, for a decoder of a record that holds a compact reading.
    pub fn new(what: &'static str) -> Self {
        Self(what)
    }
}

impl Reading {
    /// Appends the reading's compact form to `out`.
    pub fn write_compact(&self, out: &mut Vec<u8>) {
        out.reserve(16 + 64 + 1 + 8 + 4 + self.source_name.len());
        out.extend_from_slice(&self.timestamp.unix_timestamp().to_le_bytes());
        out.extend_from_slice(&self.timestamp.nanosecond().to_le_bytes());
        out.extend_from_slice(&self.timestamp.offset().whole_seconds().to_le_bytes());
        for value in self.measurements.to_array() {
            out.extend_from_slice(&value.to_le_bytes());
        }
        let has_extra = !self.extra.is_empty();
        let flags =
            if self.seq.is_some() { HAS_SEQ } else { 0 } | if has_extra { HAS_EXTRA } else { 0 };
        out.push(flags);
        if let Some(seq) = self.seq {
            out.extend_from_slice(&seq.to_le_bytes());
        }
        let name = self.source_name.as_bytes();
        // A Reading's source_name is far below 4 GiB: a request body is limited to megabytes.
        let len = u32::try_from(name.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(name);
        if has_extra {
            // Cannot fail: string keys, and JSON values hold no non-finite float.
            let _ = serde_json::to_writer(&mut *out, &self.extra);
        }
    }

    /// Decodes [`Reading::write_compact`]'s form, with the checks deserialization makes (finite
    /// numbers, a valid `source_name`), so a damaged record is an error, not a bad reading.
    pub fn from_compact(bytes: &[u8]) -> Result<Self, CompactError> {
        let mut input = Input(bytes);
        let seconds = i64::from_le_bytes(input.array()?);
        let nanos = u32::from_le_bytes(input.array()?);
        let offset = i32::from_le_bytes(input.array()?);
        let timestamp = OffsetDateTime::from_unix_timestamp(seconds)
            .ok()
            .and_then(|t| t.replace_nanosecond(nanos).ok())
            .zip(UtcOffset::from_whole_seconds(offset).ok())
            .and_then(|(t, offset)| t.checked_to_offset(offset))
            .filter(writable_as_rfc3339)
            .ok_or(CompactError("timestamp out of range"))?;
        let mut values = [0.0; 8];
        for value in &mut values {
            *value = f64::from_le_bytes(input.array()?);
        }
        let measurements = Measurements::from_array(values);
        if !measurements.all_finite() {
            return Err(CompactError("a number is not finite"));
        }
        let [flags] = input.array()?;
        if flags & !(HAS_SEQ | HAS_EXTRA) != 0 {
            return Err(CompactError("unknown flags"));
        }
        let seq = if flags & HAS_SEQ != 0 {
            Some(u64::from_le_bytes(input.array()?))
        } else {
            None
        };
        let len = u32::from_le_bytes(input.array()?);
        let len = usize::try_from(len).map_err(|_| CompactError("record cut short"))?;
        let source_name = std::str::from_utf8(input.take(len)?)
            .map_err(|_| CompactError("source_name is not UTF-8"))?
            .to_owned();
        fields::check_source_name(&source_name, usize::MAX)
            .map_err(|_| CompactError("source_name is not valid"))?;
        let extra = if flags & HAS_EXTRA != 0 {
            serde_json::from_slice::<Map<String, Value>>(input.0)
                .map_err(|_| CompactError("extra fields are not a JSON object"))?
        } else if input.0.is_empty() {
            Map::new()
        } else {
            return Err(CompactError("bytes after the reading"));
        };
        Ok(Self {
            timestamp,
            measurements,
            source_name,
            seq,
            extra,
        })
    }
}

/// Whether RFC 3339 can write the time, as every reading's JSON must: years 0 to 9999, offsets
/// in whole minutes under 24 hours (what `time` refuses to format). A reading parsed from RFC 3339
/// always is; a damaged record need not be.
fn writable_as_rfc3339(t: &OffsetDateTime) -> bool {
    (0..10_000).contains(&t.year())
        && t.offset().whole_hours().unsigned_abs() <= 23
        && t.offset().seconds_past_minute() == 0
}

/// The bytes not read yet.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CompactError> {
        if self.0.len() < n {
            return Err(CompactError("record cut short"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CompactError> {
        let mut array = [0; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }
}
