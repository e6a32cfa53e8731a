//! A batch's request body: the envelopes of stored readings as NDJSON, gzip-compressed.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};

use emberline_core::AgentId;
use emberline_core::batch;

use crate::buffer::Stored;

/// Whether the warning about readings received under an earlier agent id was logged (once).
static RENAMED_TOLD: AtomicBool = AtomicBool::new(false);

/// A batch read from the buffer, with its request body (or why it could not be made).
#[derive(Debug)]
pub(super) struct Outgoing {
    pub(super) readings: Vec<Stored>,
    pub(super) body: Result<Vec<u8>, String>,
}

impl Outgoing {
    pub(super) fn last_seq(&self) -> u64 {
        self.readings.last().map_or(0, |stored| stored.seq)
    }
}

/// The readings that could not be read back, with their records, and why.
pub(super) type Damaged = Option<(Vec<(u64, Vec<u8>)>, String)>;

/// Makes the envelopes `agent` sends of stored readings, in order, until the next one would take
/// the body past `max_bytes` (always at least one), and compresses them. A record no envelope can
/// be made of (a damaged disk) is left out of the batch and returned to be quarantined.
pub(super) fn make_batch(
    stored: Vec<Stored>,
    max_bytes: usize,
    agent: &AgentId,
) -> (Outgoing, Damaged) {
    let (mut envelopes, mut readings, mut damaged) = (Vec::new(), Vec::new(), None);
    let mut size = 0;
    let renamed = stored
        .iter()
        .filter(|s| s.received_by().is_some_and(|by| by != agent.as_str()))
        .count();
    if renamed > 0 && !RENAMED_TOLD.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            readings = renamed,
            "forwarding readings received under an earlier agent id as this agent; their reading ids keep the earlier id"
        );
    }
    for reading in stored {
        match reading.envelope_for(agent) {
            Ok(envelope) => {
                // Each envelope and its newline.
                size += envelope.len() + 1;
                if !readings.is_empty() && size > max_bytes {
                    break;
                }
                envelopes.push(envelope);
                readings.push(reading);
            }
            Err(error) => {
                let (records, _): &mut (Vec<_>, String) =
                    damaged.get_or_insert_with(|| (Vec::new(), error.to_string()));
                records.push((reading.seq, reading.record().to_vec()));
            }
        }
    }
    let ndjson = batch::encode(envelopes.iter().map(Vec::as_slice));
    let body = gzip(&ndjson).map_err(|error| format!("cannot compress batch: {error}"));
    (Outgoing { readings, body }, damaged)
}

fn gzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::fast(),
    );
    encoder.write_all(body)?;
    encoder.finish()
}
