//! The binary: flags from the environment, serves, and exits cleanly on SIGTERM.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Stdio};
use std::time::Duration;

use emberline_testkit::{TestDb, free_port, wait_until};

#[tokio::test]
async fn it_serves_and_stops_on_sigterm() {
    let db = TestDb::create().await;
    let port = free_port().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_emberline-dashboard"))
        .env("EMBERLINE_DASHBOARD_LISTEN", format!("127.0.0.1:{port}"))
        .env("DATABASE_URL", &db.url)
        .env("EMBERLINE_DASHBOARD_MIGRATE", "true")
        .env("EMBERLINE_KAFKA_BROKERS", "127.0.0.1:9")
        .env("EMBERLINE_DASHBOARD_TILE_URL", "")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    wait_until(
        "the dashboard is ready",
        Duration::from_secs(30),
        Duration::from_millis(100),
        || async {
            let response = client.get(format!("{url}/readyz")).send().await.ok()?;
            (response.status() == 200).then_some(())
        },
    )
    .await;
    let sensors: serde_json::Value = client
        .get(format!("{url}/api/sensors"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        sensors["features"],
        serde_json::json!([]),
        "migrated, empty"
    );
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = wait_until(
        "the dashboard exits",
        Duration::from_secs(15),
        Duration::from_millis(50),
        || std::future::ready(child.try_wait().unwrap()),
    )
    .await;
    assert!(status.success(), "exit status {status}");
}
