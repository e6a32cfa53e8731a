//! `emberline-hub`: the central roles of Emberline (design §2, §4, §5, §7), one binary with one
//! subcommand per role, each deployable and scalable on its own through its consumer group.
//!
//! ```text
//! raw-data ──▶ detect ──▶ anomaly-data            (rules: core's engine, hot-reloaded)
//!                └──────▶ raw-data.dlq            (records that can never be classified)
//! raw-data, anomaly-data, agent-status ──▶ write ──▶ PostgreSQL (readings, classifications,
//!                                                    sensors, agents, dead letters)
//! ```
//!
//! # Invariants
//! - **At least once in, exactly once in effect.** A role stores a record's offset only after
//!   its output is safe: acknowledged by Kafka (`acks=all`, idempotent producer) for the
//!   detector, committed in PostgreSQL for the writer. A crash or a rebalance re-reads, never
//!   skips; the detector is deterministic and the writer idempotent (`reading_id`), so a re-read
//!   changes nothing.
//! - **Pause, don't skip.** Kafka or PostgreSQL away: the batch in hand is retried with backoff
//!   until it goes through. **Poison moves on.** A record that can never be processed goes to
//!   its `.dlq` topic (and the dead-letter table) and its partition keeps flowing.
//! - **Late data never wins.** Latest state per sensor and per agent moves forward only by the
//!   record's own timestamp.
//! - **Bounded shutdown.** SIGTERM stops fetching; the batch in hand gets half the
//!   `--shutdown-timeout` to finish, then the stored offsets are committed and the process exits.
//!
//! # Layout
//! [`config`] flags; [`detector`] the detect role ([`detector::classify`] its pure core,
//! [`detector::rules`] hot reload); [`writer`] the write role ([`writer::decode`] pure,
//! [`writer::store`] SQL, [`writer::retention`]); [`db`] pool, migrations, failure
//! classification; [`kafka`] consumer, producer, dead letters; [`http`] probes and metrics;
//! [`role`] what both roles share; [`metrics`]; [`shutdown`]; [`telemetry`].

pub mod config;
pub mod db;
pub mod detector;
pub mod http;
pub mod kafka;
pub mod metrics;
pub mod role;
pub mod writer;

pub use config::{Cli, Command, Common, ConfigError, LogFormat};
pub use detector::{DetectConfig, Detector};
pub use emberline_service::{shutdown, telemetry};
pub use role::RoleError;
pub use writer::{WriteConfig, Writer};
