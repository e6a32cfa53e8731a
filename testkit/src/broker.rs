//! Brokers for tests: one shared per process, or a private one to kill and restart.

use std::sync::OnceLock;
use std::time::Duration;

use emberline_stack::topics::{self, TopicSpec};
use emberline_stack::{Broker, BrokerConfig, broker::free_port};
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tempfile::TempDir;

/// Environment variable with the `host:port` of a broker the test command started.
pub const TEST_KAFKA_ENV: &str = "EMBERLINE_TEST_KAFKA";

/// A broker of the test's own, on a free port, with its data in a temporary directory. Killed
/// and its data removed when dropped.
#[derive(Debug)]
pub struct TestBroker {
    broker: Broker,
    // Dropped after `broker`: the process goes before its files.
    _data: TempDir,
}

impl TestBroker {
    pub fn start() -> Self {
        let data = tempfile::Builder::new()
            .prefix("emberline-test-broker-")
            .tempdir()
            .expect("cannot create a temporary directory for the broker");
        Self::start_in(data)
    }

    fn start_in(data: TempDir) -> Self {
        crate::init_logs();
        let port = free_port().expect("no free port on 127.0.0.1");
        let config = BrokerConfig::new(data.path(), port).unwrap_or_else(|error| panic!("{error}"));
        let broker = Broker::start(config).unwrap_or_else(|error| panic!("{error}"));
        Self {
            broker,
            _data: data,
        }
    }

    pub fn bootstrap(&self) -> String {
        self.broker.bootstrap()
    }

    /// `kill -9` the broker process.
    pub fn kill9(&mut self) {
        self.broker.kill9();
    }

    /// Start it again on the same port with the same data; waits until it answers.
    pub fn restart(&mut self) {
        self.broker
            .restart()
            .unwrap_or_else(|error| panic!("broker did not come back: {error}"));
    }

    pub fn pid(&self) -> Option<u32> {
        self.broker.pid()
    }
}

/// The broker this test process shares: `$EMBERLINE_TEST_KAFKA` when set (the test command
/// starts one for the whole run), otherwise one started on first use and kept for the life of
/// the process.
pub fn shared_broker() -> &'static str {
    static BOOTSTRAP: OnceLock<String> = OnceLock::new();
    BOOTSTRAP.get_or_init(|| {
        crate::init_logs();
        if let Ok(bootstrap) = std::env::var(TEST_KAFKA_ENV) {
            return bootstrap;
        }
        // The broker dies with the thread that started it (PR_SET_PDEATHSIG), and a test's
        // thread ends with the test: start it from a thread that lives as long as the process.
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("emberline-testkit-broker".into())
            .spawn(move || {
                let broker = TestBroker::start_in(shared_data_dir());
                let _ = sender.send(broker.bootstrap());
                loop {
                    std::thread::park();
                }
            })
            .expect("cannot spawn the broker thread");
        receiver
            .recv_timeout(Duration::from_secs(60))
            .expect("the shared test broker did not start")
    })
}

/// Creates one topic and returns its name.
pub async fn create_topic(bootstrap: &str, name: &str, partitions: i32) -> String {
    create_topics(bootstrap, &[TopicSpec::new(name, partitions)]).await;
    name.to_owned()
}

/// Creates topics (existing ones are kept), panicking with the broker's reason on failure.
pub async fn create_topics(bootstrap: &str, specs: &[TopicSpec]) {
    topics::ensure(bootstrap, specs)
        .await
        .unwrap_or_else(|error| panic!("cannot create topics {specs:?} on {bootstrap}: {error}"));
}

/// The shared broker lives until the process exits, so its directory is never dropped: name it
/// after the process and remove those of processes that are gone.
fn shared_data_dir() -> TempDir {
    const PREFIX: &str = "emberline-test-shared-broker-";
    let tmp = std::env::temp_dir();
    if let Ok(entries) = std::fs::read_dir(&tmp) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let pid = name
                .strip_prefix(PREFIX)
                .and_then(|rest| rest.parse::<u32>().ok());
            if pid.is_some_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists()) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    tempfile::Builder::new()
        .prefix(&format!("{PREFIX}{}", std::process::id()))
        .rand_bytes(0)
        .tempdir()
        .expect("cannot create the shared broker's directory")
}

/// A consumer (no group offsets committed) assigned to every partition of `topic` from its
/// beginning, for tests that read back what was produced. Blocking: call it from a blocking
/// thread.
pub fn reader_from_beginning(bootstrap: &str, topic: &str) -> BaseConsumer {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", crate::unique_name("test-reader"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("cannot create a Kafka consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap_or_else(|error| panic!("no metadata for {topic}: {error}"));
    let mut assignment = TopicPartitionList::new();
    for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
        assignment
            .add_partition_offset(topic, partition.id(), Offset::Beginning)
            .expect("a partition offset for the assignment");
    }
    consumer
        .assign(&assignment)
        .unwrap_or_else(|error| panic!("cannot assign {topic}: {error}"));
    consumer
}
