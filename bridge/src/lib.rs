//! `emberline-bridge`: the cluster's door for edge agents (design §3). Agents `POST` batches of
//! reading envelopes (NDJSON, usually gzip) and heartbeats; the bridge checks them and produces
//! them to Kafka — each batch line's exact bytes to `raw-data`, keyed by `source_name`; each
//! heartbeat to `agent-status`, keyed by agent id.
//!
//! # What a 200 promises
//! A `200 {"accepted": n}` from `POST /v1/batches` means Kafka acknowledged **every** one of the
//! batch's `n` records, produced by an idempotent producer with `acks=all`. Anything less — a
//! failed delivery, a queue full, Kafka slower than `--produce-timeout` — is a `503` with
//! `Retry-After`, and the agent keeps the batch and retries. A retried batch may be produced twice;
//! duplicates carry the same `reading_id` and die at PostgreSQL (design §2) — except a
//! byte-identical repeat of a batch this process produced recently, which is answered 200 from
//! memory ([`repeat`]). A batch with one bad
//! line is refused whole (`400`, naming the line) and nothing of it is produced.
//!
//! # Invariants
//! - Records of one request are sent in batch order through one producer, so one sensor's
//!   readings keep their order on their partition.
//! - With tokens configured, a token names one agent, and every envelope (or heartbeat) of a
//!   request must come from that agent (`401` without a valid token, `403` on a mismatch).
//! - Memory is bounded: bodies count against `--max-in-flight-bytes` before they are read and as
//!   they are decompressed (`503` past it; `413` past `--max-body-bytes` or
//!   `--max-batch-bytes`), and librdkafka's queue is bounded by the same figure.
//! - Shutdown stops accepting, lets in-flight batches finish, flushes the producer and gives up
//!   after `--shutdown-timeout`.
//!
//! # Running
//! `emberline-bridge` listens on `127.0.0.1:8081` by default (`--listen`, `0.0.0.0:8081` in a
//! cluster), so it runs beside an agent on one laptop; every flag has an `EMBERLINE_*` twin.
//! Without `--tokens-file` it accepts every request and warns at start.
//!
//! # Layout
//! [`config`] flags; [`auth`] tokens; [`limit`] the in-flight bytes semaphore; [`body`]
//! decompression and batch checks; [`repeat`] batches produced recently; [`kafka`] the producer; [`readiness`]; [`http`] the routes
//! (`app(state) -> Router`); [`metrics`]; [`server`] start-up and graceful shutdown.

pub mod auth;
pub mod body;
pub mod config;
pub mod error;
pub mod http;
pub mod kafka;
pub mod limit;
pub mod metrics;
pub mod readiness;
pub mod repeat;
pub mod server;

pub use config::{Config, ConfigError, LogFormat};
pub use emberline_service::{shutdown, telemetry};
pub use error::ApiError;
pub use http::{AppState, app};
pub use server::{Bridge, StartError};
