//! `Reading::parse` on arbitrary bytes: it must answer (never panic), and a reading it accepts
//! must survive the trip every hop makes — serialized into an envelope and deserialized again,
//! unchanged.
#![no_main]

use emberline_core::{Limits, Reading};
use libfuzzer_sys::fuzz_target;
use time::macros::datetime;

fuzz_target!(|data: &[u8]| {
    let now = datetime!(2025-05-24 18:05 UTC);
    let Ok(reading) = Reading::parse(data, &Limits::default(), now) else {
        return;
    };
    let wire = serde_json::to_vec(&reading).expect("a valid reading serializes");
    let again: Reading = serde_json::from_slice(&wire).expect("a serialized reading deserializes");
    assert_eq!(
        reading,
        again,
        "round trip through {}",
        String::from_utf8_lossy(&wire)
    );
    // Checking it again at the same clock accepts it again.
    let reparsed = Reading::parse(&wire, &Limits::default(), now).expect("accepted twice");
    assert_eq!(reading, reparsed);
});
