//! The API against a real PostgreSQL filled by the hub's real detector and writer from a real
//! broker: readings go to raw-data, the dashboard answers from what the writer stored.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{HOSTILE, Heat, Pipeline, fleet, heartbeat, reading};
use emberline_dashboard::feed::Feed;
use emberline_dashboard::{Config, Dashboard, app};
use serde_json::Value;

use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

async fn get(router: &axum::Router, path: &str) -> (StatusCode, String) {
    let request = Request::get(path).body(Body::empty()).unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 64 << 20)
        .await
        .unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

async fn get_json(router: &axum::Router, path: &str) -> Value {
    let (status, body) = get(router, path).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn names(collection: &Value) -> Vec<String> {
    let features = collection["features"].as_array().unwrap();
    features
        .iter()
        .map(|f| f["properties"]["source_name"].as_str().unwrap().to_owned())
        .collect()
}

async fn router(config: Config) -> axum::Router {
    let dashboard = Dashboard::new(config).await.unwrap();
    app(dashboard.state(Feed::new(16), CancellationToken::new()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_from_what_the_hub_wrote() {
    let pipeline = Pipeline::start().await;
    let fleet = fleet();
    let envelopes: Vec<_> = fleet.iter().map(|(e, _)| e.clone()).collect();
    pipeline.send(&envelopes).await;
    // An older reading of the first sensor: history for /data, never its latest state.
    pipeline
        .send(&[reading("ridge-high", 99, (38.5, -120.2), Heat::Low, 3600)])
        .await;
    pipeline.heartbeat(&heartbeat("edge-1", 5, 3)).await;
    pipeline.heartbeat(&heartbeat("edge-2", 600, 0)).await;
    pipeline
        .wait_for_count("SELECT count(*) FROM classifications", 5)
        .await;
    pipeline
        .wait_for_count("SELECT count(*) FROM agents", 2)
        .await;
    let router = router(pipeline.dashboard_config()).await;

    let all = get_json(&router, "/api/sensors").await;
    assert_eq!(all["type"], "FeatureCollection");
    let mut expected: Vec<String> = fleet.iter().map(|(e, _)| e.key().to_owned()).collect();
    expected.sort();
    assert_eq!(names(&all), expected);
    let ridge = &all["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["properties"]["source_name"] == "ridge-high")
        .unwrap()
        .clone();
    assert_eq!(
        ridge["geometry"]["coordinates"],
        serde_json::json!([-120.2, 38.5])
    );
    assert_eq!(ridge["properties"]["intensity"], "high");
    assert_eq!(ridge["properties"]["confidence_score"], 0.95);
    assert_eq!(ridge["properties"]["reading"]["temperature"], 45.0);
    assert!(
        !ridge["properties"]["rules_fired"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    let high = get_json(&router, "/api/sensors?intensity=high").await;
    assert_eq!(names(&high), [HOSTILE, "ridge-high"]);
    let not_low = get_json(&router, "/api/sensors?intensity=high,medium").await;
    assert_eq!(names(&not_low).len(), 3);
    let west = get_json(&router, "/api/sensors?bbox=-130,30,-100,45").await;
    assert_eq!(names(&west), ["ridge-high"]);
    let across = get_json(&router, "/api/sensors?bbox=170,-90,-100,90").await;
    assert_eq!(
        names(&across),
        ["ridge-high"],
        "a box across the antimeridian"
    );
    let by_name = get_json(&router, "/api/sensors?source=VALLEY").await;
    assert_eq!(names(&by_name), ["valley-medium"]);
    let recent = get_json(&router, "/api/sensors?since=10m").await;
    assert_eq!(names(&recent).len(), 4);
    let future = get_json(&router, "/api/sensors?since=2999-01-01T00:00:00Z").await;
    assert!(names(&future).is_empty());

    let data = get_json(&router, "/data").await;
    let data = data.as_array().unwrap();
    assert_eq!(data.len(), 5);
    assert_eq!(
        data[0]["source_name"], "ridge-high",
        "oldest first, newest last"
    );
    assert_eq!(data[0]["intensity"], "low");
    for item in data {
        for field in [
            "timestamp",
            "latitude",
            "temperature",
            "source_name",
            "intensity",
            "confidence_score",
        ] {
            assert!(item.get(field).is_some(), "{field} missing in {item}");
        }
    }
    assert_eq!(
        get_json(&router, "/data?limit=2")
            .await
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let alerts = get_json(&router, "/api/alerts").await;
    let alerts: Vec<&str> = alerts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["source_name"].as_str().unwrap())
        .collect();
    assert_eq!(alerts.len(), 2);
    assert!(alerts.contains(&HOSTILE) && alerts.contains(&"ridge-high"));

    let agents = get_json(&router, "/api/agents").await;
    assert_eq!(agents[0]["agent_id"], "edge-1");
    assert_eq!(agents[0]["stale"], false);
    assert_eq!(agents[0]["buffer_depth"], 3);
    assert_eq!(agents[1]["agent_id"], "edge-2");
    assert_eq!(agents[1]["stale"], true, "silent for 10 minutes");

    for bad in [
        "/api/sensors?intensity=extreme",
        "/api/sensors?bbox=1,2",
        "/data?limit=0",
        "/api/alerts?since=soon",
    ] {
        let (status, body) = get(&router, bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(body.contains("bad_request"), "{body}");
    }
    pipeline.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_assets_probes_and_description_are_served() {
    let pipeline = Pipeline::start().await;
    let router = router(pipeline.dashboard_config()).await;
    let (status, page) = get(&router, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("/vendor/leaflet.js") && !page.contains("unpkg") && !page.contains("cdn")
    );
    for asset in [
        "/vendor/leaflet.js",
        "/vendor/leaflet.markercluster.js",
        "/vendor/leaflet.css",
        "/static/app.js",
        "/static/map.js",
    ] {
        let (status, body) = get(&router, asset).await;
        assert_eq!(status, StatusCode::OK, "{asset}");
        assert!(body.len() > 500, "{asset} is {} bytes", body.len());
    }
    let gzip = Request::get("/vendor/leaflet.js")
        .header("accept-encoding", "gzip")
        .body(Body::empty())
        .unwrap();
    let response = router.clone().oneshot(gzip).await.unwrap();
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let openapi = get_json(&router, "/api/openapi.json").await;
    assert!(openapi["paths"]["/api/sensors"].is_object());
    let config = get_json(&router, "/config.json").await;
    assert_eq!(config["tile_url"], "");
    assert_eq!(get(&router, "/healthz").await.0, StatusCode::OK);
    assert_eq!(get(&router, "/readyz").await.0, StatusCode::OK);
    let (status, metrics) = get(&router, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        metrics.contains(
            "emberline_dashboard_http_requests_total{route=\"/readyz\",status=\"200\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("emberline_dashboard_stream_clients"),
        "{metrics}"
    );
    pipeline.stop().await;
}

#[tokio::test]
async fn without_postgres_it_is_alive_but_not_ready() {
    let config = Config::new("127.0.0.1:9", "postgres://postgres@127.0.0.1:1/none");
    let router = router(config).await;
    assert_eq!(get(&router, "/healthz").await.0, StatusCode::OK);
    let (status, body) = get(&router, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("PostgreSQL"), "{body}");
    let (status, body) = get(&router, "/api/sensors").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        body.contains("unavailable") && !body.contains("127.0.0.1:1"),
        "{body}"
    );
}
