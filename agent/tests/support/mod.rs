//! A real MQTT ingest listener on port 0 with its own buffer, for the MQTT test binaries.

#![allow(dead_code)] // each test binary uses its own part

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use emberline_agent::auth::Tokens;
use emberline_agent::buffer::{Buffer, Durability, StoreConfig};
use emberline_agent::metrics::{Metrics, ReadingLabels};
use emberline_agent::mqtt::{MqttConfig, MqttContext, serve};
use emberline_core::{AgentId, Envelope, Limits};
use tokio_util::sync::CancellationToken;

/// The listener's packet limit in these tests.
pub const MAX_PACKET_BYTES: usize = 4096;
/// The listener's in-flight bound (MQTT 5: receive maximum) in these tests.
pub const MAX_INFLIGHT: usize = 50;

pub struct Listener {
    pub address: SocketAddr,
    pub buffer: Buffer,
    pub metrics: Metrics,
    pub buffer_path: PathBuf,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Listener {
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// The readings committed to the buffer, in order.
    pub async fn buffered(&self) -> Vec<Envelope> {
        let stored = self.buffer.peek(100_000, usize::MAX).await.unwrap();
        stored
            .iter()
            .map(|s| Envelope::from_slice(&s.envelope().unwrap()).unwrap())
            .collect()
    }

    /// The reasons in the buffer's rejected table, oldest first.
    pub fn rejected_reasons(&self) -> Vec<String> {
        self.rejected_column("reason")
    }

    /// The payloads in the buffer's rejected table, oldest first.
    pub fn rejected_payloads(&self) -> Vec<String> {
        self.rejected_column("CAST(payload AS TEXT)")
    }

    /// What the rejected table holds, counted as its cap counts: payload, origin and reason.
    pub fn rejected_bytes_in_table(&self) -> i64 {
        let db = rusqlite::Connection::open(&self.buffer_path).unwrap();
        db.query_row(
            "SELECT SUM(length(payload) + length(CAST(origin AS BLOB)) + length(CAST(reason AS BLOB))) FROM rejected",
            [],
            |row| row.get(0),
        )
        .unwrap()
    }

    fn rejected_column(&self, column: &str) -> Vec<String> {
        let db = rusqlite::Connection::open(&self.buffer_path).unwrap();
        let mut query = db
            .prepare(&format!("SELECT {column} FROM rejected ORDER BY rowid"))
            .unwrap();
        let rows = query.query_map([], |row| row.get(0)).unwrap();
        rows.map(Result::unwrap).collect()
    }

    /// `emberline_agent_readings_total{protocol="mqtt",outcome=…}`.
    pub fn mqtt_readings(&self, outcome: &'static str) -> u64 {
        let labels = ReadingLabels {
            protocol: "mqtt",
            outcome,
        };
        self.metrics.readings.get_or_create(&labels).get()
    }
}

/// Starts a listener; `tokens` is a device tokens file's text.
pub async fn listener(tokens: Option<&str>, max_buffer_bytes: u64) -> Listener {
    listener_with(Options {
        tokens,
        max_buffer_bytes,
        ..Options::default()
    })
    .await
}

/// What a test may change of its listener.
pub struct Options<'a> {
    /// A device tokens file's text; without it every device is accepted.
    pub tokens: Option<&'a str>,
    pub max_buffer_bytes: u64,
    pub max_rejected_bytes: u64,
    pub max_inflight: usize,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Self {
            tokens: None,
            max_buffer_bytes: u64::MAX,
            max_rejected_bytes: emberline_agent::buffer::DEFAULT_MAX_REJECTED_BYTES,
            max_inflight: MAX_INFLIGHT,
        }
    }
}

/// Starts a listener as `options` say.
pub async fn listener_with(options: Options<'_>) -> Listener {
    let Options {
        tokens,
        max_buffer_bytes,
        max_rejected_bytes,
        max_inflight,
    } = options;
    emberline_testkit::init_logs();
    let dir = tempfile::tempdir().unwrap();
    let buffer_path = dir.path().join("buffer.db");
    let (buffer, _thread) = Buffer::start(StoreConfig {
        path: buffer_path.clone(),
        agent_id: AgentId::parse("edge-1").unwrap(),
        max_bytes: max_buffer_bytes,
        durability: Durability::Full,
        max_rejected_bytes,
    })
    .unwrap();
    let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = socket.local_addr().unwrap();
    let metrics = Metrics::default();
    let context = MqttContext {
        buffer: buffer.clone(),
        limits: Limits::default(),
        tokens: tokens.map(|t| Arc::new(Tokens::parse(t).unwrap())),
        metrics: metrics.clone(),
        alerts: None,
        acceptor: emberline_listen::Acceptor::Plain,
        config: MqttConfig {
            max_packet_bytes: MAX_PACKET_BYTES,
            max_inflight,
            connect_timeout: Duration::from_secs(5),
            packet_timeout: Duration::from_secs(10),
            idle_timeout: None,
        },
    };
    let shutdown = CancellationToken::new();
    tokio::spawn(serve(socket, context, shutdown.clone()));
    Listener {
        address,
        buffer,
        metrics,
        buffer_path,
        shutdown,
        _dir: dir,
    }
}

/// A valid reading from `source` whose temperature follows `n`.
pub fn payload(source: &str, n: u32) -> String {
    format!(
        r#"{{"timestamp":"2025-05-24T18:03:11Z","latitude":34.05,"longitude":-118.25,"temperature":{},"humidity":12,
        "wind_speed":18.4,"wind_direction":270,"vegetation_density":0.82,"air_quality_index":160,"source_name":"{source}","seq":{n}}}"#,
        20 + n % 10
    )
}
