//! Shared by the bridge's integration tests: envelopes, bodies, requests and a reader of topics.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::io::Write as _;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use emberline_bridge::{AppState, Bridge, Config, app};
use emberline_core::batch::{self, Heartbeat};
use emberline_core::{AgentId, Envelope, Limits, Protocol, Reading, ReadingId};
use emberline_testkit::{create_topic, unique_name};
use flate2::Compression;
use flate2::write::GzEncoder;
use rdkafka::Message as _;
use serde_json::Value;
use time::macros::datetime;
use tower::ServiceExt as _;

/// A token of at least 16 characters for `agent`.
pub fn token_of(agent: &str) -> String {
    format!("token-of-{agent}-0123456789")
}

/// A bridge on fresh topics of `bootstrap`, with `edit` applied to its defaults.
pub struct Harness {
    pub state: AppState,
    pub config: Config,
    /// Keeps the tokens file alive.
    _tokens: Option<tempfile::NamedTempFile>,
}

impl Harness {
    pub async fn new(bootstrap: &str, partitions: i32, edit: impl FnOnce(&mut Config)) -> Self {
        let mut config = Config::new(bootstrap);
        config.raw_topic = create_topic(bootstrap, &unique_name("raw-data"), partitions).await;
        config.status_topic = create_topic(bootstrap, &unique_name("agent-status"), 1).await;
        edit(&mut config);
        let bridge = Bridge::new(&config).unwrap();
        Self {
            state: bridge.state(),
            config,
            _tokens: None,
        }
    }

    /// As [`Harness::new`], with tokens for `agents`.
    pub async fn with_tokens(bootstrap: &str, agents: &[&str]) -> Self {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        for agent in agents {
            writeln!(file, "{agent} {}", token_of(agent)).unwrap();
        }
        let path = file.path().to_owned();
        let mut harness = Self::new(bootstrap, 1, |c| c.tokens_file = Some(path)).await;
        harness._tokens = Some(file);
        harness
    }

    pub fn app(&self) -> Router {
        app(self.state.clone())
    }

    pub async fn send(&self, request: Request<Body>) -> (StatusCode, Response<Body>) {
        let response = self.app().oneshot(request).await.unwrap();
        (response.status(), response)
    }

    /// The bridge's `/metrics` text.
    pub async fn metrics(&self) -> String {
        let request = Request::get("/metrics").body(Body::empty()).unwrap();
        text(self.send(request).await.1).await
    }
}

/// Envelope bytes of reading `n` of sensor `source` taken in by `agent`.
pub fn envelope(agent: &str, source: &str, n: u64) -> Vec<u8> {
    envelope_with_extra(agent, source, n, "")
}

/// As [`envelope`], with an extra field `note` holding `note` when it is not empty.
pub fn envelope_with_extra(agent: &str, source: &str, n: u64, note: &str) -> Vec<u8> {
    let extra = if note.is_empty() {
        String::new()
    } else {
        format!(r#","note":"{note}""#)
    };
    let body = format!(
        r#"{{"timestamp":"2025-05-24T18:03:11Z","latitude":38.5,"longitude":-120.2,"temperature":{t},
        "humidity":30,"wind_speed":12,"wind_direction":270,"vegetation_density":0.6,
        "air_quality_index":40,"source_name":"{source}","seq":{n}{extra}}}"#,
        t = 20 + n % 20
    );
    let now = datetime!(2025-05-24 18:04 UTC);
    let reading = Reading::parse(body.as_bytes(), &Limits::default(), now).unwrap();
    let agent = AgentId::parse(agent).unwrap();
    let id = ReadingId::for_reading(&reading, &agent, n);
    Envelope::new(id, agent, now, Protocol::Http, reading).to_vec()
}

pub fn ndjson(lines: &[Vec<u8>]) -> Vec<u8> {
    batch::encode(lines.iter().map(Vec::as_slice))
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// `POST /v1/batches` with a gzip body, from the agent owning `token`.
pub fn batch_request(lines: &[Vec<u8>], token: Option<&str>) -> Request<Body> {
    let body = gzip(&ndjson(lines));
    let mut builder = Request::post("/v1/batches")
        .header("content-type", batch::BATCH_CONTENT_TYPE)
        .header("content-encoding", "gzip")
        .header("content-length", body.len());
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    builder.body(Body::from(body)).unwrap()
}

pub fn heartbeat(agent: &str) -> Vec<u8> {
    let heartbeat = Heartbeat {
        agent_id: AgentId::parse(agent).unwrap(),
        version: "0.1.0".into(),
        sent_at: datetime!(2025-05-24 18:05 UTC),
        buffer_depth: 7,
        buffer_bytes: 4096,
        oldest_buffered_age_seconds: Some(1.5),
    };
    serde_json::to_vec(&heartbeat).unwrap()
}

pub fn heartbeat_request(body: Vec<u8>, token: Option<&str>) -> Request<Body> {
    let mut builder = Request::post("/v1/heartbeats").header("content-type", "application/json");
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    builder.body(Body::from(body)).unwrap()
}

pub async fn json(response: Response<Body>) -> Value {
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{e}: {bytes:?}"))
}

pub async fn text(response: Response<Body>) -> String {
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// One record read back from Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumed {
    pub key: String,
    pub payload: Vec<u8>,
    pub partition: i32,
    pub offset: i64,
}

/// Reads `topic` until `expected` records have come (or panics after `within`), then for two
/// seconds more: a record produced twice shows up as one too many.
pub async fn read_settled(
    bootstrap: &str,
    topic: &str,
    within: Duration,
    expected: usize,
) -> Vec<Consumed> {
    let linger = Duration::from_secs(2);
    let enough_since = std::sync::Mutex::new(None::<Instant>);
    read_topic(bootstrap, topic, within + linger, move |seen| {
        let mut since = enough_since.lock().unwrap();
        if seen.len() < expected {
            return false;
        }
        since.get_or_insert_with(Instant::now).elapsed() >= linger
    })
    .await
}

/// Reads `topic` from the beginning of every partition until `done` says so, or panics after
/// `within`. Records come in offset order within each partition.
pub async fn read_topic(
    bootstrap: &str,
    topic: &str,
    within: Duration,
    done: impl Fn(&[Consumed]) -> bool + Send + 'static,
) -> Vec<Consumed> {
    let (bootstrap, topic) = (bootstrap.to_owned(), topic.to_owned());
    tokio::task::spawn_blocking(move || {
        let consumer = emberline_testkit::reader_from_beginning(&bootstrap, &topic);
        let started = Instant::now();
        let mut seen = Vec::new();
        while !done(&seen) {
            assert!(
                started.elapsed() < within,
                "read only {} records of {topic}",
                seen.len()
            );
            if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
                seen.push(Consumed {
                    key: String::from_utf8(message.key().unwrap().to_vec()).unwrap(),
                    payload: message.payload().unwrap().to_vec(),
                    partition: message.partition(),
                    offset: message.offset(),
                });
            }
        }
        // librdkafka's destroy can block after broker restarts (DEVELOPERS.md): do not wait.
        std::thread::spawn(move || drop(consumer));
        seen
    })
    .await
    .unwrap()
}
