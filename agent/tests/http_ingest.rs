//! The agent's HTTP ingest through its router (no socket), against a real SQLite buffer: every
//! answer of the bad-input table, and 202 only for readings that are in the buffer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use emberline_agent::auth::Tokens;
use emberline_agent::buffer::{Buffer, Durability, StoreConfig};
use emberline_agent::http::{AppState, BridgeStatus, Inner, app};
use emberline_agent::metrics::Metrics;
use emberline_core::{AgentId, Envelope, Limits};
use serde_json::{Value, json};
use tower::ServiceExt as _;

struct Agent {
    state: AppState,
    _dir: tempfile::TempDir,
}

fn agent(tokens: Option<&str>, max_buffer_bytes: u64) -> Agent {
    let dir = tempfile::tempdir().unwrap();
    let (buffer, _thread) = Buffer::start(StoreConfig {
        path: dir.path().join("buffer.db"),
        agent_id: AgentId::parse("edge-1").unwrap(),
        max_bytes: max_buffer_bytes,
        durability: Durability::Full,
        max_rejected_bytes: emberline_agent::buffer::DEFAULT_MAX_REJECTED_BYTES,
    })
    .unwrap();
    let metrics = Metrics::default();
    let registry = metrics.registry(buffer.gauges());
    let state = Arc::new(Inner {
        buffer,
        limits: Limits::default(),
        tokens: tokens.map(|t| Arc::new(Tokens::parse(t).unwrap())),
        metrics,
        registry,
        bridge: Arc::new(BridgeStatus::default()),
        alerts: None,
        max_reading_bytes: 16 * 1024,
        max_batch_bytes: 1024 * 1024,
        max_batch_items: 10_000,
        max_buffer_bytes,
    });
    Agent { state, _dir: dir }
}

fn reading() -> Value {
    json!({
        "timestamp": "2025-05-24T18:03:11.123456Z", "latitude": 34.05, "longitude": -118.25,
        "temperature": 42.7, "humidity": 12, "wind_speed": 18.4, "wind_direction": 270.0,
        "vegetation_density": 0.82, "air_quality_index": 160.0, "source_name": "sensor-17"
    })
}

async fn post(
    agent: &Agent,
    path: &str,
    content_type: &str,
    body: impl Into<Body>,
    token: Option<&str>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let mut request = Request::post(path).header(header::CONTENT_TYPE, content_type);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let response = app(agent.state.clone())
        .oneshot(request.body(body.into()).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()));
    (parts.status, parts.headers, value)
}

async fn get(agent: &Agent, path: &str) -> (StatusCode, String) {
    let response = app(agent.state.clone())
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

async fn buffered(agent: &Agent) -> Vec<Envelope> {
    let stored = agent.state.buffer.peek(10_000, usize::MAX).await.unwrap();
    stored
        .iter()
        .map(|s| Envelope::from_slice(&s.envelope().unwrap()).unwrap())
        .collect()
}

#[tokio::test]
async fn the_reference_payload_is_accepted_only_once_buffered() {
    let agent = agent(None, u64::MAX);
    let (status, _, body) = post(
        &agent,
        "/ingest",
        "application/json",
        reading().to_string(),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id = body["reading_id"].as_str().unwrap();
    assert!(id.starts_with("a:edge-1:"), "{id}");
    let stored = buffered(&agent).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].reading_id.as_str(), id);
    assert_eq!(stored[0].reading.source_name(), "sensor-17");
}

#[tokio::test]
async fn the_bad_input_table() {
    let agent = agent(None, u64::MAX);
    let mut out_of_range = reading();
    out_of_range["humidity"] = json!(140);
    let mut wrong_type = reading();
    wrong_type["temperature"] = json!("hot");
    let mut missing = reading();
    missing.as_object_mut().unwrap().remove("latitude");
    let nan = reading().to_string().replace("42.7", "NaN");
    let infinity = reading().to_string().replace("42.7", "Infinity");
    let huge = format!("{{\"source_name\": \"{}\"}}", "x".repeat(20 * 1024));
    let cases: Vec<(&str, String, &str, StatusCode, &str)> = vec![
        (
            "malformed JSON",
            "{\"latitude\": ".into(),
            "application/json",
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            "NaN",
            nan,
            "application/json",
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            "Infinity",
            infinity,
            "application/json",
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            "wrong types",
            wrong_type.to_string(),
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_reading",
        ),
        (
            "out of range",
            out_of_range.to_string(),
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_reading",
        ),
        (
            "missing field",
            missing.to_string(),
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_reading",
        ),
        (
            "an array",
            "[1]".into(),
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_an_object",
        ),
        (
            "wrong content type",
            reading().to_string(),
            "text/plain",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "huge body",
            huge,
            "application/json",
            StatusCode::PAYLOAD_TOO_LARGE,
            "",
        ),
    ];
    for (name, body, content_type, expected, code) in cases {
        let (status, _, answer) = post(&agent, "/ingest", content_type, body, None).await;
        assert_eq!(status, expected, "{name}: {answer}");
        if !code.is_empty() {
            assert_eq!(answer["error"], json!(code), "{name}: {answer}");
        }
    }
    let (_, _, answer) = post(
        &agent,
        "/ingest",
        "application/json",
        out_of_range.to_string(),
        None,
    )
    .await;
    assert_eq!(answer["fields"][0]["field"], json!("humidity"));
    assert!(
        buffered(&agent).await.is_empty(),
        "nothing invalid is stored"
    );
}

#[tokio::test]
async fn device_tokens_are_enforced_when_configured() {
    let agent = agent(Some("ridge-7 s3cret\n"), u64::MAX);
    let body = reading().to_string();
    let (status, headers, _) =
        post(&agent, "/ingest", "application/json", body.clone(), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
    let (status, _, _) = post(
        &agent,
        "/ingest",
        "application/json",
        body.clone(),
        Some("wrong"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = post(
        &agent,
        "/v1/readings",
        "application/json",
        format!("[{body}]"),
        Some("wrong"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = post(&agent, "/ingest", "application/json", body, Some("s3cret")).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (_, metrics) = get(&agent, "/metrics").await;
    assert!(!metrics.contains("s3cret"));
}

#[tokio::test]
async fn a_full_buffer_answers_503_with_retry_after_and_keeps_what_it_has() {
    let agent = agent(None, 500);
    let mut accepted = 0;
    let mut refused = None;
    for _ in 0..10 {
        let (status, headers, _) = post(
            &agent,
            "/ingest",
            "application/json",
            reading().to_string(),
            None,
        )
        .await;
        match status {
            StatusCode::ACCEPTED => accepted += 1,
            StatusCode::SERVICE_UNAVAILABLE => refused = Some(headers),
            other => panic!("unexpected {other}"),
        }
    }
    let headers = refused.expect("the buffer never filled");
    assert_eq!(headers[header::RETRY_AFTER], "5");
    assert!(accepted >= 1);
    assert_eq!(
        buffered(&agent).await.len(),
        accepted,
        "every 202 is still buffered"
    );
    let (status, body) = get(&agent, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
}

#[tokio::test]
async fn batches_answer_per_item_as_json_array_or_ndjson() {
    let agent = agent(None, u64::MAX);
    let mut bad = reading();
    bad["wind_direction"] = json!(360);
    let array = json!([reading(), bad, reading()]).to_string();
    let (status, _, body) = post(&agent, "/v1/readings", "application/json", array, None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(
        (body["accepted"].clone(), body["rejected"].clone()),
        (json!(2), json!(1))
    );
    assert_eq!(
        body["results"][1]["error"]["fields"][0]["field"],
        json!("wind_direction")
    );
    // The rejected item took no place in the buffer's numbering.
    let seq = |item: &serde_json::Value| -> u64 {
        let id = item["reading_id"].as_str().unwrap();
        id.strip_prefix("a:edge-1:").unwrap().parse().unwrap()
    };
    assert_eq!(seq(&body["results"][2]), seq(&body["results"][0]) + 1);

    let ndjson = format!("{}\n{{not json\n\n{}\n", reading(), reading());
    let (status, _, body) =
        post(&agent, "/v1/readings", "application/x-ndjson", ndjson, None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(
        body["results"][1]["error"]["error"],
        json!("malformed_json")
    );
    assert_eq!(buffered(&agent).await.len(), 4);

    let (status, _, _) = post(
        &agent,
        "/v1/readings",
        "application/json",
        json!([bad]).to_string(),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _, _) = post(&agent, "/v1/readings", "application/json", "{}", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = post(&agent, "/v1/readings", "application/json", "[]", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_batch_item_larger_than_a_reading_alone_is_refused_by_itself() {
    // The limit of a reading sent alone is 16 KiB here; a batch may be larger, its items not.
    let agent = agent(None, u64::MAX);
    let mut big = reading();
    big["note"] = json!("x".repeat(20 * 1024));
    let mut just_fits = reading();
    just_fits["note"] = json!("");
    let room = 16 * 1024 - just_fits.to_string().len();
    just_fits["note"] = json!("x".repeat(room));
    assert_eq!(just_fits.to_string().len(), 16 * 1024);
    let array = json!([reading(), big, just_fits]).to_string();
    let ndjson = format!("{}\n{big}\n{just_fits}\n", reading());
    for (media, body) in [
        ("application/json", array),
        ("application/x-ndjson", ndjson),
    ] {
        let (status, _, answer) = post(&agent, "/v1/readings", media, body, None).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{media}: {answer}");
        assert_eq!(
            (answer["accepted"].clone(), answer["rejected"].clone()),
            (json!(2), json!(1)),
            "{media}: {answer}"
        );
        assert_eq!(answer["results"][1]["error"]["error"], json!("too_large"));
    }
    let stored = buffered(&agent).await;
    assert_eq!(stored.len(), 4);
    assert!(stored.iter().all(|e| {
        e.reading
            .extra()
            .get("note")
            .is_none_or(|n| n.as_str().unwrap().len() < 20 * 1024)
    }));
}

/// An 8 MiB body of `[1,1,…]` is four million items, each of which would become an error in the
/// answer: the agent took 1.7 GB for one such request. Past the item limit the batch is refused
/// whole, as it is read.
#[tokio::test]
async fn a_batch_of_more_items_than_the_limit_is_refused_whole() {
    let agent = agent(None, u64::MAX);
    let ones = |n: usize| vec!["1"; n].join(",");
    let array = format!("[{}]", ones(10_001));
    let ndjson = vec!["1"; 10_001].join("\n");
    for (media, body) in [
        ("application/json", array),
        ("application/x-ndjson", ndjson),
    ] {
        let (status, _, answer) = post(&agent, "/v1/readings", media, body, None).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{media}: {answer}");
        assert_eq!(answer["error"], json!("too_many_items"), "{media}");
    }
    let (status, _, answer) = post(
        &agent,
        "/v1/readings",
        "application/json",
        format!("[{}]", ones(10_000)),
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "at the limit: answered item by item"
    );
    assert_eq!(answer["rejected"], json!(10_000));
    assert!(buffered(&agent).await.is_empty());
}

#[tokio::test]
async fn service_endpoints_report_health_buffering_and_metrics() {
    let agent = agent(None, u64::MAX);
    assert_eq!(get(&agent, "/healthz").await.0, StatusCode::OK);
    let (status, body) = get(&agent, "/readyz").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("buffering: bridge unreachable"), "{body}");
    agent.state.bridge.set(true);
    assert!(get(&agent, "/readyz").await.1.contains("\"ready\""));
    post(
        &agent,
        "/ingest",
        "application/json",
        reading().to_string(),
        None,
    )
    .await;
    let (_, metrics) = get(&agent, "/metrics").await;
    assert!(
        metrics
            .contains("emberline_agent_readings_total{protocol=\"http\",outcome=\"accepted\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("emberline_agent_buffer_readings 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("emberline_agent_buffer_commit_seconds_count 1"),
        "{metrics}"
    );
}
