//! The page in real headless Chromium (Debian's `/usr/bin/chromium`, or `EMBERLINE_CHROMIUM`),
//! driven by `dashboard/web/test/browser.mjs` through playwright-core, against readings sent
//! through the hub's real detector and writer. Set `EMBERLINE_UPDATE_SCREENSHOT=1` to refresh
//! `docs/img/dashboard.png`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::{HOSTILE, Heat, Pipeline, fleet, heartbeat, reading, spawn_dashboard};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

fn web() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("web")
}

/// `node browser.mjs <scenario> <url> <args>`, stdin and stdout piped.
fn node(scenario: &str, url: &str, args: &Value) -> (Child, Lines<BufReader<ChildStdout>>) {
    let chromium =
        std::env::var("EMBERLINE_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "no Chromium at {chromium}: `apt-get install chromium` (scripts/install-tools does)"
    );
    let mut child = Command::new("node")
        .arg(web().join("test/browser.mjs"))
        .args([scenario, url, &args.to_string()])
        .current_dir(web())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("cannot run node: install Node.js (scripts/install-tools does)");
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    (child, lines)
}

/// Reads `lines` until one starts with `prefix`; the rest of it.
async fn line_starting(lines: &mut Lines<BufReader<ChildStdout>>, prefix: &str) -> Option<String> {
    let read = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.strip_prefix(prefix) {
                return Some(rest.trim().to_owned());
            }
        }
        None
    };
    tokio::time::timeout(Duration::from_secs(90), read)
        .await
        .unwrap_or_else(|_| panic!("the browser script printed no {prefix} within 90s"))
}

async fn result(
    mut child: Child,
    mut lines: Lines<BufReader<ChildStdout>>,
    scenario: &str,
) -> Value {
    let found = line_starting(&mut lines, "RESULT").await;
    let status = child.wait().await.unwrap();
    assert!(
        status.success(),
        "browser scenario {scenario} failed ({status}); see its stderr above"
    );
    serde_json::from_str(&found.expect("no RESULT line")).unwrap()
}

async fn scenario(name: &str, url: &str, args: Value) -> Value {
    let (child, lines) = node(name, url, &args);
    result(child, lines, name).await
}

fn screenshot_path() -> PathBuf {
    if std::env::var_os("EMBERLINE_UPDATE_SCREENSHOT").is_some() {
        return Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/img/dashboard.png");
    }
    std::env::temp_dir().join(format!("emberline-dashboard-{}.png", std::process::id()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_map_shows_the_pipeline_live_safely_and_after_a_restart() {
    let pipeline = Pipeline::start().await;
    let mut sent: Vec<(String, &str)> = Vec::new();
    for (envelope, heat) in fleet() {
        let kind = match heat {
            Heat::High => "high",
            Heat::Medium => "medium",
            Heat::Low => "low",
        };
        sent.push((envelope.key().to_owned(), kind));
        pipeline.send(&[envelope]).await;
    }
    // Last heard from two hours ago: the one-hour window hides it.
    let old = reading("quiet-low", 7, (65.0, 80.0), Heat::Low, 7200);
    sent.push(("quiet-low".into(), "low"));
    pipeline.send(&[old]).await;
    pipeline.heartbeat(&heartbeat("edge-1", 2, 4)).await;
    pipeline
        .heartbeat(&heartbeat("edge-silent", 900, 120))
        .await;
    pipeline.wait_for_classified_sensors(5).await;
    pipeline
        .wait_for_count("SELECT count(*) FROM agents", 2)
        .await;

    let first = spawn_dashboard(pipeline.dashboard_config()).await;
    let expect: Vec<Value> = sent
        .iter()
        .map(|(n, k)| json!({"name": n, "intensity": k}))
        .collect();
    let screenshot = screenshot_path();
    let checked = scenario(
        "check",
        &first.url(),
        json!({"expect": expect, "hostile": HOSTILE, "hiddenByWindow": "quiet-low",
               "staleAgent": "edge-silent", "screenshot": screenshot}),
    )
    .await;
    assert_eq!(checked["markers"], 5, "{checked}");
    assert!(screenshot.exists());
    scenario("alerts", &first.url(), json!({})).await;

    // A new high reading through raw-data → detector → anomaly-data → the open page.
    let args = json!({"name": "live-high", "intensity": "high", "withinMs": 2000});
    let (mut child, mut lines) = node("live", &first.url(), &args);
    line_starting(&mut lines, "READY")
        .await
        .expect("the page never went live");
    let stdin = child.stdin.as_mut().unwrap();
    stdin.write_all(b"GO\n").await.unwrap();
    stdin.flush().await.unwrap();
    pipeline
        .send(&[reading("live-high", 1, (10.0, 100.0), Heat::High, 0)])
        .await;
    let live = result(child, lines, "live").await;
    println!(
        "new high reading on the page {} ms after it was sent",
        live["latencyMs"]
    );
    pipeline.wait_for_classified_sensors(6).await;

    let before = scenario("sensors", &first.url(), json!({"count": 6})).await;
    first.stop().await;
    // The restarted dashboard cannot reach its tiles either: markers and counts still work.
    let mut config = pipeline.dashboard_config();
    config.tile_url = "http://127.0.0.1:9/{z}/{x}/{y}.png".into();
    let second = spawn_dashboard(config).await;
    let after = scenario(
        "sensors",
        &second.url(),
        json!({"count": 6, "allowTileErrors": true}),
    )
    .await;
    assert_eq!(before["total"], 6, "{before}");
    assert_eq!(after, before, "the restarted dashboard shows other sensors");
    second.stop().await;
    pipeline.stop().await;
}
