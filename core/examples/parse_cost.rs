//! CPU per reading of the agent's first step, side by side in one run: the streaming decode
//! (`Reading::parse`, `Reading::check` on batch items) against decoding into a
//! `serde_json::Value` first (`Reading::from_json`), on the reference payload.
//!
//! `cargo run --release -p emberline-core --example parse_cost [rounds]`

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a failure should be loud

use std::hint::black_box;
use std::time::Instant;

use emberline_core::{Limits, Reading, Unchecked};
use serde_json::Value;
use time::OffsetDateTime;

const BODY: &str = r#"{"timestamp":"2025-05-24T18:03:11.123456Z","latitude":37.7749,"longitude":-122.4194,"temperature":31.5,"humidity":35,"wind_speed":12.5,"wind_direction":270.0,"vegetation_density":0.6,"air_quality_index":80,"source_name":"sensor-0001"}"#;
const BATCH: usize = 100;

fn main() {
    let rounds: u32 = std::env::args()
        .nth(1)
        .map_or(200_000, |arg| arg.parse().expect("rounds: a number"));
    let limits = Limits::default();
    let now = OffsetDateTime::now_utc();
    let batch = format!("[{}]", vec![BODY; BATCH].join(","));

    // Alternate the two, three times each, so drift on a shared machine hits both.
    for _ in 0..3 {
        let value = time_ns(rounds, || {
            let value: Value = serde_json::from_slice(BODY.as_bytes()).unwrap();
            black_box(Reading::from_json(value, &limits, now).unwrap());
        });
        let streamed = time_ns(rounds, || {
            black_box(Reading::parse(BODY.as_bytes(), &limits, now).unwrap());
        });
        let batch_value = time_ns(rounds / BATCH as u32, || {
            let items: Vec<Value> = serde_json::from_slice(batch.as_bytes()).unwrap();
            for item in items {
                black_box(Reading::from_json(item, &limits, now).unwrap());
            }
        }) / BATCH as f64;
        let batch_streamed = time_ns(rounds / BATCH as u32, || {
            let items: Vec<Unchecked> = serde_json::from_slice(batch.as_bytes()).unwrap();
            for item in items {
                black_box(Reading::check(item, &limits, now).unwrap());
            }
        }) / BATCH as f64;
        println!(
            "ns per reading — single: via Value {value:.0}, streaming {streamed:.0} ({:.2} ×); \
             batch of {BATCH}: via Value {batch_value:.0}, streaming {batch_streamed:.0} ({:.2} ×)",
            value / streamed,
            batch_value / batch_streamed,
        );
    }
}

fn time_ns(rounds: u32, mut work: impl FnMut()) -> f64 {
    let started = Instant::now();
    for _ in 0..rounds {
        work();
    }
    started.elapsed().as_nanos() as f64 / f64::from(rounds)
}
