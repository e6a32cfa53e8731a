//! Test support for every component's integration tests (a dev-dependency).
//!
//! - [`shared_broker`]: a Kafka-compatible broker for this test process — the one the test
//!   command started (`EMBERLINE_TEST_KAFKA=host:port`) or, failing that, one started here on a
//!   free port. Tests share it and keep apart through [`unique_name`] topics.
//! - [`TestBroker::start`]: a private broker a test may `kill -9` and restart.
//! - [`TestDb::create`]: a fresh PostgreSQL database on `DATABASE_URL`, dropped afterwards.
//! - [`wait_until`]: poll a condition with a deadline instead of sleeping.
//! - [`Process`]: a service binary as a process, its debug-level JSON logs kept in a file.
//! - [`security`]: what the security tests share — [`Certs`] (a CA and a certificate it
//!   signed), [`assert_cut_off`] (a slow client must be disconnected within its bound),
//!   [`assert_no_secrets`] (in logs and metrics), [`free_address`].
//! - [`init_logs`]: quiet unless `TEST_LOG` is set.
//!
//! Helpers panic with a clear message when the environment is broken: a test that cannot get
//! its broker or database must fail, never pass by skipping.

#![allow(clippy::expect_used, clippy::panic)] // test support: failing loudly is the job

mod broker;
mod db;
mod process;
pub mod security;
mod wait;

use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};

pub use broker::{TestBroker, create_topic, create_topics, reader_from_beginning, shared_broker};
pub use db::TestDb;
pub use emberline_stack::broker::free_port;
pub use process::Process;
pub use security::{
    Certs, SLOW_HANDSHAKES, SLOW_HEADS, assert_auth, assert_cut_off, assert_no_secrets,
    assert_secrets_kept, assert_slow_http_clients_cut_off, assert_tls_listener, closed_within,
    curl, first_answer, free_address, trickle,
};
pub use wait::{wait_until, wait_until_blocking};

/// Installs a tracing subscriber once per process; silent unless `TEST_LOG` is set (its value,
/// when not `1`, is the filter, e.g. `TEST_LOG=emberline=debug`).
pub fn init_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let Ok(filter) = std::env::var("TEST_LOG") else {
            return;
        };
        let filter = if filter == "1" {
            "info".to_owned()
        } else {
            filter
        };
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    });
}

/// A name no other test (in this or a concurrent process) uses: `{prefix}-{pid}-{n}-{random}`.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let random: u32 = rand::random();
    format!("{prefix}-{}-{n}-{random:08x}", std::process::id())
}
