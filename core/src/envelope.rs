//! The record on Kafka (design §2, §5): one versioned JSON document per reading.
//!
//! `raw-data` carries an [`Envelope`] without a classification; `anomaly-data` carries the same
//! envelope with the detector's [`Classification`] added. The Kafka key is the reading's
//! `source_name`, so one sensor's readings stay in order on one partition.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::reading::Reading;

/// The envelope version this build writes and reads. A reader meeting another version sends the
/// record to the dead-letter topic rather than guessing.
pub const ENVELOPE_VERSION: u32 = 1;

/// How a reading reached its agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Http,
    Mqtt,
}

/// Fire intensity, ordered `Low < Medium < High`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Intensity {
    Low,
    Medium,
    High,
}

impl Intensity {
    pub const ALL: [Intensity; 3] = [Intensity::Low, Intensity::Medium, Intensity::High];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }
}

impl fmt::Display for Intensity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An agent's identity: 1..=64 characters of `[A-Za-z0-9._-]`, so it is safe in ids, topics,
/// metric labels and file names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AgentId(String);

impl AgentId {
    pub fn parse(id: impl Into<String>) -> Result<Self, String> {
        let id = id.into();
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if id.is_empty() || id.len() > 64 || !id.chars().all(allowed) {
            return Err(format!(
                "agent id {id:?} must be 1 to 64 characters of letters, digits, '.', '_' or '-'"
            ));
        }
        Ok(Self(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AgentId {
    type Error = String;
    fn try_from(id: String) -> Result<Self, Self::Error> {
        Self::parse(id)
    }
}

impl From<AgentId> for String {
    fn from(id: AgentId) -> Self {
        id.0
    }
}

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A reading's identity across the fleet, stable across retries. It travels through Kafka and the
/// detector into PostgreSQL, where it is the unique key that absorbs duplicates.
///
/// - `d:{source_name}:{seq}:{timestamp}` when the device numbers its readings (`timestamp` in
///   Unix nanoseconds): a device retrying — through any agent — produces the same id, while a
///   device whose counter restarted (a reboot, new firmware) does not collide with its own past
///   readings, which would otherwise be dropped as duplicates.
/// - `a:{agent_id}:{buffer_seq}` otherwise: the agent's durable buffer sequence, which a buffer
///   that starts empty begins at a random 19-digit number, so that a new buffer (the old one
///   drained, lost or set aside as damaged) does not repeat the ids of readings sent before.
///
/// The prefixes keep the two forms apart; in the device form the sequence and timestamp are the
/// last two `:`-separated parts, so a `source_name` containing `:` stays unambiguous.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ReadingId(String);

impl ReadingId {
    pub fn from_device(source_name: &str, seq: u64, timestamp: OffsetDateTime) -> Self {
        Self(format!(
            "d:{source_name}:{seq}:{}",
            timestamp.unix_timestamp_nanos()
        ))
    }

    pub fn from_buffer(agent: &AgentId, buffer_seq: u64) -> Self {
        Self(format!("a:{agent}:{buffer_seq}"))
    }

    /// The id for `reading` accepted by `agent` at position `buffer_seq` of its buffer.
    pub fn for_reading(reading: &Reading, agent: &AgentId, buffer_seq: u64) -> Self {
        match reading.seq() {
            Some(seq) => Self::from_device(reading.source_name(), seq, reading.timestamp()),
            None => Self::from_buffer(agent, buffer_seq),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ReadingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the detector concluded about a reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    pub intensity: Intensity,
    /// 0..=1: how sure the rules are of `intensity`.
    pub confidence_score: f64,
    /// Names of every rule that fired, in profile order.
    pub rules_fired: Vec<String>,
    /// The version string of the profile that decided.
    pub rules_version: String,
    #[serde(with = "time::serde::rfc3339")]
    pub detected_at: OffsetDateTime,
}

/// One reading on its way through the pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Always [`ENVELOPE_VERSION`] when written by this build.
    pub v: u32,
    pub reading_id: ReadingId,
    /// The agent that forwarded the reading to the bridge, whose token the bridge checked: the
    /// one that received it, unless that agent was given a new id while the reading was still
    /// buffered (the reading id then keeps the id it was received under).
    pub agent_id: AgentId,
    /// The agent's clock when the reading was committed to its buffer.
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    pub protocol: Protocol,
    pub reading: Reading,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classification: Option<Classification>,
}

/// Why bytes from Kafka are not a usable envelope. Each case is final: retrying cannot help, so
/// the record belongs in the dead-letter topic.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("record is not a JSON object: {0}")]
    NotJson(String),
    #[error("record has no envelope version field \"v\"")]
    MissingVersion,
    #[error(
        "envelope version {found} is not supported (this build reads version {ENVELOPE_VERSION})"
    )]
    UnsupportedVersion { found: u64 },
    #[error("envelope version {ENVELOPE_VERSION} is invalid: {0}")]
    Invalid(String),
}

impl EnvelopeError {
    /// A stable identifier for headers, dead-letter rows and metric labels.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotJson(_) => "not_json",
            Self::MissingVersion => "missing_version",
            Self::UnsupportedVersion { .. } => "unsupported_version",
            Self::Invalid(_) => "invalid_envelope",
        }
    }
}

/// Just enough of a record to learn its version before trusting the rest.
#[derive(Deserialize)]
struct VersionProbe {
    v: Option<serde_json::Value>,
}

impl Envelope {
    /// A new, unclassified envelope at the current version.
    pub fn new(
        reading_id: ReadingId,
        agent_id: AgentId,
        received_at: OffsetDateTime,
        protocol: Protocol,
        reading: Reading,
    ) -> Self {
        Self {
            v: ENVELOPE_VERSION,
            reading_id,
            agent_id,
            received_at,
            protocol,
            reading,
            classification: None,
        }
    }

    /// Decodes a record, telling an unknown version apart from a broken record. The common case
    /// costs one parse; only a failure looks again for the version.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        let error = match serde_json::from_slice::<Envelope>(bytes) {
            Ok(envelope) if envelope.v == ENVELOPE_VERSION => return Ok(envelope),
            Ok(envelope) => {
                return Err(EnvelopeError::UnsupportedVersion {
                    found: u64::from(envelope.v),
                });
            }
            Err(error) => error,
        };
        let probe: VersionProbe = serde_json::from_slice(bytes)
            .map_err(|error| EnvelopeError::NotJson(error.to_string()))?;
        match probe.v.as_ref().map(serde_json::Value::as_u64) {
            None => Err(EnvelopeError::MissingVersion),
            Some(Some(found)) if found != u64::from(ENVELOPE_VERSION) => {
                Err(EnvelopeError::UnsupportedVersion { found })
            }
            Some(_) => Err(EnvelopeError::Invalid(error.to_string())),
        }
    }

    /// Encodes the record.
    pub fn to_vec(&self) -> Vec<u8> {
        // Cannot fail: every map key is a string, and serde_json writes any non-finite float
        // as `null` rather than erroring.
        #[allow(clippy::expect_used)]
        serde_json::to_vec(self).expect("an envelope always serializes")
    }

    /// The Kafka key: the sensor's name.
    pub fn key(&self) -> &str {
        self.reading.source_name()
    }
}
