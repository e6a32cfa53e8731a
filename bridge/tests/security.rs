//! The bridge's security table (issue 8, `docs/security.md`): `/v1/batches` and
//! `/v1/heartbeats` refuse missing and wrong agent tokens; tokens never reach the logs (debug
//! level) or `/metrics`; hostile batches get their documented answer; slow clients are cut off;
//! TLS with a certificate made here. The real binary runs as a process with `RUST_LOG=debug`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{envelope, gzip, heartbeat, ndjson, read_topic};
use emberline_core::batch::BATCH_CONTENT_TYPE;
use emberline_testkit::{create_topic, shared_broker, unique_name};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const AGENT: &str = "edge-1";
/// edge-1's token: never in a log line or in `/metrics`.
const TOKEN: &str = "bridge-5ecret-edge1-Hq7w";
/// Another agent's token: valid, but not for edge-1's readings.
const OTHER_TOKEN: &str = "bridge-5ecret-edge2-Pz3k";
const WRONG_TOKEN: &str = "guess-5ecret-bridge-x9";
const SECRETS: [&str; 3] = [TOKEN, OTHER_TOKEN, WRONG_TOKEN];

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Bridge {
    child: Child,
    address: SocketAddr,
    raw_topic: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Bridge {
    async fn start(dir: tempfile::TempDir, extra: &[&str]) -> Self {
        let bootstrap = shared_broker();
        let raw_topic = create_topic(bootstrap, &unique_name("raw-data"), 1).await;
        let status_topic = create_topic(bootstrap, &unique_name("agent-status"), 1).await;
        let tokens = dir.path().join("agents.txt");
        std::fs::write(&tokens, format!("{AGENT} {TOKEN}\nedge-2 {OTHER_TOKEN}\n")).unwrap();
        let address = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let log = dir.path().join("bridge.log");
        let child = Command::new(env!("CARGO_BIN_EXE_emberline-bridge"))
            .args(["--listen", &address.to_string(), "--brokers", bootstrap])
            .args(["--raw-topic", &raw_topic, "--status-topic", &status_topic])
            .arg("--tokens-file")
            .arg(&tokens)
            .args(["--header-timeout", "1s", "--max-body-bytes", "65536"])
            .args(["--max-batch-bytes", "1048576"])
            .args(extra)
            .env("RUST_LOG", "debug")
            .env("EMBERLINE_LOG_FORMAT", "json")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let bridge = Self {
            child,
            address,
            raw_topic,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(address).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "bridge did not start: {}",
                bridge.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bridge
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn stop(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.logs()
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn assert_no_secrets(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(
            !text.contains(secret),
            "{what} contains the secret {secret:?}"
        );
    }
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
        let mut request = client.post(bridge.url(path));
        request = if path == "/v1/batches" {
            request
                .header("content-type", BATCH_CONTENT_TYPE)
                .header("content-encoding", "gzip")
                .body(batch.clone())
        } else {
            request
                .header("content-type", "application/json")
                .body(beat.clone())
        };
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let response = request.send().await.unwrap();
        assert_eq!(
            response.status().as_u16(),
            expected,
            "{path} with {auth:?}: {}",
            response.text().await.unwrap()
        );
    }
    let metrics = client
        .get(bridge.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("emberline_bridge"), "{metrics}");
    assert_no_secrets("/metrics", &metrics);
    let logs = bridge.stop();
    assert!(
        logs.contains("DEBUG"),
        "logs must be at debug level: {logs}"
    );
    assert_no_secrets("the bridge's debug log", &logs);
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
    let mut invalid_utf8 = good.clone();
    let at = invalid_utf8.len() - 3;
    invalid_utf8[at] = 0xFF;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_disconnected() {
    let bridge = Bridge::start(tempfile::tempdir().unwrap(), &[]).await;
    // (case, bytes sent before stalling); the bridge runs with --header-timeout 1s.
    let table: [(&str, &[u8]); 2] = [
        ("nothing", b""),
        (
            "half a request head",
            b"POST /v1/batches HTTP/1.1\r\nHost: x\r\nAuthor",
        ),
    ];
    for (case, partial) in table {
        let started = Instant::now();
        let mut stream = tokio::net::TcpStream::connect(bridge.address)
            .await
            .unwrap();
        stream.write_all(partial).await.unwrap();
        let mut seen = Vec::new();
        let closed =
            tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut seen)).await;
        assert!(closed.is_ok(), "{case}: still connected after 5 s");
        assert!(
            started.elapsed() >= Duration::from_millis(900),
            "{case}: closed at once"
        );
    }
}

fn make_certs(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    // A name of its own: with rcgen's default for both, the leaf would look self-signed.
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "emberline test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();
    let paths = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, cert.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_generated_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = make_certs(dir.path());
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let mut bridge = Bridge::start(dir, &["--tls-cert", cert, "--tls-key", key]).await;
    let beat = String::from_utf8(heartbeat(AGENT)).unwrap();
    let ca = ca.to_str().unwrap();
    let url = format!("https://localhost:{}/v1/heartbeats", bridge.address.port());
    let curl = |extra: &[&str], token: &str| {
        let output = Command::new("curl")
            .args([
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "10",
            ])
            .args([
                "-H",
                "content-type: application/json",
                "--data-binary",
                &beat,
            ])
            .args(["-H", &format!("authorization: Bearer {token}")])
            .args(extra)
            .arg(&url)
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
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
        assert_eq!(curl(extra, token), expected, "{case}");
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
