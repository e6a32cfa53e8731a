//! The hub roles' HTTP side (issue 8, `docs/security.md`): plain HTTP without a certificate, TLS
//! with one made here, and slow clients cut off either way. The real binary (`detect`, whose
//! listener is the same as `write`'s) runs as a process; it needs no broker to serve its probes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use emberline_testkit::{Certs, Process, SLOW_HEADS, assert_cut_off, assert_tls_listener};
use emberline_testkit::{curl, free_address};

/// `--header-timeout` in these tests.
const HEAD_BOUND: Duration = Duration::from_secs(1);

/// `emberline-hub detect` with short bounds and `extra` flags, listening on its address.
async fn detect(dir: &tempfile::TempDir, extra: &[String]) -> (Process, SocketAddr) {
    let address = free_address();
    let mut command = Command::new(env!("CARGO_BIN_EXE_emberline-hub"));
    command
        .args(["detect", "--listen", &address.to_string()])
        // Nothing listens there: the probes are served all the same.
        .args(["--brokers", "127.0.0.1:9"])
        .args(["--header-timeout", "1s", "--body-timeout", "1s"])
        .args(extra);
    let mut process = Process::spawn(&mut command, &dir.path().join("hub.log"));
    process.wait_listening(&[address]).await;
    (process, address)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_serves_probes_and_cuts_off_slow_clients() {
    let dir = tempfile::tempdir().unwrap();
    let (mut hub, address) = detect(&dir, &[]).await;
    assert_eq!(curl(&[], &format!("http://{address}/healthz")), "200");
    for (case, partial) in SLOW_HEADS {
        assert_cut_off(case, address, partial, HEAD_BOUND).await;
    }
    let logs = hub.stop();
    assert!(logs.contains(r#""tls":false"#), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_generated_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::create(dir.path());
    let (mut hub, address) = detect(&dir, &certs.flags()).await;
    assert_tls_listener(address, &certs, &["/healthz", "/metrics"], HEAD_BOUND).await;
    let logs = hub.stop();
    assert!(logs.contains(r#""tls":true"#), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_that_cannot_be_used_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let output = Command::new(env!("CARGO_BIN_EXE_emberline-hub"))
        .args(["detect", "--brokers", "127.0.0.1:9", "--tls-cert"])
        .arg(&missing)
        .arg("--tls-key")
        .arg(&missing)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("missing.pem"), "{stderr}");
}
