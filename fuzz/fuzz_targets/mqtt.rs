//! The agent's MQTT listener on arbitrary bytes from a client: fixed headers and the CONNECT's
//! protocol level, the 3.1.1 and 5 codecs, runs of packets sorted into publishes, replies and
//! protocol errors, each publish checked, and every reply encoded (`mqtt::fuzzing::connection`,
//! the connection without its socket and buffer).
//!
//! The first two bytes choose the limits (a small maximum packet size, how many packets a run
//! takes); the rest is the client's stream. Nothing may panic, and what the server writes must be
//! whole packets that a client's codec reads back.
#![no_main]

use emberline_agent::mqtt::MqttConfig;
use emberline_agent::mqtt::fuzzing::connection;
use libfuzzer_sys::fuzz_target;
use rumqttc::mqttbytes::v4;
use rumqttc::v5::mqttbytes::v5;
use time::macros::datetime;

fuzz_target!(|data: &[u8]| {
    let [size, inflight, stream @ ..] = data else {
        return;
    };
    let config = MqttConfig {
        max_packet_bytes: 16 + usize::from(*size) * 64,
        max_inflight: usize::from(*inflight % 8),
        connect_timeout: std::time::Duration::from_secs(5),
        packet_timeout: std::time::Duration::from_secs(10),
        idle_timeout: None,
    };
    let talk = connection(stream, &config, datetime!(2025-05-24 18:05 UTC));
    let mut written = talk.written.clone();
    while !written.is_empty() {
        let before = written.len();
        let read = match talk.level {
            Some(5) => v5::Packet::read(&mut written, None)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            _ => v4::Packet::read(&mut written, usize::MAX)
                .map(|_| ())
                .map_err(|e| e.to_string()),
        };
        if let Err(error) = read {
            panic!(
                "the server wrote a packet its client cannot read ({error}): {:02x?} of {:02x?}",
                &written[..],
                &talk.written[..]
            );
        }
        assert!(written.len() < before);
    }
});
