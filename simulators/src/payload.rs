//! One simulated sensor's readings (design §1), built without IO.
//!
//! The values are deterministic from (device index, seq) and stay quiet under both shipped rule
//! profiles (temperature ≤ 38 °C, humidity ≥ 25 %, wind ≤ 20 km/h, vegetation ≤ 0.7, AQI ≤ 150),
//! so a load run measures ingest, not alerting. The JSON is written into one reusable buffer.

use std::io::Write as _;

use bytes::Bytes;
use time::OffsetDateTime;

/// A simulated device: its name, its topic and its own counter.
#[derive(Debug)]
pub struct Sensor {
    index: u32,
    source_name: String,
    topic: String,
    latitude: f64,
    longitude: f64,
    /// The next `seq` to send; starts from a per-run base so a rerun is not taken for duplicates.
    seq: u64,
    buf: Vec<u8>,
}

impl Sensor {
    /// `prefix` must be a valid topic level without quotes (checked by the configuration).
    pub fn new(prefix: &str, index: u32, seq_start: u64) -> Self {
        let source_name = format!("{prefix}-{index}");
        let topic = format!("sensors/{source_name}/readings");
        Self {
            index,
            latitude: 34.0 + f64::from(index % 100) * 0.005,
            longitude: -118.6 + f64::from(index / 100 % 100) * 0.005,
            source_name,
            topic,
            seq: seq_start,
            buf: Vec::with_capacity(320),
        }
    }

    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    /// `sensors/{source_name}/readings`.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The next reading's JSON, stamped `now` (UTC, milliseconds).
    pub fn next_payload(&mut self, now: OffsetDateTime) -> Bytes {
        let seq = self.seq;
        self.seq += 1;
        let h = mix(u64::from(self.index) << 40 ^ seq);
        let unit = |shift: u32| ((h >> shift) & 0xffff) as f64 / 65_535.0;
        let now = now.to_offset(time::UtcOffset::UTC);
        self.buf.clear();
        // Writing into a Vec<u8> cannot fail.
        let _ = write!(
            self.buf,
            r#"{{"timestamp":"{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z","latitude":{:.5},"longitude":{:.5},"temperature":{:.2},"humidity":{:.1},"wind_speed":{:.1},"wind_direction":{},"vegetation_density":{:.3},"air_quality_index":{},"source_name":"{}","seq":{}}}"#,
            now.year(),
            u8::from(now.month()),
            now.day(),
            now.hour(),
            now.minute(),
            now.second(),
            now.millisecond(),
            self.latitude,
            self.longitude,
            15.0 + unit(0) * 23.0,
            25.0 + unit(16) * 55.0,
            unit(32) * 20.0,
            (h >> 48) % 360,
            0.1 + unit(8) * 0.6,
            10 + (h >> 24) % 141,
            self.source_name,
            seq,
        );
        Bytes::copy_from_slice(&self.buf)
    }
}

/// splitmix64: a cheap, well-spread hash of the device and its counter.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use emberline_core::{Limits, Reading};

    use super::*;

    #[test]
    fn payloads_are_readings_the_agent_accepts() {
        let now = OffsetDateTime::now_utc();
        let limits = Limits::default();
        for index in [0, 7, 999, 123_456] {
            let mut sensor = Sensor::new("sim", index, 1_000);
            assert_eq!(sensor.topic(), format!("sensors/sim-{index}/readings"));
            for n in 0..500 {
                let payload = sensor.next_payload(now);
                let reading = Reading::parse(&payload, &limits, now)
                    .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&payload)));
                assert_eq!(reading.source_name(), sensor.source_name());
                assert_eq!(reading.seq(), Some(1_000 + n));
            }
        }
    }

    #[test]
    fn payloads_are_deterministic_and_stay_quiet() {
        let now = time::macros::datetime!(2025-05-24 18:03:11.5 +02:00);
        let mut a = Sensor::new("sim", 3, 0);
        let mut b = Sensor::new("sim", 3, 0);
        for _ in 0..200 {
            let payload = a.next_payload(now);
            assert_eq!(payload, b.next_payload(now));
            let value: serde_json::Value = serde_json::from_slice(&payload).unwrap();
            assert_eq!(value["timestamp"], "2025-05-24T16:03:11.500Z");
            assert!(value["temperature"].as_f64().unwrap() <= 38.0);
            assert!(value["humidity"].as_f64().unwrap() >= 25.0);
            assert!(value["wind_speed"].as_f64().unwrap() <= 20.0);
            assert!(value["vegetation_density"].as_f64().unwrap() <= 0.7);
            assert!(value["air_quality_index"].as_u64().unwrap() <= 150);
        }
    }
}
