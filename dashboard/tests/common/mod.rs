//! Shared by the dashboard's integration tests: a pipeline of the hub's real detector and writer
//! on fresh topics and a fresh database, a dashboard on port 0, and readings to send through it.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::net::SocketAddr;
use std::time::Duration;

use emberline_core::batch::Heartbeat;
use emberline_core::{AgentId, Envelope, Limits, Profile, Protocol, Reading, ReadingId};
use emberline_dashboard::{Config, Dashboard};
use emberline_hub::{DetectConfig, Detector, WriteConfig, Writer};
use emberline_stack::topics::TopicSpec;
use emberline_testkit::{TestDb, create_topics, shared_broker, unique_name, wait_until};
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use time::OffsetDateTime;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const WITHIN: Duration = Duration::from_secs(60);
pub const EVERY: Duration = Duration::from_millis(100);

/// A task running on the test's runtime, stopped by cancelling its token.
pub struct Running {
    pub token: CancellationToken,
    pub address: SocketAddr,
    handle: JoinHandle<()>,
}

impl Running {
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub async fn stop(self) {
        self.token.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.handle)
            .await
            .expect("did not stop within 30s")
            .unwrap();
    }
}

async fn listener() -> (tokio::net::TcpListener, SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    (listener, address)
}

/// Topics, a database, the hub's detector (seed-compat rules) and writer, running.
pub struct Pipeline {
    pub bootstrap: String,
    pub raw: String,
    pub anomaly: String,
    pub status: String,
    pub db: TestDb,
    pub producer: FutureProducer,
    roles: Vec<Running>,
}

impl Pipeline {
    pub async fn start() -> Self {
        let bootstrap = tokio::task::block_in_place(shared_broker).to_owned();
        let db = TestDb::create().await;
        emberline_hub::db::migrate(&db.pool).await.unwrap();
        let prefix = unique_name("dash");
        let name = |suffix: &str| format!("{prefix}-{suffix}");
        let (raw, anomaly, status) = (name("raw-data"), name("anomaly-data"), name("agent-status"));
        let specs = [
            TopicSpec::new(&raw, 2),
            TopicSpec::new(&anomaly, 2),
            TopicSpec::new(&status, 1),
            TopicSpec::new(name("raw-data.dlq"), 1),
            TopicSpec::new(name("anomaly-data.dlq"), 1),
        ];
        create_topics(&bootstrap, &specs).await;
        let mut detect = DetectConfig::new(&bootstrap);
        detect.group = unique_name("dash-detect");
        detect.profile = "seed-compat".into();
        (detect.raw_topic, detect.anomaly_topic) = (raw.clone(), anomaly.clone());
        detect.dlq_topic = name("raw-data.dlq");
        detect.common.shutdown_timeout = Duration::from_secs(5);
        let mut write = WriteConfig::new(&bootstrap, &db.url);
        write.group = unique_name("dash-write");
        (write.raw_topic, write.anomaly_topic) = (raw.clone(), anomaly.clone());
        write.status_topic = status.clone();
        write.anomaly_dlq_topic = name("anomaly-data.dlq");
        write.common.shutdown_timeout = Duration::from_secs(5);
        let roles = vec![spawn_detector(detect).await, spawn_writer(write).await];
        let producer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("linger.ms", "5")
            .create()
            .unwrap();
        Self {
            bootstrap,
            raw,
            anomaly,
            status,
            db,
            producer,
            roles,
        }
    }

    /// A dashboard configuration for this pipeline (no base map: the tests are offline).
    pub fn dashboard_config(&self) -> Config {
        let mut config = Config::new(&self.bootstrap, &self.db.url);
        config.anomaly_topic = self.anomaly.clone();
        config.tile_url = String::new();
        config.shutdown_timeout = Duration::from_secs(5);
        config
    }

    pub async fn produce(&self, topic: &str, key: &str, payload: Vec<u8>) {
        let record = FutureRecord::to(topic).key(key).payload(&payload);
        let delivery = self.producer.send_result(record).map_err(|(e, _)| e);
        delivery
            .unwrap()
            .await
            .unwrap()
            .map_err(|(e, _)| e)
            .unwrap();
    }

    /// Sends readings to raw-data, as the bridge does.
    pub async fn send(&self, envelopes: &[Envelope]) {
        for envelope in envelopes {
            self.produce(&self.raw, envelope.key(), envelope.to_vec())
                .await;
        }
    }

    /// Publishes a reading to anomaly-data with its classification, as the detector does.
    pub async fn publish_classified(&self, envelope: &Envelope) {
        let mut envelope = envelope.clone();
        let profile = Profile::builtin("seed-compat").unwrap();
        let reading = &envelope.reading;
        let classification = profile.classification(reading.measurements(), reading.timestamp());
        envelope.classification = Some(classification);
        self.produce(&self.anomaly, envelope.key(), envelope.to_vec())
            .await;
    }

    pub async fn heartbeat(&self, heartbeat: &Heartbeat) {
        let payload = serde_json::to_vec(heartbeat).unwrap();
        self.produce(&self.status, heartbeat.key(), payload).await;
    }

    /// Waits until `sql` (a count) answers `expected`.
    pub async fn wait_for_count(&self, sql: &str, expected: i64) {
        let what = format!("{sql} = {expected}");
        wait_until(&what, WITHIN, EVERY, || async {
            let found = sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&self.db.pool)
                .await
                .ok();
            (found == Some(expected)).then_some(())
        })
        .await;
    }

    /// Waits until `n` sensors have a classification stored.
    pub async fn wait_for_classified_sensors(&self, n: i64) {
        let sql = "SELECT count(*) FROM sensors WHERE intensity IS NOT NULL";
        self.wait_for_count(sql, n).await;
    }

    pub async fn stop(self) {
        for role in self.roles {
            role.stop().await;
        }
        let producer = self.producer;
        std::thread::spawn(move || drop(producer));
    }
}

async fn spawn_detector(config: DetectConfig) -> Running {
    let detector = Detector::new(config).unwrap();
    let (listener, address) = listener().await;
    let token = CancellationToken::new();
    let running = token.clone();
    let handle = tokio::spawn(async move { detector.run(listener, running).await.unwrap() });
    Running {
        token,
        address,
        handle,
    }
}

async fn spawn_writer(config: WriteConfig) -> Running {
    let writer = Writer::new(config).await.unwrap();
    let (listener, address) = listener().await;
    let token = CancellationToken::new();
    let running = token.clone();
    let handle = tokio::spawn(async move { writer.run(listener, running).await.unwrap() });
    Running {
        token,
        address,
        handle,
    }
}

/// A dashboard serving on a free port.
pub async fn spawn_dashboard(config: Config) -> Running {
    let dashboard = Dashboard::new(config).await.unwrap();
    let (listener, address) = listener().await;
    let token = CancellationToken::new();
    let running = token.clone();
    let handle = tokio::spawn(async move { dashboard.run(listener, running).await.unwrap() });
    Running {
        token,
        address,
        handle,
    }
}

/// Measurements that the seed-compat rules call high, medium and low.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heat {
    High,
    Medium,
    Low,
}

/// Reading `seq` of `source` at (`latitude`, `longitude`), taken `ago` seconds before now.
pub fn reading(source: &str, seq: u64, position: (f64, f64), heat: Heat, ago: i64) -> Envelope {
    let temperature = match heat {
        Heat::High => 45.0,
        Heat::Medium => 37.0,
        Heat::Low => 22.0,
    };
    let now = OffsetDateTime::now_utc();
    let timestamp = now - time::Duration::seconds(ago);
    let body = serde_json::json!({
        "timestamp": timestamp.format(&time::format_description::well_known::Rfc3339).unwrap(),
        "latitude": position.0, "longitude": position.1,
        "temperature": temperature, "humidity": 50, "wind_speed": 5.0, "wind_direction": 270,
        "vegetation_density": 0.3, "air_quality_index": 30, "source_name": source, "seq": seq,
    });
    let reading = Reading::from_json(body, &Limits::default(), now).unwrap();
    let agent = AgentId::parse("edge-1").unwrap();
    let id = ReadingId::for_reading(&reading, &agent, seq);
    Envelope::new(id, agent, now, Protocol::Http, reading)
}

/// A heartbeat of `agent` sent `ago` seconds before now.
pub fn heartbeat(agent: &str, ago: i64, depth: u64) -> Heartbeat {
    Heartbeat {
        agent_id: AgentId::parse(agent).unwrap(),
        version: "0.1.0".into(),
        sent_at: OffsetDateTime::now_utc() - time::Duration::seconds(ago),
        buffer_depth: depth,
        buffer_bytes: depth * 100,
        oldest_buffered_age_seconds: (depth > 0).then_some(12.5),
    }
}

/// The hostile sensor name of the issue.
pub const HOSTILE: &str = "<img src=x onerror=alert(1)>";

/// Four sensors far apart (no clustering at world zoom): high, medium, low and a hostile
/// name that is high.
pub fn fleet() -> Vec<(Envelope, Heat)> {
    [
        ("ridge-high", (38.5, -120.2), Heat::High),
        ("valley-medium", (-25.0, 135.0), Heat::Medium),
        ("coast-low", (48.0, 10.0), Heat::Low),
        (HOSTILE, (-10.0, -55.0), Heat::High),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (name, position, heat))| (reading(name, i as u64 + 1, position, heat, 60), heat))
    .collect()
}
