//! The bridge's `POST /v1/batches` body after its headers: `body::decompress` (gzip or identity,
//! bounded, reserved against the in-flight limit) then `body::records`. The first byte chooses
//! how the rest is used:
//! - `0`: an identity body;
//! - `1`: the rest is sent as a gzip body as it is (mostly garbage: the error paths);
//! - `2`: the rest is gzip-compressed here first, so the decompressed batch reaches `records`;
//! - bit 2 set: records must all come from agent `edge-1` (a token configured).
//!
//! Either side may refuse, never panic; what is accepted is bounded, and its records are the
//! exact lines of the body.
#![no_main]

use std::io::Write as _;

use bytes::Bytes;
use emberline_bridge::body::{self, Encoding};
use emberline_bridge::limit::InFlight;
use emberline_core::AgentId;
use flate2::Compression;
use flate2::write::GzEncoder;
use libfuzzer_sys::fuzz_target;

/// Small limits, so that the too-large and overloaded answers are reached.
const MAX_BATCH: u64 = 256 * 1024;
const IN_FLIGHT: usize = 2 * 1024 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (encoding, sent) = match mode & 0b11 {
        0 => (Encoding::Identity, Bytes::copy_from_slice(rest)),
        1 => (Encoding::Gzip, Bytes::copy_from_slice(rest)),
        _ => {
            let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
            encoder.write_all(rest).expect("gzip into memory");
            (
                Encoding::Gzip,
                Bytes::from(encoder.finish().expect("gzip into memory")),
            )
        }
    };
    let in_flight = InFlight::new(IN_FLIGHT);
    let Ok(mut reservation) = in_flight.reserve(sent.len()) else {
        return;
    };
    let Ok(plain) = body::decompress(sent, encoding, MAX_BATCH, &mut reservation, 1) else {
        assert!(mode & 0b11 != 0, "an identity body is taken as it is");
        return;
    };
    assert!(encoding == Encoding::Identity || plain.len() as u64 <= MAX_BATCH);
    if mode & 0b11 != 1 {
        assert_eq!(&plain[..], rest, "decompression gives back what was sent");
    }
    let agent = AgentId::parse("edge-1").expect("a valid agent id");
    let agent = (mode & 0b100 != 0).then_some(&agent);
    // A small record limit, so that inputs reach it.
    let max_record = 512;
    if let Ok(records) = body::records(&plain, agent, max_record) {
        assert!(!records.is_empty());
        let range = plain.as_ptr_range();
        for record in &records {
            assert!(record.payload.len() + record.key.len() <= max_record);
            assert!(range.contains(&record.payload.as_ptr()));
            assert!(!record.payload.contains(&b'\n'));
        }
    }
    drop(reservation);
    assert_eq!(in_flight.in_use(), 0, "every reserved byte is released");
});
