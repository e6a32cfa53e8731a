//! The main command end to end: `emberline-stack demo` on free ports with a private data
//! directory and database brings the whole pipeline up, simulated readings reach the dashboard's
//! API classified, and SIGTERM stops everything cleanly.
//!
//! Needs the workspace's binaries next to `emberline-stack` (`scripts/test` builds them) and
//! PostgreSQL at `DATABASE_URL`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use emberline_stack::DEFAULT_DATABASE_URL;
use serde_json::Value;

/// Kills the demo (and with it every child) if the test fails half-way.
struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn get(address: &str, path: &str) -> Option<Value> {
    let mut stream = TcpStream::connect(address).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then_some(())?;
    serde_json::from_str(body).ok()
}

/// Drops the test's database at the end, whether the test passed or not.
struct Database(String);

impl Drop for Database {
    fn drop(&mut self) {
        drop_database(&self.0);
    }
}

fn drop_database(name: &str) {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.into());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        use sqlx::Connection as _;
        if let Ok(mut connection) = sqlx::PgConnection::connect(&url).await {
            let drop = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
            let _ = sqlx::query(&drop).execute(&mut connection).await;
        }
    });
}

#[test]
fn demo_brings_the_pipeline_up_readings_reach_the_map_and_sigterm_stops_it() {
    let data = tempfile::tempdir().unwrap();
    let database = Database(format!("emberline_demo_test_{}", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_emberline-stack"))
        .args(["demo", "--free-ports", "--fresh", "--sensors", "40"])
        .args(["--database-name", &database.0, "--tile-url", ""])
        .arg("--data-dir")
        .arg(data.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut demo = Demo(child);
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            println!("demo| {line}");
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut output = Vec::new();
    let started = Instant::now();
    let dashboard = loop {
        let line = received
            .recv_timeout(Duration::from_secs(120).saturating_sub(started.elapsed()))
            .unwrap_or_else(|_| panic!("the demo printed no map URL:\n{}", output.join("\n")));
        output.push(line.clone());
        if let Some(url) = line.trim().strip_prefix("map:") {
            let url = url
                .trim()
                .trim_start_matches("http://")
                .trim_end_matches('/');
            break url.to_owned();
        }
    };
    assert!(
        output
            .iter()
            .any(|l| l.contains("agent edge-2") && l.contains("ready")),
        "two agents expected:\n{}",
        output.join("\n")
    );

    let deadline = Instant::now() + Duration::from_secs(90);
    let (features, classified) = loop {
        let sensors = get(&dashboard, "/api/sensors");
        let features = sensors
            .as_ref()
            .and_then(|s| s["features"].as_array())
            .cloned()
            .unwrap_or_default();
        let classified = features
            .iter()
            .filter(|f| f["properties"]["intensity"].is_string())
            .count();
        if classified >= 20 || Instant::now() > deadline {
            break (features, classified);
        }
        if let Ok(Some(status)) = demo.0.try_wait() {
            panic!("the demo exited ({status}) before readings reached the map");
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        classified >= 20,
        "expected simulated sensors on the map, classified; got {} features, {classified} classified",
        features.len()
    );
    let agents = get(&dashboard, "/api/agents").unwrap();
    println!("agents: {agents}");

    #[allow(unsafe_code)]
    // SAFETY: kill(2) on the demo's pid, which this test spawned and has not reaped.
    unsafe {
        libc::kill(demo.0.id() as libc::pid_t, libc::SIGTERM);
    }
    let stop_deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = demo.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < stop_deadline,
            "the demo did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    output.extend(received.try_iter());
    let text = output.join("\n");
    assert!(status.success(), "the demo exited with {status}:\n{text}");
    assert!(text.contains("stopped; data kept"), "{text}");
    assert!(
        !text.contains("killed"),
        "a service had to be killed:\n{text}"
    );
    drop(demo);
    drop(database);
}
