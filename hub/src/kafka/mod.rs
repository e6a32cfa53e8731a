//! Kafka at the edge of both roles: a group consumer that stores offsets only when told
//! ([`consumer`]), an idempotent `acks=all` producer that heals itself ([`producer`]), and
//! dead-letter records with headers naming what went wrong and where ([`dlq`]).

pub mod consumer;
pub mod dlq;
pub mod producer;

pub use consumer::{Batch, GroupConsumer};
pub use dlq::DeadLetter;
pub use producer::{OutRecord, ProduceError, Producer};
