//! The batch decoder (`batch::decode`, NDJSON of envelopes) and heartbeats on arbitrary bytes:
//! they must answer (never panic); every line accepted is a subslice of the body and its envelope
//! survives re-encoding; an accepted heartbeat round-trips.
#![no_main]

use emberline_core::Envelope;
use emberline_core::batch::{self, Heartbeat};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(lines) = batch::decode(data) {
        assert!(!lines.is_empty());
        let range = data.as_ptr_range();
        for line in lines {
            assert!(range.contains(&line.bytes.as_ptr()) || line.bytes.is_empty());
            assert!(!line.bytes.contains(&b'\n'));
            let again = Envelope::from_slice(&line.envelope.to_vec()).expect("re-encoded envelope");
            assert_eq!(line.envelope, again);
        }
    }
    if let Ok(heartbeat) = serde_json::from_slice::<Heartbeat>(data) {
        let wire = serde_json::to_vec(&heartbeat).expect("a heartbeat serializes");
        let again: Heartbeat = serde_json::from_slice(&wire).expect("a heartbeat deserializes");
        assert_eq!(heartbeat.agent_id, again.agent_id);
        assert_eq!(heartbeat.sent_at, again.sent_at);
        assert_eq!(heartbeat.buffer_depth, again.buffer_depth);
    }
});
