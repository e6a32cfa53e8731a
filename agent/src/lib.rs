//! The edge agent (design §1–3): takes readings in over HTTP and MQTT, commits them to a local
//! SQLite buffer, and forwards them to the bridge.
//!
//! # What a "yes" means
//! - HTTP `202 Accepted` and MQTT `PUBACK` are sent only after the reading is committed to the
//!   buffer ([`buffer::Buffer::append`] has returned; fsync per commit by default).
//! - A full buffer answers `503` + `Retry-After` (HTTP) or refuses the publish (MQTT 3.1.1:
//!   closes without `PUBACK`; MQTT 5: `PUBACK` 0x97); it never evicts a reading it has
//!   acknowledged.
//! - An MQTT QoS 1 payload that fails validation is kept in the buffer's rejected table before
//!   it is answered: acknowledged under 3.1.1 (no negative `PUBACK` there), `PUBACK` 0x99 with a
//!   reason string under MQTT 5.
//! - A reading leaves the buffer only when the bridge has answered `200` for it (Kafka has it),
//!   or, refused by the bridge as malformed, into the buffer's quarantine table.

pub mod alerts;
pub mod auth;
pub mod bridge_client;
pub mod buffer;
pub mod config;
pub mod forwarder;
pub mod http;
pub mod metrics;
pub mod mqtt;
pub mod run;
