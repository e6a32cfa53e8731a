//! What the buffer stores for each reading, and how it becomes the envelope the bridge receives.
//!
//! A reading is stored in a compact binary record, not as its JSON envelope: the envelope is
//! about three times larger, and every byte stored is written twice (the WAL, then the
//! checkpoint), so at high rates the buffer thread spent its time moving envelope text. The
//! envelope is made when the reading is forwarded ([`Stored::envelope`]), off the buffer thread.
//!
//! A record is one of:
//! - [`COMPACT`], the protocol (0 HTTP, 1 MQTT), the agent id's length (one byte) and the agent
//!   id, then the reading's compact form ([`Reading::write_compact`]). The `reading_id` column
//!   holds the device's id when the device numbers its readings and is empty otherwise: the id
//!   is then `a:{agent}:{seq}`, made from the record's agent id and the row's `seq`. The time
//!   received is the row's `received_at_ns`.
//! - a JSON envelope (first byte `{`), as agents before the compact form stored it: sent as it
//!   is, so a buffer filled by an older agent drains unchanged after an upgrade.

use emberline_core::{AgentId, CompactError, Envelope, Protocol, Reading, ReadingId};
use time::OffsetDateTime;

/// First byte of a compact record (a JSON envelope starts with `{`).
const COMPACT: u8 = 1;

/// A reading that passed validation, on its way into the buffer.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub reading: Reading,
    pub protocol: Protocol,
    pub received_at: OffsetDateTime,
}

/// A reading encoded ahead of the buffer thread (on the ingest task, in parallel), so that
/// thread only numbers and writes it.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The id when the device numbers its readings; otherwise it comes from the sequence.
    pub(super) device_id: Option<ReadingId>,
    pub(super) record: Vec<u8>,
    pub(super) received_at_ns: i64,
}

impl Prepared {
    pub fn new(item: &Incoming, agent: &AgentId) -> Self {
        let agent = agent.as_str().as_bytes();
        // Room for a typical reading at once, not a series of reallocations.
        let mut record = Vec::with_capacity(128);
        record.push(COMPACT);
        record.push(match item.protocol {
            Protocol::Http => 0,
            Protocol::Mqtt => 1,
        });
        // An agent id is 1 to 64 characters (`AgentId`).
        record.push(u8::try_from(agent.len()).unwrap_or(u8::MAX));
        record.extend_from_slice(agent);
        item.reading.write_compact(&mut record);
        let device_id = item.reading.seq().map(|seq| {
            ReadingId::from_device(item.reading.source_name(), seq, item.reading.timestamp())
        });
        Self {
            device_id,
            record,
            received_at_ns: i64::try_from(item.received_at.unix_timestamp_nanos())
                .unwrap_or(i64::MAX),
        }
    }
}

/// A stored reading, as the forwarder reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub seq: u64,
    received_at_ns: i64,
    record: Vec<u8>,
}

impl Stored {
    pub(super) fn new(seq: u64, received_at_ns: i64, record: Vec<u8>) -> Self {
        Self {
            seq,
            received_at_ns,
            record,
        }
    }

    /// The envelope's JSON as it was made at ingest, with the agent that received the reading
    /// (`buffer export` shows this). A record that is neither a compact one that decodes nor an
    /// older agent's envelope that is JSON is an error, so a damaged record is set aside alone
    /// instead of getting its whole batch refused.
    pub fn envelope(&self) -> Result<Vec<u8>, CompactError> {
        self.make_envelope(None)
    }

    /// The envelope's JSON as `forwarder` sends it to the bridge, which takes from an agent's
    /// token only envelopes naming that agent. A reading received before the agent was given a
    /// new `--agent-id` keeps its reading id, made from the id it was received under (so a
    /// redelivery still dies as a duplicate), and names `forwarder` as its agent: without that,
    /// the bridge refused it (403) and the readings behind it stayed buffered for ever.
    pub fn envelope_for(&self, forwarder: &AgentId) -> Result<Vec<u8>, CompactError> {
        self.make_envelope(Some(forwarder))
    }

    fn make_envelope(&self, forwarder: Option<&AgentId>) -> Result<Vec<u8>, CompactError> {
        let rest = match self.record.split_first() {
            Some((&COMPACT, rest)) => rest,
            Some((b'{', _)) => return legacy_envelope(&self.record, forwarder),
            _ => return Err(CompactError::new("unknown record format")),
        };
        let (protocol, rest) = match rest.split_first() {
            Some((0, rest)) => (Protocol::Http, rest),
            Some((1, rest)) => (Protocol::Mqtt, rest),
            _ => return Err(CompactError::new("unknown protocol")),
        };
        let (&len, rest) = rest
            .split_first()
            .ok_or(CompactError::new("record cut short"))?;
        let (agent, reading) = rest
            .split_at_checked(usize::from(len))
            .ok_or(CompactError::new("record cut short"))?;
        let agent = std::str::from_utf8(agent)
            .ok()
            .and_then(|agent| AgentId::parse(agent).ok())
            .ok_or(CompactError::new("agent id is not valid"))?;
        let reading = Reading::from_compact(reading)?;
        // The rule that made the id at ingest: the device's numbering, or the buffer's.
        let reading_id = ReadingId::for_reading(&reading, &agent, self.seq);
        let received_at =
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.received_at_ns))
                .map_err(|_| CompactError::new("time received out of range"))?;
        let agent = forwarder.cloned().unwrap_or(agent);
        let envelope = Envelope::new(reading_id, agent, received_at, protocol, reading);
        serde_json::to_vec(&envelope).map_err(|_| CompactError::new("reading cannot be written"))
    }

    /// The id of the agent that received the reading, for a compact record.
    pub fn received_by(&self) -> Option<&str> {
        let (&COMPACT, rest) = self.record.split_first()? else {
            return None;
        };
        let (&len, rest) = rest.get(1..)?.split_first()?;
        std::str::from_utf8(rest.get(..usize::from(len))?).ok()
    }

    /// The bytes as stored: kept in quarantine when no envelope can be made of them.
    pub fn record(&self) -> &[u8] {
        &self.record
    }
}

/// An older agent's stored envelope, checked as JSON only: decoding the whole envelope here
/// would cost the agent's binary about 40 KB for rows only an older agent wrote; the bridge
/// checks the rest. Its `agent_id` is replaced only when `forwarder` is another agent.
fn legacy_envelope(record: &[u8], forwarder: Option<&AgentId>) -> Result<Vec<u8>, CompactError> {
    let not_json = || CompactError::new("stored envelope is not JSON");
    let Some(forwarder) = forwarder else {
        return match serde_json::from_slice::<serde::de::IgnoredAny>(record) {
            Ok(_) => Ok(record.to_vec()),
            Err(_) => Err(not_json()),
        };
    };
    // Every other value byte for byte (extra fields with numbers past 64 bits included).
    type Raw = Box<serde_json::value::RawValue>;
    let mut envelope: std::collections::BTreeMap<String, Raw> =
        serde_json::from_slice(record).map_err(|_| not_json())?;
    let named = serde_json::value::to_raw_value(forwarder.as_str()).map_err(|_| not_json())?;
    match envelope.get_mut("agent_id") {
        Some(agent) if agent.get() != named.get() => {
            *agent = named;
            serde_json::to_vec(&envelope).map_err(|_| not_json())
        }
        _ => Ok(record.to_vec()),
    }
}
