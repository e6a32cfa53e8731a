//! Simulated sensors and load generators for Emberline (issue 6 completes them).
//!
//! # Layout
//! - [`cli`]: the `emberline-sim` flags, each with an `EMBERLINE_SIM_*` twin, checked once.
//! - [`fire`]: `fire`, sensors over a wildfire region sending to agents (HTTP batches, HTTP
//!   single or MQTT, with device tokens) while a fire spreads with the wind; the scenario itself ([`fire::model`]) is pure and seeded.
//! - [`mqtt_load`]: `mqtt-load`, many devices publishing over MQTT at QoS 0 or 1; counts sent,
//!   acknowledged and failed publishes and the publish → PUBACK latency.
//! - [`payload`]: one device's readings (design §1), deterministic and valid, built without IO.
//! - [`tokens`]: device tokens in the agent's file format.
//! - [`histogram`]: a fixed-bucket, lock-free latency histogram (HdrHistogram-style).
//!
//! # Invariants
//! - Every run ends by itself: the message budget, `--duration` and `--max-time` bound the
//!   publishing, `--drain-timeout` bounds the wait for PUBACKs, and a hard limit after that
//!   aborts whatever is left.
//! - Every publish handed to a connection is counted exactly once, as acknowledged (QoS 1) or
//!   written (QoS 0), or as failed.
//! - A connection holds at most `--inflight` unacknowledged publishes; a PUBACK from the agent
//!   means the reading is committed (design §3), so acknowledged msgs/s is durable msgs/s.

pub mod cli;
pub mod fire;
pub mod histogram;
pub mod mqtt_load;
pub mod payload;
pub mod tokens;
