//! `emberline-hub detect`: raw-data → rules → anomaly-data (design §4).
//!
//! A consumer-group member reads batches of raw records, classifies each with the rules in use
//! ([`classify`], pure and deterministic) and produces the classified envelope to anomaly-data
//! with the same key. A record that can never be classified goes to the dead-letter topic with
//! headers naming the error and its origin ([`crate::kafka::dlq`]).
//!
//! # What a stored offset promises
//! The offsets of a batch are stored only once Kafka acknowledged **every** output record of it
//! (idempotent producer, `acks=all`), dead letters included. A failed produce is retried with
//! backoff, the whole batch again, for as long as it takes: nothing is skipped. A crash re-reads
//! at most the unfinished batches, and since the output is deterministic the re-read produces the
//! same records again, which the writer absorbs by `reading_id`.

pub mod classify;
pub mod rules;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use classify::DetectError;
use emberline_core::{Envelope, Profile};
use rdkafka::message::{Message as _, OwnedMessage};
use tokio_util::sync::CancellationToken;

use crate::config::{
    Common, ConfigError, DEFAULT_ANOMALY_TOPIC, DEFAULT_RAW_DLQ_TOPIC, DEFAULT_RAW_TOPIC,
    check_topic, parse_duration,
};
use crate::http::{AppState, Listening, Ready, ReadyFuture};
use crate::kafka::{DeadLetter, GroupConsumer, OutRecord, Producer};
use crate::metrics::Metrics;
use crate::role::{self, RoleError};
use rules::SharedRules;

/// `emberline-hub detect`.
#[derive(Debug, Clone, Args)]
pub struct DetectConfig {
    #[command(flatten)]
    pub common: Common,
    /// Address of the HTTP listener (probes, metrics). Use 0.0.0.0:8091 in a cluster.
    #[arg(
        long,
        env = "EMBERLINE_DETECT_LISTEN",
        default_value = "127.0.0.1:8091"
    )]
    pub listen: SocketAddr,
    /// Consumer group; instances of one group share the partitions.
    #[arg(
        long,
        env = "EMBERLINE_DETECT_GROUP",
        default_value = "emberline-hub-detect"
    )]
    pub group: String,
    #[arg(long, env = "EMBERLINE_DETECT_RAW_TOPIC", default_value = DEFAULT_RAW_TOPIC)]
    pub raw_topic: String,
    #[arg(long, env = "EMBERLINE_DETECT_ANOMALY_TOPIC", default_value = DEFAULT_ANOMALY_TOPIC)]
    pub anomaly_topic: String,
    /// Where records that can never be classified go.
    #[arg(long, env = "EMBERLINE_DETECT_DLQ_TOPIC", default_value = DEFAULT_RAW_DLQ_TOPIC)]
    pub dlq_topic: String,
    /// Built-in rules profile, used when no --rules file is given: default or seed-compat.
    #[arg(long, env = "EMBERLINE_DETECT_PROFILE", default_value = "default")]
    pub profile: String,
    /// A rules file (TOML, see core/rules/default.toml), watched and reloaded when it changes
    /// or on SIGHUP.
    #[arg(long, env = "EMBERLINE_DETECT_RULES")]
    pub rules: Option<PathBuf>,
    /// How often the rules file is checked for changes; a change is applied once two checks in a
    /// row read the same text (SIGHUP applies it at once).
    #[arg(long, env = "EMBERLINE_DETECT_RULES_POLL", default_value = "2s", value_parser = parse_duration)]
    pub rules_poll: Duration,
}

impl DetectConfig {
    /// The defaults, talking to `brokers`.
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            common: Common::new(brokers),
            listen: crate::config::default_listen(8091),
            group: "emberline-hub-detect".into(),
            raw_topic: DEFAULT_RAW_TOPIC.into(),
            anomaly_topic: DEFAULT_ANOMALY_TOPIC.into(),
            dlq_topic: DEFAULT_RAW_DLQ_TOPIC.into(),
            profile: "default".into(),
            rules: None,
            rules_poll: Duration::from_secs(2),
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.common.validate()?;
        check_topic("--raw-topic", &self.raw_topic)?;
        check_topic("--anomaly-topic", &self.anomaly_topic)?;
        check_topic("--dlq-topic", &self.dlq_topic)?;
        if self.rules_poll < Duration::from_millis(50) {
            return Err(ConfigError("--rules-poll must be at least 50ms".into()));
        }
        Ok(())
    }
}

/// A detector, built and subscribed, not yet running.
#[derive(Debug)]
pub struct Detector {
    config: DetectConfig,
    consumer: GroupConsumer,
    producer: Producer,
    rules: SharedRules,
    /// The rules file's text the rules in use were loaded from: the watcher's starting point, so
    /// an edit made between the load and the watcher's start is not missed.
    rules_text: Option<String>,
    metrics: Arc<Metrics>,
    /// The HTTP side's TLS and bounds, checked at start.
    listening: Listening,
}

impl Detector {
    /// Checks the configuration, loads the rules and subscribes.
    pub fn new(config: DetectConfig) -> Result<Self, RoleError> {
        config.validate()?;
        let (profile, rules_text) = rules::load(config.rules.as_deref(), &config.profile)?;
        let listening = Listening::new(&config.common)?;
        let metrics = Arc::new(Metrics::new());
        metrics.rules_version(&profile.version);
        metrics.rules_file_valid.set(1);
        let consumer =
            GroupConsumer::subscribe(&config.common, &config.group, &[&config.raw_topic])?;
        let producer = Producer::new(&config.common, "detect")?;
        tracing::info!(rules = %profile.name, version = %profile.version, "detector ready");
        Ok(Self {
            config,
            consumer,
            producer,
            rules: SharedRules::new(profile),
            rules_text,
            metrics,
            listening,
        })
    }

    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// The rules in use now.
    pub fn rules(&self) -> Arc<Profile> {
        self.rules.current()
    }

    /// Runs until `token` is cancelled: HTTP side, rules watcher, lag reporter and the loop.
    pub async fn run(
        self,
        listener: tokio::net::TcpListener,
        token: CancellationToken,
    ) -> Result<(), RoleError> {
        let ready = Arc::new(DetectReady {
            producer: self.producer.clone(),
            topics: vec![
                self.config.raw_topic.clone(),
                self.config.anomaly_topic.clone(),
                self.config.dlq_topic.clone(),
            ],
        });
        let state = AppState::new(self.metrics.clone(), ready);
        // Before anything answers: a SIGHUP must never find the process without its handler.
        let hangups = self.config.rules.is_some().then(rules::hangups).flatten();
        let mut tasks = role::background(
            (listener, self.listening.clone()),
            state,
            &self.consumer,
            self.config.common.lag_interval,
            &token,
        );
        if let Some(path) = self.config.rules.clone() {
            let (rules, metrics) = (self.rules.clone(), self.metrics.clone());
            let triggers = (self.config.rules_poll, hangups);
            let file = (path, self.rules_text.clone());
            tasks.spawn(rules::watch(file, rules, metrics, triggers, token.clone()));
        }
        let stop = role::hard_stop(&token, self.config.common.shutdown_timeout / 2);
        self.consume(&token, &stop).await;
        let timeout = self.config.common.shutdown_timeout;
        role::finish(self.consumer, tasks, timeout).await;
        self.producer.close(timeout / 4);
        Ok(())
    }

    /// Until `token` is cancelled; the batch in hand then gets `stop`'s grace to finish.
    async fn consume(&self, token: &CancellationToken, stop: &CancellationToken) {
        let common = &self.config.common;
        while let Some(batch) = self
            .consumer
            .next_batch(common.batch_size, common.batch_linger, token)
            .await
        {
            let started = Instant::now();
            let (records, dead) = self.outputs(&batch);
            let produced = role::retry("kafka", &self.metrics, stop, || {
                self.producer.send_all(&records)
            });
            if produced.await.is_none() {
                tracing::warn!(
                    records = batch.len(),
                    "shutting down before Kafka acknowledged a batch; it will be read again"
                );
                return;
            }
            self.consumer.store(&batch);
            self.count(&batch, &dead, started);
        }
    }

    /// The output records of a batch, in order, and its dead letters. A classified record larger
    /// than Kafka takes (it is a little larger than the raw one) is a dead letter too: produced,
    /// it would fail every time and hold the partition.
    fn outputs(&self, batch: &[OwnedMessage]) -> (Vec<OutRecord>, Vec<DeadLetter>) {
        let profile = self.rules.current();
        let max = self.config.common.max_record_bytes();
        let mut records = Vec::with_capacity(batch.len());
        let mut dead = Vec::new();
        for message in batch {
            let classified = classify::classify_record(&profile, message.payload())
                .map(|envelope| self.classified(message, &envelope))
                .and_then(|record| match record.size() {
                    size if size > max => Err(DetectError::TooLarge { size, max }),
                    _ => Ok(record),
                });
            match classified {
                Ok(record) => records.push(record),
                Err(error) => {
                    tracing::warn!(topic = message.topic(), partition = message.partition(), offset = message.offset(), %error, "record sent to the dead-letter topic");
                    let letter = DeadLetter::new(message, error.code(), error.to_string());
                    records.push(letter.to_record(&self.config.dlq_topic, "detector", max));
                    dead.push(letter);
                }
            }
        }
        (records, dead)
    }

    /// The `anomaly-data` record of a classified reading.
    fn classified(&self, message: &OwnedMessage, envelope: &Envelope) -> OutRecord {
        OutRecord {
            topic: self.config.anomaly_topic.clone(),
            // The record's own key (the bridge's: `source_name`), so one sensor's
            // classifications keep their order as its readings did.
            key: Some(
                message
                    .key()
                    .map_or_else(|| envelope.key().as_bytes().to_vec(), <[u8]>::to_vec),
            ),
            payload: envelope.to_vec(),
            headers: Vec::new(),
        }
    }

    fn count(&self, batch: &[OwnedMessage], dead: &[DeadLetter], started: Instant) {
        let metrics = &self.metrics;
        metrics.records_done(&self.config.raw_topic, batch.len() as u64);
        for letter in dead {
            metrics.dead_letter(&letter.source_topic, letter.error_code);
        }
        metrics.batch_records.observe(batch.len() as f64);
        metrics
            .batch_seconds
            .observe(started.elapsed().as_secs_f64());
    }
}

/// Ready when the brokers answer and the detector's topics exist.
struct DetectReady {
    producer: Producer,
    topics: Vec<String>,
}

impl Ready for DetectReady {
    fn check(&self) -> ReadyFuture<'_> {
        Box::pin(self.producer.check(self.topics.clone()))
    }
}
