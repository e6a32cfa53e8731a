//! The drain benchmark's yardstick: how fast plain rdkafka produces the same envelopes into the
//! same broker (idempotent, acks=all, lz4 — the bridge's settings), straight from a buffer file
//! (the envelopes made from its records before the clock starts).
//!
//! `cargo run --release -p emberline-agent --example raw_produce -- <brokers> <topic> <buffer.db>`

use std::time::Instant;

use emberline_agent::buffer::{Durability, Store, StoreConfig};
use emberline_core::{AgentId, Envelope};
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // RAW_LOG=1 shows librdkafka's log (with RAW_CONFIG=debug=msg,protocol for its debug lines).
    if std::env::var_os("RAW_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(std::io::stderr)
            .init();
    }
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
        max_rejected_bytes: emberline_agent::buffer::DEFAULT_MAX_REJECTED_BYTES,
    })?;
    let records = store.peek(usize::MAX, usize::MAX)?;
    let keyed: Vec<(String, Vec<u8>)> = records
        .into_iter()
        .map(|s| {
            let envelope = s.envelope()?;
            Ok((Envelope::from_slice(&envelope)?.key().to_owned(), envelope))
        })
        .collect::<anyhow::Result<_>>()?;
    // RAW_TIMEOUT_MS: librdkafka's message.timeout.ms (0 = none, the bridge's setting).
    let timeout = std::env::var("RAW_TIMEOUT_MS").unwrap_or_else(|_| "0".into());
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "lz4")
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("message.timeout.ms", &timeout);
    // RAW_CONFIG="key=value,key=value": librdkafka settings on top, for experiments.
    for setting in std::env::var("RAW_CONFIG").unwrap_or_default().split(',') {
        if let Some((key, value)) = setting.split_once('=') {
            config.set(key.trim(), value.trim());
        }
    }
    let producer: FutureProducer = config.create()?;
    let started = Instant::now();
    let mut pending = Vec::with_capacity(keyed.len());
    // `send_result` enqueues at once (as the bridge does); `send` would enqueue only when its
    // future is polled, one record per linger period when awaited in turn.
    let mut failed = 0;
    for (key, payload) in &keyed {
        let record = FutureRecord::to(&topic).key(key).payload(payload);
        match producer.send_result(record) {
            Ok(delivery) => pending.push(delivery),
            Err(_) => failed += 1,
        }
    }
    for delivery in pending {
        if !matches!(delivery.await, Ok(Ok(_))) {
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
