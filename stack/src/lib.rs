//! The local stack Emberline runs on, for one machine and for tests: a Kafka-compatible broker
//! (Tansu 0.6.0 with SQLite storage, see `docs/decisions/0001-tansu-for-local-kafka.md`), the
//! topics Emberline uses, and checks on PostgreSQL.
//!
//! The demo (`emberline-stack up`), the test-support crate and CI all go through this crate, so
//! there is one way to start a broker and one list of topics.
//!
//! # Invariants
//! - Topics are created explicitly ([`topics::ensure`]): Tansu does not auto-create them.
//! - The broker advertises `127.0.0.1`, never `localhost` (clients would try `::1` first).
//! - A broker started here dies with the thread that started it (`PR_SET_PDEATHSIG`), so a
//!   crashed test or supervisor leaves no broker behind.

pub mod broker;
pub mod demo;
pub mod postgres;
pub mod topics;

pub use broker::{Broker, BrokerConfig, BrokerError, find_tansu};
pub use topics::{STANDARD_TOPICS, TopicSpec};

/// The PostgreSQL server used when `DATABASE_URL` is not set: the local one, trust auth.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Hides a password in a connection URL before it is printed.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}
