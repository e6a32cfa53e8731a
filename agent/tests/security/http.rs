//! HTTP: the ingest endpoints refuse missing and wrong device tokens, hostile input gets its
//! documented answer, and slow clients — before or after their request head — are cut off.

use std::time::{Duration, Instant};

use emberline_testkit::{assert_auth, assert_secrets_kept, assert_slow_http_clients_cut_off};
use emberline_testkit::{first_answer, trickle};
use tokio::io::AsyncWriteExt as _;

use super::{Agent, BODY_BOUND, DEVICE, DEVICE_TOKEN, HEAD_BOUND, SECRETS, WRONG_TOKEN, reading};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_endpoints_refuse_missing_and_wrong_tokens() {
    let mut agent = Agent::start(&[]).await;
    let client = reqwest::Client::new();
    let single = reading(DEVICE);
    let batch = format!("[{single}]");
    let right = format!("Bearer {DEVICE_TOKEN}");
    let wrong = format!("Bearer {WRONG_TOKEN}");
    let basic = format!("Basic {DEVICE_TOKEN}");
    // The scheme's case does not matter (RFC 7235).
    let lower = format!("bearer {DEVICE_TOKEN}");
    // (path, body, Authorization header, expected status)
    let table: [(&str, &str, Option<&str>, u16); 11] = [
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
        ("/ingest", &single, Some(&lower), 202),
    ];
    for (path, body, auth, expected) in table {
        let request = client
            .post(agent.url(path))
            .header("content-type", "application/json")
            .body(body.to_owned());
        assert_auth(request, auth, expected).await;
    }
    let metrics = client.get(agent.url("/metrics")).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    let logs = agent.stop();
    assert_secrets_kept(&metrics, "emberline_agent", &logs, &SECRETS);
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

/// A `POST /ingest` head for a body of `length` bytes.
fn ingest_head(length: usize) -> String {
    format!(
        "POST /ingest HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {DEVICE_TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    )
}

/// The token is checked before the body is read: a caller without one who announces megabytes
/// and sends a byte is refused at once, not held until the body timeout with its bytes in memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_without_a_token_is_refused_before_its_body() {
    let agent = Agent::start(&[]).await;
    for path in ["/ingest", "/v1/readings"] {
        let mut stream = tokio::net::TcpStream::connect(agent.http).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: 8000000\r\n\r\n["
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let answered = tokio::time::timeout(BODY_BOUND / 2, first_answer(&mut stream)).await;
        let answer = answered.unwrap_or_else(|_| panic!("{path}: no answer before the body"));
        assert!(answer.starts_with("HTTP/1.1 401"), "{path}: {answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_http_clients_are_disconnected() {
    let agent = Agent::start(&[]).await;
    let half_body = format!("{}{{\"timestamp\":", ingest_head(500));
    let bounds = (HEAD_BOUND, BODY_BOUND);
    assert_slow_http_clients_cut_off(agent.http, bounds, half_body.as_bytes()).await;
    // A client that keeps trickling a request head is cut off as well.
    let started = Instant::now();
    let mut stream = tokio::net::TcpStream::connect(agent.http).await.unwrap();
    stream
        .write_all(b"POST /ingest HTTP/1.1\r\n")
        .await
        .unwrap();
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if stream.write_all(b"X-Slow: 1\r\n").await.is_err() {
            break;
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(7),
        "a trickling client must be disconnected (took {:?})",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_trickles_in_within_the_bound_is_accepted() {
    let mut agent = Agent::start(&[]).await;
    let body = reading(DEVICE);
    let head = ingest_head(body.len());
    let mut stream = trickle(agent.http, head.as_bytes(), body.as_bytes()).await;
    let answer = first_answer(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
    agent.stop();
    assert_eq!(agent.buffered_sources(), vec![DEVICE]);
}
