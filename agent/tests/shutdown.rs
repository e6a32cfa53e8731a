//! SIGTERM: the agent stops taking readings, finishes what is in flight and exits 0 within its
//! bound — with every listener and with MQTT and the alert bus switched off — and what it
//! acknowledged is in the buffer afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use emberline_agent::buffer::{Durability, Store, StoreConfig};
use emberline_core::AgentId;
use emberline_testkit::{free_port, wait_until};

const READING: &str = r#"{"timestamp":"2025-05-24T18:03:11.123456Z","latitude":34.05,"longitude":-118.25,"temperature":25,"humidity":40,"wind_speed":5,"wind_direction":90,"vegetation_density":0.3,"air_quality_index":20,"source_name":"shutdown-1"}"#;

fn start_agent(dir: &Path, http: u16, extra: &[String]) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_emberline-agent"));
    command
        .args([
            "run",
            "--agent-id",
            "shutdown-test",
            "--shutdown-secs",
            "30",
        ])
        .args(["--http-listen", &format!("127.0.0.1:{http}")])
        .arg("--buffer-path")
        .arg(dir.join("buffer.db"))
        // Nothing listens there: the forwarder keeps retrying, as on a cut-off node.
        .args([
            "--bridge-url",
            &format!("http://127.0.0.1:{}", free_port().unwrap()),
        ])
        .args(extra);
    if std::env::var_os("TEST_LOG").is_none() {
        command.stdout(Stdio::null()).stderr(Stdio::null());
    }
    command.spawn().unwrap()
}

/// Waits (bounded) for the child to exit after SIGTERM.
fn terminate(child: &mut Child, within: Duration) -> Option<ExitStatus> {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -TERM failed");
    let started = Instant::now();
    while started.elapsed() < within {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

async fn post_reading(http: u16) {
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{http}/ingest");
    let response = wait_until(
        "the agent to answer",
        Duration::from_secs(30),
        Duration::from_millis(50),
        || {
            let request = client
                .post(&url)
                .header("content-type", "application/json")
                .body(READING)
                .send();
            async move { request.await.ok() }
        },
    )
    .await;
    assert_eq!(response.status(), 202);
}

async fn exits_cleanly(extra: &[String]) {
    let dir = tempfile::tempdir().unwrap();
    let http = free_port().unwrap();
    let mut agent = start_agent(dir.path(), http, extra);
    post_reading(http).await;
    // Idle, it has nothing to finish: well inside its 30 s bound. A buffer handle kept alive by
    // mistake would hold it the full bound (twice: tasks, then the buffer thread).
    let status = terminate(&mut agent, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("the agent ({extra:?}) did not exit within 10 s of SIGTERM"));
    assert!(status.success(), "the agent exited with {status}");
    let store = Store::open(StoreConfig {
        path: dir.path().join("buffer.db"),
        agent_id: AgentId::parse("inspect").unwrap(),
        max_bytes: u64::MAX,
        durability: Durability::Full,
        max_rejected_bytes: emberline_agent::buffer::DEFAULT_MAX_REJECTED_BYTES,
    })
    .unwrap();
    assert_eq!(
        store.depth(),
        1,
        "the acknowledged reading is still buffered"
    );
}

#[tokio::test]
async fn sigterm_stops_the_agent_with_every_listener() {
    let ports = [free_port().unwrap(), free_port().unwrap()];
    exits_cleanly(&[
        "--mqtt-listen".into(),
        format!("127.0.0.1:{}", ports[0]),
        "--alerts-listen".into(),
        format!("127.0.0.1:{}", ports[1]),
    ])
    .await;
}

#[tokio::test]
async fn sigterm_stops_the_agent_without_mqtt_and_alerts() {
    exits_cleanly(&["--no-mqtt".into(), "--no-alerts".into()]).await;
}
