//! Shared by the hub's integration tests: topics, readings, running roles in-process, reading
//! topics back and querying the test database.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::Arc;
use std::time::{Duration, Instant};

use emberline_core::batch::Heartbeat;
use emberline_core::{AgentId, Envelope, Limits, Protocol, Reading, ReadingId};
use emberline_hub::metrics::Metrics;
use emberline_hub::{DetectConfig, Detector, WriteConfig, Writer};
use emberline_stack::topics::TopicSpec;
use emberline_testkit::{create_topics, unique_name};
use rdkafka::ClientConfig;
use rdkafka::message::{Headers as _, Message as _};
use rdkafka::producer::{FutureProducer, FutureRecord};
use sqlx::PgPool;
use time::{Duration as TimeDuration, OffsetDateTime};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const WITHIN: Duration = Duration::from_secs(60);
pub const EVERY: Duration = Duration::from_millis(100);

/// A fresh set of Emberline topics on `bootstrap`.
#[derive(Debug, Clone)]
pub struct Topics {
    pub bootstrap: String,
    pub raw: String,
    pub anomaly: String,
    pub status: String,
    pub raw_dlq: String,
    pub anomaly_dlq: String,
}

impl Topics {
    pub async fn create(bootstrap: &str, partitions: i32) -> Self {
        let prefix = unique_name("hub");
        let topics = Self {
            bootstrap: bootstrap.to_owned(),
            raw: format!("{prefix}-raw-data"),
            anomaly: format!("{prefix}-anomaly-data"),
            status: format!("{prefix}-agent-status"),
            raw_dlq: format!("{prefix}-raw-data.dlq"),
            anomaly_dlq: format!("{prefix}-anomaly-data.dlq"),
        };
        let specs = [
            TopicSpec::new(&topics.raw, partitions),
            TopicSpec::new(&topics.anomaly, partitions),
            TopicSpec::new(&topics.status, 1),
            TopicSpec::new(&topics.raw_dlq, 1),
            TopicSpec::new(&topics.anomaly_dlq, 1),
        ];
        create_topics(bootstrap, &specs).await;
        topics
    }

    pub fn detect_config(&self) -> DetectConfig {
        let mut config = DetectConfig::new(&self.bootstrap);
        config.group = unique_name("hub-detect");
        config.raw_topic = self.raw.clone();
        config.anomaly_topic = self.anomaly.clone();
        config.dlq_topic = self.raw_dlq.clone();
        config.common.shutdown_timeout = Duration::from_secs(5);
        config.common.batch_size = 50;
        config
    }

    pub fn write_config(&self, database_url: &str) -> WriteConfig {
        let mut config = WriteConfig::new(&self.bootstrap, database_url);
        config.group = unique_name("hub-write");
        config.raw_topic = self.raw.clone();
        config.anomaly_topic = self.anomaly.clone();
        config.status_topic = self.status.clone();
        config.anomaly_dlq_topic = self.anomaly_dlq.clone();
        config.migrate = true;
        config.common.shutdown_timeout = Duration::from_secs(5);
        config.common.batch_size = 50;
        config
    }
}

/// A role running on the test's runtime; stopped (gracefully, bounded) by [`Running::stop`].
pub struct Running {
    pub token: CancellationToken,
    pub metrics: Arc<Metrics>,
    pub port: u16,
    handle: JoinHandle<()>,
}

impl Running {
    pub async fn stop(self) {
        self.token.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.handle)
            .await
            .expect("the role did not stop within 30s")
            .unwrap();
    }

    pub fn metric(&self, line_start: &str) -> Option<f64> {
        metric(&self.metrics, line_start)
    }
}

/// The value of the first metric line starting with `line_start`.
pub fn metric(metrics: &Metrics, line_start: &str) -> Option<f64> {
    let text = metrics.render().unwrap();
    text.lines()
        .find(|line| line.starts_with(line_start))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

async fn listener() -> (tokio::net::TcpListener, u16) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

pub async fn spawn_detector(config: DetectConfig) -> Running {
    let detector = Detector::new(config).unwrap();
    let metrics = detector.metrics();
    let (listener, port) = listener().await;
    let token = CancellationToken::new();
    let running = token.clone();
    let handle = tokio::spawn(async move { detector.run(listener, running).await.unwrap() });
    Running {
        token,
        metrics,
        port,
        handle,
    }
}

pub async fn spawn_writer(config: WriteConfig) -> Running {
    let writer = Writer::new(config).await.unwrap();
    let metrics = writer.metrics();
    let (listener, port) = listener().await;
    let token = CancellationToken::new();
    let running = token.clone();
    let handle = tokio::spawn(async move { writer.run(listener, running).await.unwrap() });
    Running {
        token,
        metrics,
        port,
        handle,
    }
}

/// Measurements of a test reading.
#[derive(Debug, Clone, Copy)]
pub struct Weather {
    pub temperature: f64,
    pub humidity: f64,
    pub wind_speed: f64,
    pub vegetation_density: f64,
    pub air_quality_index: f64,
}

pub const MILD: Weather = Weather {
    temperature: 22.0,
    humidity: 55.0,
    wind_speed: 5.0,
    vegetation_density: 0.3,
    air_quality_index: 30.0,
};

pub fn base_time() -> OffsetDateTime {
    time::macros::datetime!(2025-05-24 18:00 UTC)
}

/// The envelope of reading `seq` of `source`, observed `second` seconds after [`base_time`].
pub fn envelope(source: &str, seq: u64, second: i64, weather: Weather) -> Envelope {
    let timestamp = base_time() + TimeDuration::seconds(second);
    let body = serde_json::json!({
        "timestamp": timestamp.format(&time::format_description::well_known::Rfc3339).unwrap(),
        "latitude": 38.5, "longitude": -120.25,
        "temperature": weather.temperature, "humidity": weather.humidity,
        "wind_speed": weather.wind_speed, "wind_direction": 270,
        "vegetation_density": weather.vegetation_density,
        "air_quality_index": weather.air_quality_index,
        "source_name": source, "seq": seq,
    });
    let now = timestamp + TimeDuration::seconds(1);
    let reading = Reading::from_json(body, &Limits::default(), now).unwrap();
    let agent = AgentId::parse("edge-1").unwrap();
    let id = ReadingId::for_reading(&reading, &agent, seq);
    Envelope::new(id, agent, now, Protocol::Http, reading)
}

pub fn heartbeat(agent: &str, second: i64, depth: u64) -> Heartbeat {
    Heartbeat {
        agent_id: AgentId::parse(agent).unwrap(),
        version: "0.1.0".into(),
        sent_at: base_time() + TimeDuration::seconds(second),
        buffer_depth: depth,
        buffer_bytes: depth * 100,
        oldest_buffered_age_seconds: (depth > 0).then_some(2.5),
    }
}

pub fn producer(bootstrap: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .create()
        .unwrap()
}

/// Produces `records` (key, payload) to `topic` in order, each acknowledged.
pub async fn produce(producer: &FutureProducer, topic: &str, records: &[(String, Vec<u8>)]) {
    let mut deliveries = Vec::new();
    for (key, payload) in records {
        let record = FutureRecord::to(topic).key(key).payload(payload);
        deliveries.push(producer.send_result(record).map_err(|(e, _)| e).unwrap());
    }
    for delivery in deliveries {
        delivery.await.unwrap().map_err(|(e, _)| e).unwrap();
    }
}

pub async fn produce_envelopes(producer: &FutureProducer, topic: &str, envelopes: &[Envelope]) {
    let records: Vec<(String, Vec<u8>)> = envelopes
        .iter()
        .map(|e| (e.key().to_owned(), e.to_vec()))
        .collect();
    produce(producer, topic, &records).await;
}

/// One record read back from Kafka.
#[derive(Debug, Clone, PartialEq)]
pub struct Consumed {
    pub key: Option<String>,
    pub payload: Vec<u8>,
    pub partition: i32,
    pub offset: i64,
    pub headers: Vec<(String, String)>,
}

impl Consumed {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads `topic` from the beginning until it holds at least `count` records (panics after
/// [`WITHIN`]); then keeps reading for `settle` to catch any extra ones.
pub async fn read_topic(
    bootstrap: &str,
    topic: &str,
    count: usize,
    settle: Duration,
) -> Vec<Consumed> {
    let (bootstrap, topic) = (bootstrap.to_owned(), topic.to_owned());
    tokio::task::spawn_blocking(move || {
        let consumer = emberline_testkit::reader_from_beginning(&bootstrap, &topic);
        let started = Instant::now();
        let mut seen = Vec::new();
        let mut enough_at: Option<Instant> = None;
        loop {
            if seen.len() >= count && enough_at.get_or_insert_with(Instant::now).elapsed() >= settle
            {
                break;
            }
            assert!(
                started.elapsed() < WITHIN,
                "read only {} of {count} records of {topic}",
                seen.len()
            );
            if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
                let headers = message
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| {
                                let value =
                                    h.value.map(|v| String::from_utf8_lossy(v).into_owned());
                                (h.key.to_owned(), value.unwrap_or_default())
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                seen.push(Consumed {
                    key: message
                        .key()
                        .map(|k| String::from_utf8_lossy(k).into_owned()),
                    payload: message.payload().unwrap_or_default().to_vec(),
                    partition: message.partition(),
                    offset: message.offset(),
                    headers,
                });
            }
        }
        std::thread::spawn(move || drop(consumer));
        seen
    })
    .await
    .unwrap()
}

pub async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(pool)
        .await
        .unwrap_or_else(|error| panic!("{sql}: {error}"))
}

/// Waits until `sql` (a count) answers `expected`; the tables may not exist yet at first.
pub async fn wait_for_count(pool: &PgPool, sql: &str, expected: i64) {
    let what = format!("{sql} = {expected}");
    emberline_testkit::wait_until(&what, WITHIN, EVERY, || async {
        let found = sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await.ok();
        (found == Some(expected)).then_some(())
    })
    .await;
}
