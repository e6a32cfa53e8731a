//! Benchmark (not a test): the dashboard with many sensors. Fills a throwaway database (rows as
//! the hub's writer stores them, inserted directly), serves it in-process, then measures
//! `/api/sensors` latency and runs `web/test/bench.mjs` in headless Chromium for time to first
//! render and memory. `scripts/bench-dashboard` runs it; figures go to `docs/benchmarks.md`.
//!
//! `cargo run --release -p emberline-dashboard --example dashboard_bench -- [sensors] [requests]`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a benchmark harness

use std::time::{Duration, Instant};

use emberline_dashboard::{Config, Dashboard};
use emberline_testkit::TestDb;
use tokio_util::sync::CancellationToken;

/// Sensors spread over California and Nevada; 10 % high, 30 % medium, 60 % low.
const FILL: &str = "
WITH s AS (
  SELECT i, format('sensor-%s', i) AS name, format('a:edge-%s:%s', i % 50, i) AS id,
         32 + random() * 10 AS lat, -124 + random() * 10 AS lon,
         now() - random() * interval '1 hour' AS at,
         CASE WHEN i % 10 = 0 THEN 'high' WHEN i % 10 < 4 THEN 'medium' ELSE 'low' END AS intensity
  FROM generate_series(1, $1) AS i
), r AS (
  INSERT INTO readings (reading_id, source_name, agent_id, protocol, observed_at, received_at,
    latitude, longitude, temperature, humidity, wind_speed, wind_direction, vegetation_density,
    air_quality_index, payload)
  SELECT id, name, format('edge-%s', i % 50), 'http', at, at, lat, lon, 30, 25, 10, 180, 0.5, 80,
         jsonb_build_object('timestamp', to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
           'latitude', lat, 'longitude', lon, 'temperature', 30, 'humidity', 25, 'wind_speed', 10,
           'wind_direction', 180, 'vegetation_density', 0.5, 'air_quality_index', 80, 'source_name', name)
  FROM s RETURNING reading_id
), c AS (
  INSERT INTO classifications (reading_id, source_name, observed_at, intensity, confidence_score,
    rules_fired, rules_version, detected_at)
  SELECT id, name, at, intensity, 0.75, '[\"temperature-above-35\"]', 'bench', at FROM s
  RETURNING reading_id
)
INSERT INTO sensors (source_name, reading_id, agent_id, observed_at, latitude, longitude, payload,
  classified_reading_id, classified_observed_at, intensity, confidence_score, rules_fired, rules_version)
SELECT name, id, format('edge-%s', i % 50), at, lat, lon, '{}', id, at, intensity, 0.75,
       '[\"temperature-above-35\"]', 'bench' FROM s";

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

async fn latency(client: &reqwest::Client, url: &str, requests: usize) -> String {
    let mut times = Vec::with_capacity(requests);
    let mut bytes = 0;
    for _ in 0..requests + 3 {
        let started = Instant::now();
        let body = client.get(url).send().await.unwrap().bytes().await.unwrap();
        times.push(started.elapsed());
        bytes = body.len();
    }
    let mut times = times.split_off(3); // warm-up
    times.sort();
    format!(
        "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, {:.1} MB",
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        percentile(&times, 1.0),
        bytes as f64 / 1e6
    )
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let sensors: i32 = args.next().map_or(10_000, |a| a.parse().unwrap());
    let requests: usize = args.next().map_or(50, |a| a.parse().unwrap());
    let db = TestDb::create().await;
    emberline_hub::db::migrate(&db.pool).await.unwrap();
    sqlx::query(FILL)
        .bind(sensors)
        .execute(&db.pool)
        .await
        .unwrap();
    let mut config = Config::new("127.0.0.1:9", &db.url);
    config.tile_url = String::new();
    let dashboard = Dashboard::new(config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let token = CancellationToken::new();
    let server = tokio::spawn(dashboard.run(listener, token.clone()));

    let client = reqwest::Client::new();
    println!("sensors: {sensors}, sequential requests per figure: {requests}");
    for path in [
        "/api/sensors",
        "/api/sensors?intensity=high",
        "/api/sensors?bbox=-120,35,-118,37",
        "/data",
    ] {
        println!(
            "GET {path}: {}",
            latency(&client, &format!("{url}{path}"), requests).await
        );
    }
    let web = concat!(env!("CARGO_MANIFEST_DIR"), "/web");
    let output = tokio::process::Command::new("node")
        .args([&format!("{web}/test/bench.mjs"), &url, "3"])
        .current_dir(web)
        .output()
        .await
        .unwrap();
    print!("{}", String::from_utf8_lossy(&output.stdout));
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    token.cancel();
    server.await.unwrap().unwrap();
}
