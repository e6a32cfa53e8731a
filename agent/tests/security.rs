//! The agent's security table (issue 8, `docs/security.md`): every endpoint that needs a token
//! refuses without one and with a wrong one; tokens and passwords never reach the logs (debug
//! level) or `/metrics`; hostile input gets its documented answer; slow clients are cut off; TLS
//! on the HTTP and MQTT listeners with a certificate made here, and the forwarder reaching a TLS
//! bridge. The real binary runs as a process with `RUST_LOG=debug`, its stderr kept.
//!
//! Each table is one row per case with its expected answer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use emberline_agent::bridge_client::BridgeClient;
use emberline_listen::Acceptor;
use emberline_listen::http::HttpOptions;
use secrecy::SecretString;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;

const DEVICE: &str = "ridge-7";
/// The device's token: it must never appear in a log line or in `/metrics`.
const DEVICE_TOKEN: &str = "dev-5ecret-ridge7-Q9xv";
/// A guess an attacker sends: not to be logged either.
const WRONG_TOKEN: &str = "guess-5ecret-zz81";
/// The agent's token for the bridge.
const AGENT_TOKEN: &str = "agent-5ecret-edge-Lm42";
const SECRETS: [&str; 3] = [DEVICE_TOKEN, WRONG_TOKEN, AGENT_TOKEN];

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A CA and a certificate it signed for `localhost` and 127.0.0.1, as PEM files in `dir`.
struct Certs {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn make_certs(dir: &Path) -> Certs {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
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
    let certs = Certs {
        ca: dir.join("ca.pem"),
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    std::fs::write(&certs.ca, ca.pem()).unwrap();
    std::fs::write(&certs.cert, cert.pem()).unwrap();
    std::fs::write(&certs.key, key.serialize_pem()).unwrap();
    certs
}

/// The agent binary, running with device tokens, debug logs into a file, and short timeouts.
struct Agent {
    child: Child,
    http: SocketAddr,
    mqtt: SocketAddr,
    log: PathBuf,
    buffer: PathBuf,
    _dir: tempfile::TempDir,
}

impl Agent {
    async fn start(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, extra).await
    }

    async fn start_in(dir: tempfile::TempDir, extra: &[&str]) -> Self {
        let tokens = dir.path().join("devices.txt");
        std::fs::write(&tokens, format!("{DEVICE} {DEVICE_TOKEN}\n")).unwrap();
        let (http, mqtt) = (
            SocketAddr::from(([127, 0, 0, 1], free_port())),
            SocketAddr::from(([127, 0, 0, 1], free_port())),
        );
        let log = dir.path().join("agent.log");
        let buffer = dir.path().join("buffer.db");
        let child = Command::new(env!("CARGO_BIN_EXE_emberline-agent"))
            .args(["run", "--agent-id", "edge-sec", "--no-alerts"])
            .args(["--http-listen", &http.to_string()])
            .args(["--mqtt-listen", &mqtt.to_string()])
            .arg("--buffer-path")
            .arg(&buffer)
            .arg("--device-tokens-file")
            .arg(&tokens)
            .args(["--http-header-timeout-secs", "1"])
            .args(["--mqtt-connect-timeout-secs", "1"])
            .args(["--heartbeat-secs", "1"])
            .args(extra)
            .env("EMBERLINE_AGENT_TOKEN", AGENT_TOKEN)
            .env("RUST_LOG", "debug")
            .env("EMBERLINE_LOG_FORMAT", "json")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let agent = Self {
            child,
            http,
            mqtt,
            log,
            buffer,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(agent.http).await.is_err()
            || tokio::net::TcpStream::connect(agent.mqtt).await.is_err()
        {
            assert!(
                Instant::now() < deadline,
                "agent did not start: {}",
                agent.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        agent
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops the agent (SIGKILL: what is acknowledged is committed) and returns its logs.
    fn stop(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.logs()
    }

    /// The `source_name` of every buffered reading (the agent must be stopped).
    fn buffered_sources(&self) -> Vec<String> {
        let output = Command::new(env!("CARGO_BIN_EXE_emberline-agent"))
            .args(["buffer", "export", "--path"])
            .arg(&self.buffer)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(|line| {
                let envelope: serde_json::Value = serde_json::from_str(line).unwrap();
                envelope["reading"]["source_name"]
                    .as_str()
                    .unwrap_or_else(|| panic!("no source_name in {line}"))
                    .to_owned()
            })
            .collect()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn reading(source: &str) -> String {
    format!(
        r#"{{"timestamp":"2025-05-24T18:03:11Z","latitude":34.05,"longitude":-118.25,"temperature":42.7,"humidity":12,"wind_speed":18.4,"wind_direction":270,"vegetation_density":0.82,"air_quality_index":160,"source_name":{}}}"#,
        serde_json::to_string(source).unwrap()
    )
}

fn assert_no_secrets(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(
            !text.contains(secret),
            "{what} contains the secret {secret:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_endpoints_refuse_missing_and_wrong_tokens() {
    let mut agent = Agent::start(&[]).await;
    let client = reqwest::Client::new();
    let single = reading(DEVICE);
    let batch = format!("[{single}]");
    let right = format!("Bearer {DEVICE_TOKEN}");
    let wrong = format!("Bearer {WRONG_TOKEN}");
    let basic = format!("Basic {DEVICE_TOKEN}");
    // (path, body, Authorization header, expected status)
    let table: [(&str, &str, Option<&str>, u16); 10] = [
        ("/ingest", &single, None, 401),
        ("/ingest", &single, Some(&wrong), 401),
        ("/ingest", &single, Some(&basic), 401),
        ("/ingest", &single, Some("Bearer "), 401),
        ("/ingest", &single, Some(&right), 202),
        ("/v1/readings", &batch, None, 401),
        ("/v1/readings", &batch, Some(&wrong), 401),
        ("/v1/readings", &batch, Some(&basic), 401),
        ("/v1/readings", &batch, Some("Bearer "), 401),
        ("/v1/readings", &batch, Some(&right), 202),
    ];
    for (path, body, auth, expected) in table {
        let mut request = client
            .post(agent.url(path))
            .header("content-type", "application/json")
            .body(body.to_owned());
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
        .get(agent.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("emberline_agent"), "{metrics}");
    assert_no_secrets("/metrics", &metrics);
    let logs = agent.stop();
    assert!(
        logs.contains("DEBUG"),
        "logs must be at debug level: {logs}"
    );
    assert_no_secrets("the agent's debug log", &logs);
}

/// (protocol, username, password, accepted, what mosquitto_pub reports)
type MqttRow<'a> = (&'a str, Option<&'a str>, Option<&'a str>, bool, &'a str);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_connect_refuses_missing_and_wrong_credentials() {
    let mut agent = Agent::start(&[]).await;
    let port = agent.mqtt.port().to_string();
    let message = reading(DEVICE);
    // (protocol, username, password, accepted, what mosquitto_pub reports)
    let table: [MqttRow<'_>; 10] = [
        ("mqttv311", None, None, false, "bad user name or password"),
        (
            "mqttv311",
            Some(DEVICE),
            Some(WRONG_TOKEN),
            false,
            "bad user name or password",
        ),
        (
            "mqttv311",
            Some("nobody"),
            Some(DEVICE_TOKEN),
            false,
            "bad user name or password",
        ),
        (
            "mqttv311",
            Some(DEVICE),
            None,
            false,
            "bad user name or password",
        ),
        ("mqttv311", Some(DEVICE), Some(DEVICE_TOKEN), true, ""),
        ("mqttv5", None, None, false, "not authorized"),
        (
            "mqttv5",
            Some(DEVICE),
            Some(WRONG_TOKEN),
            false,
            "bad user name or password",
        ),
        (
            "mqttv5",
            Some("nobody"),
            Some(DEVICE_TOKEN),
            false,
            "bad user name or password",
        ),
        (
            "mqttv5",
            Some(DEVICE),
            None,
            false,
            "bad user name or password",
        ),
        ("mqttv5", Some(DEVICE), Some(DEVICE_TOKEN), true, ""),
    ];
    for (version, user, password, accepted, says) in table {
        let mut command = Command::new("mosquitto_pub");
        command.args(["-h", "127.0.0.1", "-p", &port, "-V", version, "-q", "1"]);
        command.args([
            "-i",
            "sec-test",
            "-t",
            "sensors/ridge-7/readings",
            "-m",
            &message,
        ]);
        if let Some(user) = user {
            command.args(["-u", user]);
        }
        if let Some(password) = password {
            command.args(["-P", password]);
        }
        let output = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).to_lowercase();
        assert_eq!(
            output.status.success(),
            accepted,
            "{version} {user:?}/{password:?}: {stderr}"
        );
        assert!(stderr.contains(says), "{version} {user:?}: {stderr}");
    }
    let logs = agent.stop();
    assert_no_secrets("the agent's debug log", &logs);
    assert_eq!(agent.buffered_sources(), vec![DEVICE; 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_gets_its_documented_answer() {
    let mut agent = Agent::start(&[]).await;
    let client = reqwest::Client::new();
    let xss = "<img src=x onerror=alert(1)>";
    let sql = "ridge'); DROP TABLE readings;--";
    let base = reading("hostile");
    let nested = format!(
        "{},\"extra\":{}0{}}}",
        &base[..base.len() - 1],
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let long_ok = "s".repeat(128);
    let long_bad = "s".repeat(129);
    let mut invalid_utf8 = reading("bad-utf8").into_bytes();
    let at = invalid_utf8.len() - 3;
    invalid_utf8[at] = 0xFF;
    let huge_body = format!(
        "{},\"pad\":\"{}\"}}",
        &base[..base.len() - 1],
        "x".repeat(70 * 1024)
    );
    let with = |field: &str, value: &str| {
        base.replacen(
            &format!("\"{field}\":"),
            &format!("\"{field}\":{value},\"_was\":"),
            1,
        )
    };
    // (case, body, expected status, text the answer must hold)
    let table: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "XSS source_name",
            reading(xss).into_bytes(),
            202,
            "reading_id",
        ),
        (
            "XSS in an extra field",
            with(
                "source_name",
                "\"x\",\"note\":\"<script>alert(1)</script>\"",
            )
            .into_bytes(),
            202,
            "reading_id",
        ),
        (
            "SQL metacharacters",
            reading(sql).into_bytes(),
            202,
            "reading_id",
        ),
        (
            "temperature 1e400",
            with("temperature", "1e400").into_bytes(),
            400,
            "malformed",
        ),
        (
            "temperature -1e308",
            with("temperature", "-1e308").into_bytes(),
            422,
            "temperature",
        ),
        (
            "seq beyond u64",
            with("source_name", "\"x\",\"seq\":18446744073709551616").into_bytes(),
            422,
            "seq",
        ),
        (
            "10,000 nested arrays",
            nested.into_bytes(),
            400,
            "malformed",
        ),
        (
            "source_name of 128 chars",
            reading(&long_ok).into_bytes(),
            202,
            "reading_id",
        ),
        (
            "source_name of 129 chars",
            reading(&long_bad).into_bytes(),
            422,
            "source_name",
        ),
        ("body over the limit", huge_body.into_bytes(), 413, ""),
        ("invalid UTF-8", invalid_utf8, 400, "malformed"),
        ("not JSON", b"{\"temperature\": ".to_vec(), 400, "malformed"),
        (
            "control character in source_name",
            reading("a\u{7}b").into_bytes(),
            422,
            "source_name",
        ),
    ];
    for (case, body, expected, says) in table {
        let response = client
            .post(agent.url("/ingest"))
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {DEVICE_TOKEN}"))
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert_eq!(status, expected, "{case}: {text}");
        assert!(text.contains(says), "{case}: {text}");
    }
    assert!(agent.http.port() > 0);
    agent.stop();
    let stored = agent.buffered_sources();
    assert_eq!(stored, vec![xss, "x", sql, &long_ok], "stored verbatim");
}

/// Reads until the server closes; `None` if it is still open after `within`.
async fn closed_within(
    stream: &mut (impl tokio::io::AsyncRead + Unpin),
    within: Duration,
) -> Option<Vec<u8>> {
    let mut seen = Vec::new();
    let read = tokio::time::timeout(within, stream.read_to_end(&mut seen)).await;
    match read {
        Ok(_) => Some(seen),
        Err(_) => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_disconnected() {
    let agent = Agent::start(&[]).await;
    // (case, port, bytes sent before stalling); the agent runs with 1 s bounds.
    let table: [(&str, SocketAddr, &[u8]); 5] = [
        ("HTTP: nothing", agent.http, b""),
        (
            "HTTP: half a request head",
            agent.http,
            b"POST /ingest HTTP/1.1\r\nHost: x\r\nContent-",
        ),
        ("MQTT: nothing", agent.mqtt, b""),
        (
            "MQTT: half a CONNECT",
            agent.mqtt,
            &[0x10, 0x18, 0x00, 0x04, b'M', b'Q'],
        ),
        ("MQTT: a fixed header only", agent.mqtt, &[0x10]),
    ];
    for (case, address, partial) in table {
        let started = Instant::now();
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        stream.write_all(partial).await.unwrap();
        let closed = closed_within(&mut stream, Duration::from_secs(5)).await;
        assert!(closed.is_some(), "{case}: still connected after 5 s");
        assert!(
            started.elapsed() >= Duration::from_millis(900),
            "{case}: closed at once"
        );
    }
    // A client that keeps trickling a request head is cut off as well.
    let started = Instant::now();
    let mut stream = tokio::net::TcpStream::connect(agent.http).await.unwrap();
    stream
        .write_all(b"POST /ingest HTTP/1.1\r\n")
        .await
        .unwrap();
    let trickle = async {
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if stream.write_all(b"X-Slow: 1\r\n").await.is_err() {
                return;
            }
        }
    };
    trickle.await;
    assert!(
        started.elapsed() < Duration::from_secs(7),
        "a trickling client must be disconnected (took {:?})",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_on_http_and_mqtt_listeners() {
    let dir = tempfile::tempdir().unwrap();
    let certs = make_certs(dir.path());
    let (cert, key) = (certs.cert.to_str().unwrap(), certs.key.to_str().unwrap());
    let mut agent = Agent::start_in(dir, &["--tls-cert", cert, "--tls-key", key]).await;
    let body = reading(DEVICE).into_bytes();

    // HTTPS with the CA: hyper-rustls (the forwarder's client) and curl.
    let token = Some(SecretString::from(DEVICE_TOKEN.to_owned()));
    let https = format!("https://localhost:{}", agent.http.port());
    let tls_client =
        BridgeClient::new(&https, Some(&certs.ca), token, Duration::from_secs(10)).unwrap();
    let answer = tls_client
        .post("/ingest", "application/json", None, body.clone())
        .await
        .unwrap();
    assert_eq!(answer.status.as_u16(), 202, "{}", answer.body);
    let curl = |extra: &[&str]| {
        Command::new("curl")
            .args([
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "10",
            ])
            .args(extra)
            .arg(format!("https://127.0.0.1:{}/healthz", agent.http.port()))
            .output()
            .unwrap()
    };
    let ca = certs.ca.to_str().unwrap();
    let output = curl(&["--cacert", ca]);
    assert_eq!(String::from_utf8_lossy(&output.stdout), "200", "{output:?}");
    // Without the CA the certificate is not trusted.
    assert!(!curl(&[]).status.success(), "an unknown CA must be refused");

    // MQTT over TLS with mosquitto_pub --cafile, and the token still checked.
    let port = agent.mqtt.port().to_string();
    let publish = |password: &str, tls: bool| {
        let mut command = Command::new("mosquitto_pub");
        command.args([
            "-h",
            "localhost",
            "-p",
            &port,
            "-q",
            "1",
            "-u",
            DEVICE,
            "-P",
            password,
        ]);
        command.args(["-t", "sensors/ridge-7/readings", "-m", &reading(DEVICE)]);
        if tls {
            command.args(["--cafile", ca]);
        }
        command.output().unwrap()
    };
    let output = publish(DEVICE_TOKEN, true);
    assert!(output.status.success(), "{output:?}");
    assert!(
        !publish(WRONG_TOKEN, true).status.success(),
        "wrong password over TLS"
    );

    // Plain clients on the TLS ports are refused.
    assert!(
        !publish(DEVICE_TOKEN, false).status.success(),
        "plain MQTT on the TLS port"
    );
    let plain = reqwest::Client::new()
        .get(format!("http://{}/healthz", agent.http))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP on the TLS port: {plain:?}");
    let mut raw = tokio::net::TcpStream::connect(agent.mqtt).await.unwrap();
    raw.write_all(&[0x10, 0x0C, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 60, 0, 0])
        .await
        .unwrap();
    let seen = closed_within(&mut raw, Duration::from_secs(5))
        .await
        .expect("closed");
    assert!(
        !seen.starts_with(&[0x20]),
        "no CONNACK to a plain client: {seen:?}"
    );

    let logs = agent.stop();
    assert!(logs.contains(r#""tls":true"#), "{logs}");
    assert_no_secrets("the agent's debug log", &logs);
    assert_eq!(
        agent.buffered_sources().len(),
        2,
        "one over HTTPS, one over MQTTS"
    );
}

/// A stand-in bridge with TLS: counts the batches and heartbeats it is sent, and the bearer
/// token they carry.
async fn tls_bridge(
    certs: &Certs,
) -> (
    SocketAddr,
    Arc<Mutex<Vec<(String, String)>>>,
    CancellationToken,
) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = |path: &'static str, seen: Arc<Mutex<Vec<(String, String)>>>| {
        post(move |headers: axum::http::HeaderMap| async move {
            let auth = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            seen.lock().unwrap().push((path.to_owned(), auth));
            (axum::http::StatusCode::OK, "{\"accepted\":1}")
        })
    };
    let router = Router::new()
        .route("/v1/batches", record("/v1/batches", seen.clone()))
        .route("/v1/heartbeats", record("/v1/heartbeats", seen.clone()));
    let acceptor = Acceptor::new(Some((&certs.cert, &certs.key)), &[b"http/1.1"]).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(emberline_listen::http::serve(
        listener,
        router,
        acceptor,
        HttpOptions::default(),
        shutdown.clone(),
    ));
    (address, seen, shutdown)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_forwarder_reaches_a_tls_bridge_with_the_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let certs = make_certs(dir.path());
    let (bridge, seen, _shutdown) = tls_bridge(&certs).await;
    let url = format!("https://localhost:{}", bridge.port());
    let ca = certs.ca.to_str().unwrap().to_owned();
    let mut agent = Agent::start_in(dir, &["--bridge-url", &url, "--bridge-ca-file", &ca]).await;
    let response = reqwest::Client::new()
        .post(agent.url("/ingest"))
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {DEVICE_TOKEN}"))
        .body(reading(DEVICE))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let paths: Vec<String> = seen
            .lock()
            .unwrap()
            .iter()
            .map(|(p, _)| p.clone())
            .collect();
        if paths.iter().any(|p| p == "/v1/batches") && paths.iter().any(|p| p == "/v1/heartbeats") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "nothing reached the TLS bridge: {paths:?} {}",
            agent.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ready: serde_json::Value = client
            .get(agent.url("/readyz"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if ready["buffer_readings"] == 0 && ready["bridge_reachable"] == true {
            break;
        }
        assert!(Instant::now() < deadline, "not delivered: {ready}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (path, auth) in seen.lock().unwrap().iter() {
        assert_eq!(auth, &format!("Bearer {AGENT_TOKEN}"), "{path}");
    }
    let logs = agent.stop();
    assert_no_secrets("the agent's debug log", &logs);
    assert!(agent.buffered_sources().is_empty(), "delivered and removed");

    // Without the CA file the bridge's certificate is not trusted: nothing is delivered.
    let (bridge, seen, _shutdown) = tls_bridge(&certs).await;
    let url = format!("https://localhost:{}", bridge.port());
    let mut agent = Agent::start(&["--bridge-url", &url]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        seen.lock().unwrap().is_empty(),
        "an untrusted bridge must not be sent anything"
    );
    let logs = agent.stop();
    assert!(
        logs.to_lowercase().contains("certificate"),
        "the log names the cause: {logs}"
    );
    let _ = std::io::stderr().flush();
}
