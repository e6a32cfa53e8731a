//! What an agent sends its bridge (design §3): batches of envelopes and heartbeats.
//!
//! A batch is NDJSON — one [`Envelope`] per line, made from the agent's buffer — sent as
//! `POST /v1/batches` with `Content-Type: application/x-ndjson`, usually gzip-compressed
//! (`Content-Encoding: gzip`). The bridge checks every line and produces each one to `raw-data`
//! unchanged, keyed by `source_name`. A heartbeat is one JSON [`Heartbeat`] to `/v1/heartbeats`,
//! relayed to `agent-status` keyed by agent id.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::envelope::{AgentId, Envelope, EnvelopeError};

/// Media type of a batch body.
pub const BATCH_CONTENT_TYPE: &str = "application/x-ndjson";

/// Joins envelope records into a batch body: one record per line.
pub fn encode<'a>(records: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut body = Vec::new();
    for record in records {
        body.extend_from_slice(record);
        body.push(b'\n');
    }
    body
}

/// One line of a batch, checked: the envelope and the exact bytes to produce.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchLine<'a> {
    pub envelope: Envelope,
    pub bytes: &'a [u8],
}

/// Why a batch was refused; `line` counts from 1.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BatchError {
    #[error("batch is empty")]
    Empty,
    #[error("line {line}: {error}")]
    Line { line: usize, error: EnvelopeError },
}

/// Splits and checks a batch body. Blank lines (and a trailing newline) are ignored; any bad
/// line refuses the whole batch, so a batch is produced entirely or not at all.
pub fn decode(body: &[u8]) -> Result<Vec<BatchLine<'_>>, BatchError> {
    let mut lines = Vec::new();
    for (index, bytes) in body.split(|b| *b == b'\n').enumerate() {
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        if bytes.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let envelope = Envelope::from_slice(bytes).map_err(|error| BatchError::Line {
            line: index + 1,
            error,
        })?;
        lines.push(BatchLine { envelope, bytes });
    }
    if lines.is_empty() {
        return Err(BatchError::Empty);
    }
    Ok(lines)
}

/// An agent's periodic report of itself, relayed to `agent-status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub agent_id: AgentId,
    /// The agent's version (`CARGO_PKG_VERSION`).
    pub version: String,
    #[serde(with = "time::serde::rfc3339")]
    pub sent_at: OffsetDateTime,
    /// Readings waiting in the buffer.
    pub buffer_depth: u64,
    pub buffer_bytes: u64,
    /// Age of the oldest waiting reading, by the agent's clock; `None` when the buffer is empty.
    pub oldest_buffered_age_seconds: Option<f64>,
}

impl Heartbeat {
    /// The Kafka key: the agent's id.
    pub fn key(&self) -> &str {
        self.agent_id.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Limits, Protocol, Reading, ReadingId};
    use time::macros::datetime;

    fn envelope(n: u64) -> Envelope {
        let body = format!(
            r#"{{"timestamp":"2025-05-24T18:03:11Z","latitude":1,"longitude":2,"temperature":20,
            "humidity":50,"wind_speed":3,"wind_direction":90,"vegetation_density":0.3,
            "air_quality_index":20,"source_name":"s-{n}"}}"#
        );
        let reading = Reading::parse(
            body.as_bytes(),
            &Limits::default(),
            datetime!(2025-05-24 18:04 UTC),
        )
        .unwrap();
        let agent = AgentId::parse("edge-1").unwrap();
        let id = ReadingId::from_buffer(&agent, n);
        Envelope::new(
            id,
            agent,
            datetime!(2025-05-24 18:03:12 UTC),
            Protocol::Http,
            reading,
        )
    }

    #[test]
    fn batches_round_trip_line_for_line() {
        let records: Vec<Vec<u8>> = (1..=3).map(|n| envelope(n).to_vec()).collect();
        let body = encode(records.iter().map(Vec::as_slice));
        let lines = decode(&body).unwrap();
        assert_eq!(lines.len(), 3);
        for (n, line) in lines.iter().enumerate() {
            assert_eq!(line.bytes, records[n].as_slice());
            assert_eq!(line.envelope, envelope(n as u64 + 1));
        }
    }

    #[test]
    fn one_bad_line_refuses_the_batch_and_names_the_line() {
        let good = envelope(1).to_vec();
        let body = [good.as_slice(), b"\r\n", b"{\"v\":1}\n", good.as_slice()].concat();
        match decode(&body) {
            Err(BatchError::Line { line: 2, error }) => {
                assert_eq!(error.code(), "invalid_envelope")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(decode(b"\n \n"), Err(BatchError::Empty));
    }
}
