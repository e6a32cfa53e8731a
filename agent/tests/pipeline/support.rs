//! What the pipeline tests share: the agent and the bridge as child processes killed when
//! dropped, their topics and ports, and readings posted and read back.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use emberline_agent::buffer::{Buffer, Durability, Incoming, StoreConfig};
use emberline_agent::forwarder::{Forwarder, ForwarderConfig};
use emberline_agent::http::BridgeStatus;
use emberline_agent::metrics::Metrics;
use emberline_core::{AgentId, Envelope, Limits, Protocol, Reading};
use emberline_testkit::{create_topic, free_port, unique_name, wait_until};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{ClientConfig, Message};
use tokio_util::sync::CancellationToken;

/// A child process killed when dropped.
pub struct Proc {
    child: Option<Child>,
}

impl Proc {
    /// How the process ended, if it has.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A binary of this workspace, next to the test executable's `deps/` folder.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().and_then(Path::parent).unwrap().join(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace first (cargo build --workspace)",
        path.display()
    );
    path
}

pub fn spawn(command: &mut Command) -> Proc {
    let quiet = std::env::var_os("TEST_LOG").is_none();
    if quiet {
        command.stdout(Stdio::null()).stderr(Stdio::null());
    }
    Proc {
        child: Some(command.spawn().unwrap()),
    }
}

pub struct Topics {
    pub raw: String,
    pub status: String,
}

pub async fn topics(bootstrap: &str) -> Topics {
    Topics {
        raw: create_topic(bootstrap, &unique_name("raw-data"), 3).await,
        status: create_topic(bootstrap, &unique_name("agent-status"), 1).await,
    }
}

pub fn bridge(bootstrap: &str, topics: &Topics, port: u16) -> Proc {
    spawn(&mut bridge_command(bootstrap, topics, port))
}

/// A bridge on its own topics, up and answering.
pub async fn started_bridge(bootstrap: &str) -> (Proc, u16) {
    let topics = topics(bootstrap).await;
    let port = free_port().unwrap();
    let bridge = bridge(bootstrap, &topics, port);
    wait_healthy(port, "bridge").await;
    (bridge, port)
}

/// The bridge's command line, for a test to add to.
pub fn bridge_command(bootstrap: &str, topics: &Topics, port: u16) -> Command {
    let mut command = Command::new(binary("emberline-bridge"));
    command
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--brokers", bootstrap])
        .args(["--raw-topic", &topics.raw, "--status-topic", &topics.status])
        .args(["--produce-timeout", "3s"]);
    command
}

pub struct AgentPorts {
    pub http: u16,
    pub mqtt: u16,
    pub alerts: u16,
}

pub fn agent_ports() -> AgentPorts {
    AgentPorts {
        http: free_port().unwrap(),
        mqtt: free_port().unwrap(),
        alerts: free_port().unwrap(),
    }
}

pub fn agent(dir: &Path, ports: &AgentPorts, bridge_port: u16) -> Proc {
    spawn(
        Command::new(binary("emberline-agent"))
            .args(["run", "--agent-id", "edge-e2e"])
            .args(["--http-listen", &format!("127.0.0.1:{}", ports.http)])
            .args(["--mqtt-listen", &format!("127.0.0.1:{}", ports.mqtt)])
            .args(["--alerts-listen", &format!("127.0.0.1:{}", ports.alerts)])
            .arg("--buffer-path")
            .arg(dir.join("buffer.db"))
            .args(["--bridge-url", &format!("http://127.0.0.1:{bridge_port}")])
            // Small batches, so that a backlog is sent as many and the read-ahead of the next
            // batch while one is with the bridge is exercised.
            .args(["--forward-linger-ms", "20", "--heartbeat-secs", "1"])
            .args(["--forward-max-readings", "25"]),
    )
}

/// Topics, ports and a buffer directory for one test; the bridge and the agent start on demand
/// and are killed when this is dropped.
pub struct Pipeline {
    pub bootstrap: String,
    pub topics: Topics,
    pub dir: tempfile::TempDir,
    pub bridge_port: u16,
    pub ports: AgentPorts,
    pub bridge: Option<Proc>,
    pub agent: Option<Proc>,
}

impl Pipeline {
    pub async fn new(bootstrap: &str) -> Self {
        Self {
            bootstrap: bootstrap.to_owned(),
            topics: topics(bootstrap).await,
            dir: tempfile::tempdir().unwrap(),
            bridge_port: free_port().unwrap(),
            ports: agent_ports(),
            bridge: None,
            agent: None,
        }
    }

    /// Starts both and waits until they answer.
    pub async fn started(bootstrap: &str) -> Self {
        let mut pipeline = Self::new(bootstrap).await;
        pipeline.start_bridge().await;
        pipeline.start_agent().await;
        pipeline
    }

    pub async fn start_bridge(&mut self) {
        self.bridge = Some(bridge(&self.bootstrap, &self.topics, self.bridge_port));
        wait_healthy(self.bridge_port, "bridge").await;
    }

    /// Starts the agent and waits until it answers. A port picked free a moment before can be
    /// taken by another test's connection before the agent binds it, and the agent then exits at
    /// once: it is started again on other ports (twice at most), saying so.
    pub async fn start_agent(&mut self) {
        for attempt in 1..=3 {
            let mut started = agent(self.dir.path(), &self.ports, self.bridge_port);
            match answers_or_exits(&mut started, self.ports.http).await {
                None => {
                    self.agent = Some(started);
                    return;
                }
                Some(status) => eprintln!(
                    "the agent exited before it answered ({status}, attempt {attempt}); \
                     starting it on other ports"
                ),
            }
            self.ports = agent_ports();
        }
        panic!("the agent exited three times before it answered (TEST_LOG=1 shows why)");
    }

    pub fn kill9_agent(&mut self) {
        if let Some(agent) = self.agent.as_mut() {
            agent.kill9();
        }
    }
}

/// `None` once `process` answers `/healthz` on `port`, or how it ended if it exits first;
/// panics after 30 s.
async fn answers_or_exits(process: &mut Proc, port: u16) -> Option<std::process::ExitStatus> {
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/healthz");
    let started = Instant::now();
    loop {
        if let Some(status) = process.exited() {
            return Some(status);
        }
        let answer = client.get(&url).send().await;
        if answer.is_ok_and(|r| r.status().is_success()) {
            return None;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "timed out after 30s waiting for the agent on port {port}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn wait_healthy(port: u16, what: &str) {
    let client = reqwest::Client::new();
    wait_until(
        what,
        Duration::from_secs(30),
        Duration::from_millis(50),
        || {
            let request = client
                .get(format!("http://127.0.0.1:{port}/healthz"))
                .send();
            async move {
                request
                    .await
                    .ok()
                    .filter(|r| r.status().is_success())
                    .map(|_| ())
            }
        },
    )
    .await;
}

pub fn reading(source: &str, seq: u64) -> String {
    format!(
        r#"{{"timestamp":"2025-05-24T18:03:11Z","latitude":34.05,"longitude":-118.25,"temperature":{},
        "humidity":12,"wind_speed":18.4,"wind_direction":270,"vegetation_density":0.82,
        "air_quality_index":160,"source_name":"{source}","seq":{seq}}}"#,
        20 + seq % 20
    )
}

/// Posts one reading; the reading id when the agent said 202.
pub async fn post(client: &reqwest::Client, port: u16, body: String) -> Option<String> {
    let response = client
        .post(format!("http://127.0.0.1:{port}/ingest"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .ok()?;
    if response.status() != reqwest::StatusCode::ACCEPTED {
        return None;
    }
    let body: serde_json::Value = response.json().await.ok()?;
    body["reading_id"].as_str().map(str::to_owned)
}

/// Reads `topic` from the start until every id in `expected` has been seen (or panics after
/// `within`); returns every envelope read, in partition order, with its key.
pub async fn read_until(
    bootstrap: &str,
    topic: &str,
    expected: &BTreeSet<String>,
    within: Duration,
) -> Vec<(String, Envelope)> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique_name("e2e-reader"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let started = Instant::now();
    let mut records = Vec::new();
    let mut seen = BTreeSet::new();
    while !expected.is_subset(&seen) {
        assert!(
            started.elapsed() < within,
            "after {within:?}: {} of {} acknowledged readings in {topic}",
            expected.intersection(&seen).count(),
            expected.len()
        );
        let Ok(Ok(message)) = tokio::time::timeout(Duration::from_secs(1), consumer.recv()).await
        else {
            continue;
        };
        let key = String::from_utf8(message.key().unwrap().to_vec()).unwrap();
        let envelope = Envelope::from_slice(message.payload().unwrap()).unwrap();
        seen.insert(envelope.reading_id.to_string());
        records.push((key, envelope));
    }
    std::thread::spawn(move || drop(consumer));
    records
}

/// The first record of `topic` (key, payload), waiting up to 30 s.
pub async fn first_record(bootstrap: &str, topic: &str) -> (String, Vec<u8>) {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique_name("e2e-first"))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
        .await
        .unwrap_or_else(|_| panic!("nothing in {topic} within 30 s"))
        .unwrap();
    let record = (
        String::from_utf8(message.key().unwrap().to_vec()).unwrap(),
        message.payload().unwrap().to_vec(),
    );
    drop(message);
    std::thread::spawn(move || drop(consumer));
    record
}

/// Keys are source names, and within a key the device's `seq` never goes backwards except on a
/// redelivery of a reading already seen.
pub fn assert_keys_and_order(records: &[(String, Envelope)]) {
    let mut last: HashMap<&str, u64> = HashMap::new();
    let mut seen = BTreeSet::new();
    for (key, envelope) in records {
        assert_eq!(key, envelope.reading.source_name());
        let seq = envelope.reading.seq().unwrap();
        let first_time = seen.insert(envelope.reading_id.to_string());
        if let Some(previous) = last.insert(key, seq) {
            assert!(
                seq > previous || !first_time,
                "{key}: seq {seq} after {previous}"
            );
        }
    }
}

/// A forwarder in the test's own process, sending batches of at most `max_batch_readings` to the
/// bridge on `bridge_port`; quick to retry.
pub fn forwarder(
    buffer: Buffer,
    agent: AgentId,
    bridge_port: u16,
    max_batch_readings: usize,
) -> Forwarder {
    forwarder_with(
        forwarder_config(agent, bridge_port, max_batch_readings),
        buffer,
    )
}

/// A forwarder in the test's own process with `config` (a token, say).
pub fn forwarder_with(config: ForwarderConfig, buffer: Buffer) -> Forwarder {
    let status = Arc::new(BridgeStatus::default());
    Forwarder::new(config, buffer, Metrics::default(), status).unwrap()
}

/// A forwarder running on a task of its own until it is stopped.
pub struct Running {
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub fn start(forwarder: Forwarder) -> Self {
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(forwarder.run(shutdown.clone()));
        Self { shutdown, task }
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap();
    }

    /// Waits (up to 60 s) until the forwarder has emptied `buffer`, then stops it.
    pub async fn drained(self, buffer: &Buffer) {
        wait_until(
            "the forwarder to empty the buffer",
            Duration::from_secs(60),
            Duration::from_millis(100),
            || async { (buffer.stats().await.ok()?.depth == 0).then_some(()) },
        )
        .await;
        self.stop().await;
    }
}

/// What [`forwarder`] runs with: no token.
pub fn forwarder_config(
    agent: AgentId,
    bridge_port: u16,
    max_batch_readings: usize,
) -> ForwarderConfig {
    ForwarderConfig {
        bridge_url: format!("http://127.0.0.1:{bridge_port}"),
        bridge_ca_file: None,
        agent_id: agent,
        token: None,
        max_batch_readings,
        max_batch_bytes: 1 << 20,
        linger: Duration::from_millis(10),
        request_timeout: Duration::from_secs(10),
        heartbeat_every: Duration::from_secs(60),
        min_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(500),
    }
}

/// A counter of the bridge's `/metrics` (a line `{name} {value}`), if it answers.
pub async fn bridge_count(client: &reqwest::Client, port: u16, name: &str) -> Option<u64> {
    let text = client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|n| n.trim().parse::<u64>().ok())
}

/// A buffer in `dir` for `agent`, fsync at checkpoints only (quick), no byte cap.
pub fn buffer_config(dir: &tempfile::TempDir, agent: &AgentId) -> StoreConfig {
    StoreConfig {
        path: dir.path().join("buffer.db"),
        agent_id: agent.clone(),
        max_bytes: u64::MAX,
        durability: Durability::Normal,
        max_rejected_bytes: emberline_agent::buffer::DEFAULT_MAX_REJECTED_BYTES,
    }
}

/// Valid readings from `source`, one per device `seq`, as HTTP ingest makes them.
pub fn incoming(source: &str, seqs: std::ops::RangeInclusive<u64>) -> Vec<Incoming> {
    let now = time::OffsetDateTime::now_utc();
    seqs.map(|seq| Incoming {
        reading: Reading::parse(reading(source, seq).as_bytes(), &Limits::default(), now).unwrap(),
        protocol: Protocol::Http,
        received_at: now,
    })
    .collect()
}
