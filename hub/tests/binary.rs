//! The `emberline-hub` binary as a process: migrate, probes and metrics over real HTTP, and a
//! graceful, bounded exit on SIGTERM.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::{Child, Command, ExitStatus, Stdio};

use common::{EVERY, Topics, WITHIN, count};
use emberline_core::Profile;
use emberline_testkit::{TestDb, free_port, shared_broker, wait_until};

fn hub() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_emberline-hub"));
    command.stdout(Stdio::null());
    if std::env::var_os("TEST_LOG").is_none() {
        command.stderr(Stdio::null());
    }
    command
}

/// Sends SIGTERM and waits (bounded) for the exit.
fn terminate(child: &mut Child) -> ExitStatus {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    emberline_testkit::wait_until_blocking("the hub to exit", WITHIN, EVERY, || {
        child.try_wait().unwrap()
    })
}

async fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let response = reqwest::get(format!("http://127.0.0.1:{port}{path}"))
        .await
        .ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.ok()?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_then_write_serves_probes_and_exits_cleanly_on_sigterm() {
    let bootstrap = tokio::task::block_in_place(shared_broker);
    let db = TestDb::create().await;
    let topics = Topics::create(bootstrap, 1).await;
    let status = hub()
        .args(["migrate", "--database-url", &db.url])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(count(&db.pool, "SELECT count(*) FROM sensors").await, 0);

    let port = free_port().unwrap();
    let mut child = hub()
        .args(["write", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--brokers", bootstrap, "--database-url", &db.url])
        .args([
            "--raw-topic",
            &topics.raw,
            "--anomaly-topic",
            &topics.anomaly,
        ])
        .args(["--status-topic", &topics.status])
        .args(["--anomaly-dlq-topic", &topics.anomaly_dlq])
        .spawn()
        .unwrap();
    wait_until("the writer to be ready", WITHIN, EVERY, || async {
        get(port, "/readyz")
            .await
            .filter(|(status, _)| *status == 200)
    })
    .await;
    assert_eq!(get(port, "/healthz").await.unwrap().0, 200);
    let (status, metrics) = get(port, "/metrics").await.unwrap();
    assert_eq!(status, 200);
    assert!(
        metrics.contains("emberline_hub_batch_size_records"),
        "{metrics}"
    );
    assert!(terminate(&mut child).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detect_refuses_to_start_on_a_broken_rules_file_and_says_why() {
    let rules = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(rules.path(), "name = ").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_emberline-hub"))
        .args(["detect", "--rules"])
        .arg(rules.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is not valid"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detect_reports_not_ready_while_its_topics_are_missing() {
    let bootstrap = tokio::task::block_in_place(shared_broker);
    let port = free_port().unwrap();
    let mut child = hub()
        .args([
            "detect",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--brokers",
            bootstrap,
        ])
        .args(["--raw-topic", &emberline_testkit::unique_name("missing")])
        .spawn()
        .unwrap();
    let (status, body) = wait_until("an answer from /readyz", WITHIN, EVERY, || async {
        get(port, "/readyz").await
    })
    .await;
    assert_eq!(status, 503);
    assert!(body.contains("does not exist"), "{body}");
    assert!(terminate(&mut child).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_rules_file_at_once() {
    let bootstrap = tokio::task::block_in_place(shared_broker);
    let topics = Topics::create(bootstrap, 1).await;
    let rules = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(rules.path(), Profile::builtin_toml("default").unwrap()).unwrap();
    let port = free_port().unwrap();
    let mut child = hub()
        .args([
            "detect",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--brokers",
            bootstrap,
        ])
        .args([
            "--raw-topic",
            &topics.raw,
            "--anomaly-topic",
            &topics.anomaly,
        ])
        .args([
            "--dlq-topic",
            &topics.raw_dlq,
            "--rules-poll",
            "1h",
            "--rules",
        ])
        .arg(rules.path())
        .spawn()
        .unwrap();
    let rules_info = |version: &'static str| async move {
        let (_, metrics) = get(port, "/metrics").await?;
        let line = format!("emberline_hub_rules_info{{version=\"{version}\"}} 1");
        metrics.contains(&line).then_some(())
    };
    wait_until("the default rules", WITHIN, EVERY, || {
        rules_info("default-2")
    })
    .await;

    std::fs::write(rules.path(), Profile::builtin_toml("seed-compat").unwrap()).unwrap();
    let status = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    wait_until("the rules reloaded on SIGHUP", WITHIN, EVERY, || {
        rules_info("seed-compat-1")
    })
    .await;
    assert!(terminate(&mut child).success());
}
