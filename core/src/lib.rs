//! What every Emberline component must agree on, and nothing that does IO.
//!
//! # Layout
//! - [`reading`]: the sensor's payload (design §1). [`Reading::parse`] is the only way to get a
//!   [`Reading`] from a device, and it reports every bad field at once.
//! - [`envelope`]: the one versioned record that travels on Kafka — a reading with its
//!   [`ReadingId`], the agent that took it in, when and how, and, once the detector has seen it,
//!   its [`Classification`].
//! - [`batch`]: what an agent sends its bridge — NDJSON batches of envelopes, heartbeats.
//! - [`tokens`]: the device tokens file, read by the agent and by the simulators.
//! - [`rules`]: the rules engine (design §4). A [`Profile`] is data (TOML); classifying is a plain
//!   synchronous function of (profile, measurements), with no clock and no IO.
//!
//! # Invariants
//! - A [`Reading`] value is always valid: finite numbers, a parsed RFC 3339 timestamp, a
//!   `source_name` of 1..=128 characters without control characters. The plausibility ranges of
//!   [`Limits`] are checked at the edge, where the agent's configuration and clock are known.
//! - Unknown fields of a reading are kept and travel with it; nothing a device sent is dropped.
//! - Classification is deterministic: the same profile and measurements give the same
//!   [`Assessment`], bit for bit.

pub mod batch;
pub mod envelope;
pub mod reading;
pub mod rules;
pub mod tokens;

pub use envelope::{
    AgentId, Classification, ENVELOPE_VERSION, Envelope, EnvelopeError, Intensity, Protocol,
    ReadingId,
};
pub use reading::{
    Bounds, CompactError, FieldError, FieldErrorCode, Limits, MAX_EXTRA_DEPTH, Reading,
    ReadingError, Unchecked,
};
pub use rules::{Assessment, Measurements, Profile, RulesError};
