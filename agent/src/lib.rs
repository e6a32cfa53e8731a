//! The edge agent (design §1–3): takes readings in over HTTP and MQTT, commits them to a local
//! SQLite buffer, and forwards them to the bridge.
//!
//! # What a "yes" means
//! - HTTP `202 Accepted` and MQTT `PUBACK` are sent only after the reading is committed to the
//!   buffer ([`buffer::Buffer::append`] has returned; fsync per commit by default).
//! - A full buffer answers `503` + `Retry-After` (HTTP) or refuses the publish (MQTT); it never
//!   evicts a reading it has acknowledged.
//! - A reading leaves the buffer only when the bridge has answered `200` for it (Kafka has it),
//!   or, refused by the bridge as malformed, into the buffer's quarantine table.

pub mod alerts;
pub mod auth;
pub mod buffer;
pub mod config;
pub mod forwarder;
pub mod http;
pub mod metrics;
pub mod mqtt;
pub mod run;
