//! The dashboard's listener (issue 8, `docs/security.md`): plain HTTP without a certificate, TLS
//! with one made here, slow clients cut off either way — and the live stream, a response that
//! lasts, is not cut by those bounds. The real binary runs as a process (PostgreSQL for its
//! pool; no broker: the live feed waits for one, the stream stays open).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use emberline_testkit::{Certs, Process, SLOW_HEADS, TestDb, assert_cut_off};
use emberline_testkit::{assert_tls_listener, curl, free_address};

/// `--header-timeout` and `--body-timeout` in these tests.
const BOUND: Duration = Duration::from_secs(1);

/// The dashboard binary with short bounds and `extra` flags, listening on its address.
async fn dashboard(
    db: &TestDb,
    dir: &tempfile::TempDir,
    extra: &[String],
) -> (Process, SocketAddr) {
    let address = free_address();
    let mut command = Command::new(env!("CARGO_BIN_EXE_emberline-dashboard"));
    command
        .args(["--listen", &address.to_string(), "--brokers", "127.0.0.1:9"])
        .args(["--database-url", &db.url, "--tile-url", ""])
        .args(["--header-timeout", "1s", "--body-timeout", "1s"])
        .args(extra);
    let mut process = Process::spawn(&mut command, &dir.path().join("dashboard.log"));
    process.wait_listening(&[address]).await;
    (process, address)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_cuts_off_slow_clients_but_not_the_live_stream() {
    let db = TestDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let (mut dashboard, address) = dashboard(&db, &dir, &[]).await;
    let url = |path: &str| format!("http://{address}{path}");
    assert_eq!(curl(&[], &url("/healthz")), "200");
    for (case, partial) in SLOW_HEADS {
        assert_cut_off(case, address, partial, BOUND).await;
    }
    // An open stream outlives both bounds: after its `ready` event, three times the bound
    // passes without the stream ending.
    let mut stream = reqwest::get(url("/api/stream")).await.unwrap();
    assert_eq!(stream.status(), 200);
    let first = stream.chunk().await.unwrap().unwrap();
    assert!(
        String::from_utf8_lossy(&first).contains("event: ready"),
        "{first:?}"
    );
    let next = tokio::time::timeout(BOUND * 3, stream.chunk()).await;
    assert!(next.is_err(), "the stream ended or failed: {next:?}");
    assert_eq!(curl(&[], &url("/healthz")), "200");
    let logs = dashboard.stop();
    assert!(logs.contains(r#""tls":false"#), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_generated_certificate() {
    let db = TestDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::create(dir.path());
    let (mut dashboard, address) = dashboard(&db, &dir, &certs.flags()).await;
    assert_tls_listener(address, &certs, &["/healthz", "/"], BOUND).await;
    let logs = dashboard.stop();
    assert!(logs.contains(r#""tls":true"#), "{logs}");
}
