//! Fills an agent buffer with N readings, for the drain benchmark.
//!
//! `cargo run --release -p emberline-agent --example fill_buffer -- <buffer.db> <count>`

use emberline_agent::buffer::{Durability, Incoming, Store, StoreConfig};
use emberline_core::{AgentId, Limits, Protocol, Reading};
use time::OffsetDateTime;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| "buffer.db".into());
    let count: u64 = args.next().unwrap_or_else(|| "1000000".into()).parse()?;
    let mut store = Store::open(StoreConfig {
        path: path.into(),
        agent_id: AgentId::parse("bench").map_err(anyhow::Error::msg)?,
        max_bytes: u64::MAX,
        durability: Durability::Normal,
        max_rejected_bytes: emberline_agent::buffer::DEFAULT_MAX_REJECTED_BYTES,
    })?;
    let now = OffsetDateTime::now_utc();
    let mut written = 0;
    while written < count {
        let n = (count - written).min(10_000);
        let batch: Vec<Incoming> = (written..written + n)
            .map(|i| {
                let body = format!(
                    r#"{{"timestamp":"2025-05-24T18:03:11.123456Z","latitude":34.05,"longitude":-118.25,"temperature":{},
                    "humidity":12,"wind_speed":18.4,"wind_direction":270,"vegetation_density":0.82,
                    "air_quality_index":160,"source_name":"drain-{}"}}"#,
                    20 + i % 20,
                    i % 500
                );
                let reading = Reading::parse(body.as_bytes(), &Limits::default(), now).map_err(anyhow::Error::msg)?;
                Ok(Incoming { reading, protocol: Protocol::Http, received_at: now })
            })
            .collect::<anyhow::Result<_>>()?;
        store.append(&[batch])?;
        written += n;
    }
    println!("{written} readings, {} bytes", store.bytes());
    Ok(())
}
