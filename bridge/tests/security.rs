//! The bridge's security table (issue 8, `docs/security.md`): `/v1/batches` and
//! `/v1/heartbeats` refuse missing and wrong agent tokens; tokens never reach the logs (debug
//! level) or `/metrics`; hostile batches get their documented answer; slow clients are cut off,
//! before or after their request head; TLS with a certificate made here. The real binary runs as
//! a process with `RUST_LOG=debug`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use common::{envelope, gzip, heartbeat, ndjson, read_topic};
use emberline_core::batch::BATCH_CONTENT_TYPE;
use emberline_testkit::assert_slow_http_clients_cut_off;
use emberline_testkit::{Certs, Process, assert_auth, assert_secrets_kept};
use emberline_testkit::{create_topic, shared_broker, unique_name};
use emberline_testkit::{curl, first_answer, free_address, trickle};

const AGENT: &str = "edge-1";
/// edge-1's token: never in a log line or in `/metrics`.
const TOKEN: &str = "bridge-5ecret-edge1-Hq7w";
/// Another agent's token: valid, but not for edge-1's readings.
const OTHER_TOKEN: &str = "bridge-5ecret-edge2-Pz3k";
const WRONG_TOKEN: &str = "guess-5ecret-bridge-x9";
const SECRETS: [&str; 3] = [TOKEN, OTHER_TOKEN, WRONG_TOKEN];

/// The bridge's `--header-timeout` in these tests.
const HEAD_BOUND: Duration = Duration::from_secs(1);
/// The bridge's `--body-timeout` in these tests.
const BODY_BOUND: Duration = Duration::from_secs(2);

struct Bridge {
    process: Process,
    address: SocketAddr,
    raw_topic: String,
    _dir: tempfile::TempDir,
}

impl Bridge {
    async fn start(dir: tempfile::TempDir, extra: &[&str]) -> Self {
        let bootstrap = shared_broker();
        let raw_topic = create_topic(bootstrap, &unique_name("raw-data"), 1).await;
        let status_topic = create_topic(bootstrap, &unique_name("agent-status"), 1).await;
        let tokens = dir.path().join("agents.txt");
        std::fs::write(&tokens, format!("{AGENT} {TOKEN}\nedge-2 {OTHER_TOKEN}\n")).unwrap();
        let address = free_address();
        let mut command = Command::new(env!("CARGO_BIN_EXE_emberline-bridge"));
        command
            .args(["--listen", &address.to_string(), "--brokers", bootstrap])
            .args(["--raw-topic", &raw_topic, "--status-topic", &status_topic])
            .arg("--tokens-file")
            .arg(&tokens)
            .args(["--header-timeout", "1s", "--body-timeout", "2s"])
            .args(["--max-body-bytes", "65536", "--max-batch-bytes", "1048576"])
            .args(extra);
        let mut process = Process::spawn(&mut command, &dir.path().join("bridge.log"));
        process.wait_listening(&[address]).await;
        Self {
            process,
            address,
            raw_topic,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    fn stop(&mut self) -> String {
        self.process.stop()
    }

    async fn metrics(&self) -> String {
        let response = reqwest::get(self.url("/metrics")).await.unwrap();
        response.text().await.unwrap()
    }
}

fn assert_no_secrets(what: &str, text: &str) {
    emberline_testkit::assert_no_secrets(what, text, &SECRETS);
}

async fn post_batch(bridge: &Bridge, body: Vec<u8>, auth: Option<&str>) -> (u16, String) {
    let mut request = reqwest::Client::new()
        .post(bridge.url("/v1/batches"))
        .header("content-type", BATCH_CONTENT_TYPE)
        .header("content-encoding", "gzip")
        .body(gzip(&body));
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_refuse_missing_and_wrong_tokens() {
    let mut bridge = Bridge::start(tempfile::tempdir().unwrap(), &[]).await;
    let client = reqwest::Client::new();
    let batch = gzip(&ndjson(&[envelope(AGENT, "ridge-7", 1)]));
    let beat = heartbeat(AGENT);
    let right = format!("Bearer {TOKEN}");
    let other = format!("Bearer {OTHER_TOKEN}");
    let wrong = format!("Bearer {WRONG_TOKEN}");
    let basic = format!("Basic {TOKEN}");
    // (path, Authorization header, expected status)
    let table: [(&str, Option<&str>, u16); 12] = [
        ("/v1/batches", None, 401),
        ("/v1/batches", Some(&wrong), 401),
        ("/v1/batches", Some(&basic), 401),
        ("/v1/batches", Some("Bearer "), 401),
        ("/v1/batches", Some(&other), 403),
        ("/v1/batches", Some(&right), 200),
        ("/v1/heartbeats", None, 401),
        ("/v1/heartbeats", Some(&wrong), 401),
        ("/v1/heartbeats", Some(&basic), 401),
        ("/v1/heartbeats", Some("Bearer "), 401),
        ("/v1/heartbeats", Some(&other), 403),
        ("/v1/heartbeats", Some(&right), 200),
    ];
    for (path, auth, expected) in table {
        let request = client.post(bridge.url(path));
        let request = if path == "/v1/batches" {
            request
                .header("content-type", BATCH_CONTENT_TYPE)
                .header("content-encoding", "gzip")
                .body(batch.clone())
        } else {
            request
                .header("content-type", "application/json")
                .body(beat.clone())
        };
        assert_auth(request, auth, expected).await;
    }
    let metrics = client.get(bridge.url("/metrics")).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    let logs = bridge.stop();
    assert_secrets_kept(&metrics, "emberline_bridge", &logs, &SECRETS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_batches_get_their_documented_answer() {
    let bridge = Bridge::start(tempfile::tempdir().unwrap(), &[]).await;
    let auth = format!("Bearer {TOKEN}");
    let xss = "<img src=x onerror=alert(1)>";
    let sql = "ridge'); DROP TABLE readings;--";
    let good = envelope(AGENT, "ridge-7", 1);
    let text = String::from_utf8(good.clone()).unwrap();
    let nested = text.replacen(
        "\"reading\":{",
        &format!(
            "\"reading\":{{\"extra\":{}0{},",
            "[".repeat(10_000),
            "]".repeat(10_000)
        ),
        1,
    );
    let huge = text.replacen("\"temperature\":", "\"temperature\":1e400,\"_t\":", 1);
    // Inside a string (the sensor's name), so that the line is JSON but for its UTF-8.
    let mut invalid_utf8 = good.clone();
    let at = invalid_utf8
        .windows(7)
        .position(|w| w == b"ridge-7")
        .unwrap();
    invalid_utf8[at + 2] = 0xFF;
    // (case, NDJSON body before gzip, expected status)
    let table: Vec<(&str, Vec<u8>, u16)> = vec![
        ("XSS source_name", ndjson(&[envelope(AGENT, xss, 1)]), 200),
        (
            "SQL metacharacters",
            ndjson(&[envelope(AGENT, sql, 1)]),
            200,
        ),
        ("10,000 nested arrays", nested.into_bytes(), 400),
        ("number 1e400", huge.into_bytes(), 400),
        ("invalid UTF-8", invalid_utf8, 400),
        ("not JSON", b"{\"reading\": [".to_vec(), 400),
        (
            "over --max-batch-bytes once inflated",
            vec![b' '; 2 << 20],
            413,
        ),
    ];
    for (case, body, expected) in table {
        let (status, answer) = post_batch(&bridge, body, Some(&auth)).await;
        assert_eq!(status, expected, "{case}: {answer}");
    }
    // A body larger than --max-body-bytes as sent.
    let response = reqwest::Client::new()
        .post(bridge.url("/v1/batches"))
        .header("content-type", BATCH_CONTENT_TYPE)
        .header("authorization", &auth)
        .body(vec![b'x'; 100 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status().as_u16(),
        413,
        "body over --max-body-bytes"
    );
    // Stored verbatim: the exact bytes reach Kafka.
    let records = read_topic(
        shared_broker(),
        &bridge.raw_topic,
        Duration::from_secs(30),
        |r| r.len() >= 2,
    )
    .await;
    let keys: Vec<&str> = records.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, vec![xss, sql]);
    assert_eq!(records[0].payload, envelope(AGENT, xss, 1));
}

/// A `POST /v1/heartbeats` head from edge-1 for a body of `length` bytes.
fn heartbeat_head(length: usize) -> String {
    format!(
        "POST /v1/heartbeats HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_disconnected() {
    let bridge = Bridge::start(tempfile::tempdir().unwrap(), &[]).await;
    let half_body = format!("{}{{\"agent_id\":", heartbeat_head(300));
    let bounds = (HEAD_BOUND, BODY_BOUND);
    assert_slow_http_clients_cut_off(bridge.address, bounds, half_body.as_bytes()).await;
    let metrics = bridge.metrics().await;
    let counted = "emberline_bridge_rejections_total{reason=\"body_timeout\"} 1";
    assert!(metrics.contains(counted), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_trickles_in_within_the_bound_is_accepted() {
    let bridge = Bridge::start(tempfile::tempdir().unwrap(), &[]).await;
    let body = heartbeat(AGENT);
    let head = heartbeat_head(body.len());
    let mut stream = trickle(bridge.address, head.as_bytes(), &body).await;
    let answer = first_answer(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_generated_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::create(dir.path());
    let (cert, key) = (certs.cert.to_str().unwrap(), certs.key.to_str().unwrap());
    let mut bridge = Bridge::start(dir, &["--tls-cert", cert, "--tls-key", key]).await;
    let beat = String::from_utf8(heartbeat(AGENT)).unwrap();
    let ca = certs.ca.to_str().unwrap();
    let url = format!("https://localhost:{}/v1/heartbeats", bridge.address.port());
    let post = |extra: &[&str], token: &str| {
        let auth = format!("authorization: Bearer {token}");
        let mut options = vec!["-H", "content-type: application/json", "-H", &auth];
        options.extend(["--data-binary", &beat]);
        options.extend(extra);
        curl(&options, &url)
    };
    // (case, curl options, token, expected status; "000": no HTTP answer at all)
    let table: [(&str, &[&str], &str, &str); 3] = [
        ("trusted CA, right token", &["--cacert", ca], TOKEN, "200"),
        (
            "trusted CA, wrong token",
            &["--cacert", ca],
            WRONG_TOKEN,
            "401",
        ),
        ("unknown CA", &[], TOKEN, "000"),
    ];
    for (case, extra, token, expected) in table {
        assert_eq!(post(extra, token), expected, "{case}");
    }
    let plain = reqwest::Client::new()
        .get(format!("http://{}/healthz", bridge.address))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP on the TLS port: {plain:?}");
    let logs = bridge.stop();
    assert!(logs.contains(r#""tls":true"#), "{logs}");
    assert_no_secrets("the bridge's debug log", &logs);
}
