//! What the SQLite buffer costs per reading, without HTTP: groups of single-reading requests (as
//! group commit forms them under many devices) appended to a fresh buffer, with and without an
//! fsync per commit. Prints wall time and the process's CPU time (this thread, the checkpoint
//! thread and the kernel) per reading and per commit.
//!
//! `cargo run --release -p emberline-agent --example buffer_cost -- [GROUP] [COMMITS]`
//! (defaults 17 and 20,000: what 50 connections formed in the ingest benchmark).

use std::time::Instant;

use emberline_agent::buffer::{Durability, Incoming, Prepared, Store, StoreConfig};
use emberline_core::{AgentId, Limits, Protocol, Reading};
use time::OffsetDateTime;

const READING: &str = r#"{"timestamp":"2025-05-24T18:03:11.123456Z","latitude":34.05,"longitude":-118.25,"temperature":21,"humidity":12,"wind_speed":18.4,"wind_direction":270.0,"vegetation_density":0.82,"air_quality_index":160.0,"source_name":"bench-1"}"#;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let group: usize = args.next().map_or(Ok(17), |a| a.parse())?;
    let commits: usize = args.next().map_or(Ok(20_000), |a| a.parse())?;
    let agent = AgentId::parse("bench").map_err(anyhow::Error::msg)?;
    let now = OffsetDateTime::now_utc();
    let reading = Reading::parse(READING.as_bytes(), &Limits::default(), now)?;
    let incoming = Incoming {
        reading,
        protocol: Protocol::Http,
        received_at: now,
    };
    println!("{commits} commits of {group} single-reading requests, fresh buffer each run");
    for durability in [Durability::Normal, Durability::Full] {
        let dir = tempfile::tempdir()?;
        let mut store = Store::open(StoreConfig {
            path: dir.path().join("buffer.db"),
            agent_id: agent.clone(),
            max_bytes: u64::MAX,
            durability,
            max_rejected_bytes: emberline_agent::buffer::DEFAULT_MAX_REJECTED_BYTES,
        })?;
        store.checkpoint_in_background()?;
        let (cpu, wall) = (cpu_seconds()?, Instant::now());
        for _ in 0..commits {
            let requests: Vec<Vec<Prepared>> = (0..group)
                .map(|_| vec![Prepared::new(&incoming, &agent)])
                .collect();
            store.append_prepared(&requests)?;
            store.checkpoint_if_behind();
        }
        let (cpu, wall) = (cpu_seconds()? - cpu, wall.elapsed().as_secs_f64());
        let readings = (commits * group) as f64;
        println!(
            "{durability:?}: {:.0} readings/s; per reading {:.2} µs wall, {:.2} µs CPU; per commit {:.1} µs wall, {:.1} µs CPU",
            readings / wall,
            wall / readings * 1e6,
            cpu / readings * 1e6,
            wall / commits as f64 * 1e6,
            cpu / commits as f64 * 1e6,
        );
    }
    Ok(())
}

/// User and system time of this process so far (all threads), from `/proc/self/stat`.
fn cpu_seconds() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| -> anyhow::Result<f64> {
        Ok(fields
            .get(i)
            .ok_or_else(|| anyhow::anyhow!("short /proc/self/stat"))?
            .parse::<f64>()?)
    };
    // Fields 14 and 15 (utime, stime) in clock ticks; Linux uses 100 per second.
    Ok((ticks(11)? + ticks(12)?) / 100.0)
}
