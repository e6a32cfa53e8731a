//! What the buffer stores: a reading that passed validation, serialized into its envelope
//! ahead of the buffer thread.

use emberline_core::{AgentId, Protocol, Reading, ReadingId};
use time::OffsetDateTime;

/// A reading that passed validation, on its way into the buffer.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub reading: Reading,
    pub protocol: Protocol,
    pub received_at: OffsetDateTime,
}

/// A reading serialized ahead of the buffer thread (on the ingest task, in parallel): the
/// envelope's JSON without its `reading_id`, which needs the buffer sequence and is spliced in
/// when the reading is stored.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The id when the device numbers its readings; otherwise it comes from the sequence.
    pub(super) device_id: Option<ReadingId>,
    /// `{"v":1,"agent_id":…,"reading":{…}}` — the envelope object without its first field.
    tail: Vec<u8>,
    pub(super) received_at_ns: i64,
}

#[derive(serde::Serialize)]
struct EnvelopeTail<'a> {
    v: u32,
    agent_id: &'a AgentId,
    #[serde(with = "time::serde::rfc3339")]
    received_at: OffsetDateTime,
    protocol: Protocol,
    reading: &'a Reading,
}

impl Prepared {
    pub fn new(item: &Incoming, agent: &AgentId) -> Self {
        let tail = EnvelopeTail {
            v: emberline_core::ENVELOPE_VERSION,
            agent_id: agent,
            received_at: item.received_at,
            protocol: item.protocol,
            reading: &item.reading,
        };
        // Room for a typical reading at once, not a series of reallocations.
        let mut json = Vec::with_capacity(512);
        // Cannot fail: string keys, and no non-finite float in a Reading.
        let _ = serde_json::to_writer(&mut json, &tail);
        let device_id = item.reading.seq().map(|seq| {
            ReadingId::from_device(item.reading.source_name(), seq, item.reading.timestamp())
        });
        Self {
            device_id,
            tail: json,
            received_at_ns: i64::try_from(item.received_at.unix_timestamp_nanos())
                .unwrap_or(i64::MAX),
        }
    }

    /// The full envelope once the id is known.
    pub(super) fn envelope(&self, id: &ReadingId) -> Vec<u8> {
        let mut envelope = Vec::with_capacity(self.tail.len() + id.as_str().len() + 24);
        envelope.extend_from_slice(b"{\"reading_id\":");
        // Cannot fail: writing a string into a Vec.
        let _ = serde_json::to_writer(&mut envelope, id.as_str());
        envelope.push(b',');
        envelope.extend_from_slice(self.tail.get(1..).unwrap_or_default());
        envelope
    }
}
