//! TLS: the HTTP and MQTT listeners with a certificate made here (plain clients refused), and the
//! forwarder reaching a TLS bridge only when it trusts its CA.

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use emberline_agent::bridge_client::BridgeClient;
use emberline_listen::Acceptor;
use emberline_listen::http::HttpOptions;
use emberline_testkit::{Certs, closed_within, curl, wait_until};
use secrecy::SecretString;
use tokio::io::AsyncWriteExt as _;
use tokio_util::sync::CancellationToken;

use super::{AGENT_TOKEN, Agent, DEVICE, DEVICE_TOKEN, WRONG_TOKEN};
use super::{assert_no_secrets, reading};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_on_http_and_mqtt_listeners() {
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::create(dir.path());
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
    let ca = certs.ca.to_str().unwrap();
    let healthz = format!("https://127.0.0.1:{}/healthz", agent.http.port());
    assert_eq!(curl(&["--cacert", ca], &healthz), "200");
    // Without the CA the certificate is not trusted.
    assert_eq!(curl(&[], &healthz), "000", "an unknown CA must be refused");

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
    let certs = Certs::create(dir.path());
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
    let delivered = || async {
        let ready = client.get(agent.url("/readyz")).send().await.ok()?;
        let ready: serde_json::Value = ready.json().await.ok()?;
        (ready["buffer_readings"] == 0 && ready["bridge_reachable"] == true).then_some(())
    };
    let every = Duration::from_millis(100);
    wait_until("delivered", Duration::from_secs(20), every, delivered).await;
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
