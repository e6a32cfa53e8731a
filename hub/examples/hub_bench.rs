//! Hub benchmarks (issue 4), printed as a Markdown table for `docs/benchmarks.md`:
//! - writer: readings/s from raw-data into PostgreSQL, against a plain `COPY` of the same rows
//!   into the same table (goal ≥ 0.5 ×);
//! - detector: readings/s from raw-data to acknowledged anomaly-data, against a bare consumer
//!   reading the same topic (goal ≥ 0.8 ×).
//!
//! `cargo run --release -p emberline-hub --example hub_bench -- [readings]` (default 50,000), with
//! PostgreSQL at `DATABASE_URL` and a broker at `EMBERLINE_TEST_KAFKA` (or one started here).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a benchmark fails loudly

use std::time::{Duration, Instant};

use emberline_core::{AgentId, Envelope, Limits, Protocol, Reading, ReadingId};
use emberline_hub::metrics::Metrics;
use emberline_hub::{DetectConfig, Detector, WriteConfig, Writer, db};
use emberline_stack::topics::TopicSpec;
use emberline_testkit::{TestDb, create_topics, shared_broker, unique_name};
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer as _, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio_util::sync::CancellationToken;

const PARTITIONS: i32 = 6;

#[tokio::main]
async fn main() {
    let readings: usize = std::env::args()
        .nth(1)
        .map(|n| {
            n.parse()
                .expect("the first argument is a number of readings")
        })
        .unwrap_or(50_000);
    let bootstrap = tokio::task::block_in_place(shared_broker).to_owned();
    let envelopes: Vec<Envelope> = (0..readings).map(envelope).collect();
    let raw = unique_name("bench-raw");
    let anomaly = unique_name("bench-anomaly");
    let specs = [
        TopicSpec::new(&raw, PARTITIONS),
        TopicSpec::new(&anomaly, PARTITIONS),
    ];
    create_topics(&bootstrap, &specs).await;
    produce(&bootstrap, &raw, &envelopes).await;

    let copy = copy_rate(&envelopes).await;
    let writer = writer_rate(&bootstrap, &raw, readings).await;
    let bare = bare_consumer_rate(&bootstrap, &raw, readings).await;
    let detector = detector_rate(&bootstrap, &raw, &anomaly, readings).await;
    println!("| measure ({readings} readings, {PARTITIONS} partitions) | readings/s | goal |");
    println!("|---|---|---|");
    println!("| plain `COPY` into `readings` | {copy:.0} | — |");
    println!(
        "| `emberline-hub write`, raw-data → PostgreSQL | {writer:.0} — **{:.2} × COPY** | ≥ 0.5 × |",
        writer / copy
    );
    println!("| bare consumer reading raw-data | {bare:.0} | — |");
    println!(
        "| `emberline-hub detect`, raw-data → acknowledged anomaly-data | {detector:.0} — **{:.2} × bare** | ≥ 0.8 × |",
        detector / bare
    );
}

fn envelope(n: usize) -> Envelope {
    let body = serde_json::json!({
        "timestamp": "2025-05-24T18:03:11Z", "latitude": 38.5, "longitude": -120.25,
        "temperature": 20 + n % 30, "humidity": 10 + n % 60, "wind_speed": n % 40,
        "wind_direction": 270, "vegetation_density": 0.5, "air_quality_index": 40 + n % 150,
        "source_name": format!("sensor-{}", n % 1000),
    });
    let now = time::macros::datetime!(2025-05-24 18:04 UTC);
    let reading = Reading::from_json(body, &Limits::default(), now).unwrap();
    let agent = AgentId::parse("bench").unwrap();
    let id = ReadingId::from_buffer(&agent, n as u64);
    Envelope::new(id, agent, now, Protocol::Http, reading)
}

async fn produce(bootstrap: &str, topic: &str, envelopes: &[Envelope]) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "20")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .unwrap();
    for chunk in envelopes.chunks(10_000) {
        let mut deliveries = Vec::new();
        for e in chunk {
            let payload = e.to_vec();
            let record = FutureRecord::to(topic).key(e.key()).payload(&payload);
            deliveries.push(producer.send_result(record).map_err(|(e, _)| e).unwrap());
        }
        for delivery in deliveries {
            delivery.await.unwrap().map_err(|(e, _)| e).unwrap();
        }
    }
}

/// Rows/s of a `COPY` of the same readings into a freshly migrated `readings` table.
async fn copy_rate(envelopes: &[Envelope]) -> f64 {
    let test_db = TestDb::create().await;
    db::migrate(&test_db.pool).await.unwrap();
    let mut csv = Vec::new();
    for e in envelopes {
        let m = e.reading.measurements();
        let payload = serde_json::to_string(&e.reading)
            .unwrap()
            .replace('"', "\"\"");
        let line = format!(
            "{},{},{},http,{},{},{},{},{},{},{},{},{},{},\"{payload}\"\n",
            e.reading_id,
            e.key(),
            e.agent_id,
            rfc3339(e.reading.timestamp()),
            rfc3339(e.received_at),
            m.latitude,
            m.longitude,
            m.temperature,
            m.humidity,
            m.wind_speed,
            m.wind_direction,
            m.vegetation_density,
            m.air_quality_index,
        );
        csv.extend_from_slice(line.as_bytes());
    }
    let mut connection = test_db.pool.acquire().await.unwrap();
    let started = Instant::now();
    let mut copy = connection
        .copy_in_raw(
            "COPY readings (reading_id, source_name, agent_id, protocol, observed_at, received_at,
             latitude, longitude, temperature, humidity, wind_speed, wind_direction,
             vegetation_density, air_quality_index, payload) FROM STDIN (FORMAT csv)",
        )
        .await
        .unwrap();
    copy.send(csv).await.unwrap();
    let rows = copy.finish().await.unwrap();
    assert_eq!(rows as usize, envelopes.len());
    rows as f64 / started.elapsed().as_secs_f64()
}

fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// `BENCH_HUB_CONSUMER="key=value,…"`: librdkafka settings for every consumer here (the bare
/// one and the roles', through `--kafka-option`), for fetch-size experiments.
fn consumer_options() -> Vec<(String, String)> {
    std::env::var("BENCH_HUB_CONSUMER")
        .unwrap_or_default()
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// `BENCH_HUB_BATCH`: the roles' `--batch-size` (their default when unset).
fn batch_size(common: &mut emberline_hub::Common) {
    common.kafka_options.extend(consumer_options());
    if let Some(size) = std::env::var("BENCH_HUB_BATCH")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        common.batch_size = size;
    }
}

/// Readings/s of a writer from its start to the last reading committed.
async fn writer_rate(bootstrap: &str, raw: &str, readings: usize) -> f64 {
    let test_db = TestDb::create().await;
    let mut config = WriteConfig::new(bootstrap, &test_db.url);
    config.group = unique_name("bench-write");
    config.raw_topic = raw.to_owned();
    config.migrate = true;
    batch_size(&mut config.common);
    for topic in [&mut config.anomaly_topic, &mut config.status_topic] {
        *topic = unique_name("bench-unused");
        create_topics(bootstrap, &[TopicSpec::new(topic.as_str(), 1)]).await;
    }
    let writer = Writer::new(config).await.unwrap();
    let metrics = writer.metrics();
    let started = Instant::now();
    let token = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = tokio::spawn(writer.run(listener, token.clone()));
    wait_for_records(&metrics, raw, readings).await;
    let rate = readings as f64 / started.elapsed().as_secs_f64();
    token.cancel();
    running.await.unwrap().unwrap();
    rate
}

/// Readings/s of a consumer that only reads.
async fn bare_consumer_rate(bootstrap: &str, raw: &str, readings: usize) -> f64 {
    let mut config = ClientConfig::new();
    for (key, value) in consumer_options() {
        config.set(key, value);
    }
    let consumer: StreamConsumer = config
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique_name("bench-bare"))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[raw]).unwrap();
    let started = Instant::now();
    for _ in 0..readings {
        consumer.recv().await.unwrap();
    }
    let rate = readings as f64 / started.elapsed().as_secs_f64();
    std::thread::spawn(move || drop(consumer));
    rate
}

/// Readings/s of a detector from its start to the last classification acknowledged.
async fn detector_rate(bootstrap: &str, raw: &str, anomaly: &str, readings: usize) -> f64 {
    let mut config = DetectConfig::new(bootstrap);
    config.group = unique_name("bench-detect");
    config.raw_topic = raw.to_owned();
    config.anomaly_topic = anomaly.to_owned();
    config.dlq_topic = unique_name("bench-dlq");
    batch_size(&mut config.common);
    create_topics(bootstrap, &[TopicSpec::new(&config.dlq_topic, 1)]).await;
    let detector = Detector::new(config).unwrap();
    let metrics = detector.metrics();
    let started = Instant::now();
    let token = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = tokio::spawn(detector.run(listener, token.clone()));
    wait_for_records(&metrics, raw, readings).await;
    let rate = readings as f64 / started.elapsed().as_secs_f64();
    token.cancel();
    running.await.unwrap().unwrap();
    rate
}

/// Waits until `emberline_hub_records_total{topic}` reaches `readings` (10 minutes at most).
async fn wait_for_records(metrics: &Metrics, topic: &str, readings: usize) {
    let line = format!("emberline_hub_records_total{{topic=\"{topic}\"}} ");
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let text = metrics.render().unwrap();
        let done = text
            .lines()
            .find_map(|l| l.strip_prefix(line.as_str()))
            .and_then(|n| n.parse::<f64>().ok())
            .unwrap_or(0.0);
        if done >= readings as f64 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {done} of {readings} readings done"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
