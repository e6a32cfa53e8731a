//! The drain benchmark's yardstick: how fast plain rdkafka produces the same envelopes into the
//! same broker (idempotent, acks=all, lz4 — the bridge's settings), straight from a buffer file.
//!
//! `cargo run --release -p emberline-agent --example raw_produce -- <brokers> <topic> <buffer.db>`

use std::time::{Duration, Instant};

use emberline_agent::buffer::{Durability, Store, StoreConfig};
use emberline_core::{AgentId, Envelope};
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (brokers, topic, path) = (
        args.next().unwrap_or_default(),
        args.next().unwrap_or_default(),
        args.next().unwrap_or_default(),
    );
    let store = Store::open(StoreConfig {
        path: path.into(),
        agent_id: AgentId::parse("bench").map_err(anyhow::Error::msg)?,
        max_bytes: u64::MAX,
        durability: Durability::Normal,
    })?;
    let records = store.peek(usize::MAX, usize::MAX)?;
    let keyed: Vec<(String, Vec<u8>)> = records
        .into_iter()
        .map(|s| {
            Ok((
                Envelope::from_slice(&s.envelope)?.key().to_owned(),
                s.envelope,
            ))
        })
        .collect::<Result<_, emberline_core::EnvelopeError>>()?;
    // RAW_TIMEOUT_MS: librdkafka's message.timeout.ms (0 = none, the bridge's setting).
    let timeout = std::env::var("RAW_TIMEOUT_MS").unwrap_or_else(|_| "0".into());
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "lz4")
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("message.timeout.ms", &timeout)
        .create()?;
    let started = Instant::now();
    let mut pending = Vec::with_capacity(keyed.len());
    for (key, payload) in &keyed {
        let record = FutureRecord::to(&topic).key(key).payload(payload);
        pending.push(producer.send(record, Duration::from_secs(60)));
    }
    let mut failed = 0;
    for delivery in pending {
        if delivery.await.is_err() {
            failed += 1;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{} {failed} {seconds:.3} {:.0}",
        keyed.len(),
        keyed.len() as f64 / seconds
    );
    Ok(())
}
