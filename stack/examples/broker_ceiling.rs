//! The broker's own ceiling, for the end-to-end benchmark (issue 6): how fast plain rdkafka
//! produces records shaped like readings into a fresh 6-partition topic (the bridge's settings:
//! idempotent, acks=all, lz4), then how fast a bare consumer reads them back. Prints one JSON
//! object: `{"records", "produced_per_sec", "consumed_per_sec"}`.
//!
//! `cargo run --release -p emberline-stack --example broker_ceiling -- <bootstrap> [records]`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a benchmark fails loudly

use std::time::Instant;

use emberline_stack::topics::{self, TopicSpec};
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer as _, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let bootstrap = args
        .next()
        .expect("usage: broker_ceiling <bootstrap> [records]");
    let records: usize = args.next().map_or(100_000, |n| n.parse().expect("records"));
    let topic = format!("ceiling-{}", std::process::id());
    topics::ensure(&bootstrap, &[TopicSpec::new(&topic, 6)])
        .await
        .expect("create the topic");
    let produced = produce(&bootstrap, &topic, records).await;
    let consumed = consume(&bootstrap, &topic, records).await;
    println!(
        "{{\"records\":{records},\"produced_per_sec\":{produced:.0},\"consumed_per_sec\":{consumed:.0}}}"
    );
}

/// A reading-sized payload (about 330 bytes of JSON) for sensor `n`.
fn payload(n: usize) -> Vec<u8> {
    format!(
        r#"{{"reading_id":"{n:032x}","agent_id":"edge-1","received_at":"2026-11-24T10:00:00.000000Z","reading":{{"timestamp":"2026-11-24T10:00:00.000000Z","latitude":34.06,"longitude":-118.57,"temperature":{},"humidity":31.5,"wind_speed":22.4,"wind_direction":45.0,"vegetation_density":0.61,"air_quality_index":42,"source_name":"sensor-{}","seq":{n}}}}}"#,
        20 + n % 15,
        n % 1000
    )
    .into_bytes()
}

async fn produce(bootstrap: &str, topic: &str, records: usize) -> f64 {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("compression.type", "lz4")
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .create()
        .unwrap();
    let started = Instant::now();
    for chunk in (0..records).collect::<Vec<_>>().chunks(20_000) {
        let mut deliveries = Vec::with_capacity(chunk.len());
        for &n in chunk {
            let (key, body) = (format!("sensor-{}", n % 1000), payload(n));
            let record = FutureRecord::to(topic).key(&key).payload(&body);
            deliveries.push(producer.send_result(record).map_err(|(e, _)| e).unwrap());
        }
        for delivery in deliveries {
            delivery.await.unwrap().map_err(|(e, _)| e).unwrap();
        }
    }
    records as f64 / started.elapsed().as_secs_f64()
}

async fn consume(bootstrap: &str, topic: &str, records: usize) -> f64 {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("{topic}-reader"))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let started = Instant::now();
    for _ in 0..records {
        consumer.recv().await.unwrap();
    }
    let rate = records as f64 / started.elapsed().as_secs_f64();
    std::thread::spawn(move || drop(consumer));
    rate
}
