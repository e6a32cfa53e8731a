//! The live path on a real server (port 0): a classification published to anomaly-data reaches
//! an open `/api/stream` as a GeoJSON feature, and shutting down ends the stream and the server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{Heat, Pipeline, reading, spawn_dashboard};

/// Reads server-sent events from `response` until one named `name` arrives; its data.
async fn next_event(response: &mut reqwest::Response, buffer: &mut String, name: &str) -> String {
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let field = |key: &str| {
                block
                    .lines()
                    .find_map(|l| l.strip_prefix(key))
                    .map(str::to_owned)
            };
            if field("event: ").or_else(|| field("event:")).as_deref() == Some(name) {
                return field("data: ")
                    .or_else(|| field("data:"))
                    .unwrap_or_default();
            }
        }
        let chunk = tokio::time::timeout(Duration::from_secs(30), response.chunk())
            .await
            .unwrap_or_else(|_| panic!("no {name} event within 30s"))
            .unwrap()
            .unwrap_or_else(|| panic!("the stream ended before a {name} event"));
        buffer.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classifications_are_pushed_to_open_streams() {
    let pipeline = Pipeline::start().await;
    let dashboard = spawn_dashboard(pipeline.dashboard_config()).await;
    let client = reqwest::Client::new();
    let mut response = client
        .get(format!("{}/api/stream", dashboard.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let kind = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(kind.starts_with("text/event-stream"), "{kind}");
    let mut buffer = String::new();
    next_event(&mut response, &mut buffer, "ready").await;

    // The live feed assigns itself the topic's end shortly after start: publish until seen.
    let mut seq = 0;
    let data = loop {
        seq += 1;
        let envelope = reading("live-1", seq, (40.0, -100.0), Heat::High, 0);
        pipeline.publish_classified(&envelope).await;
        let wait = next_event(&mut response, &mut buffer, "classification");
        if let Ok(data) = tokio::time::timeout(Duration::from_secs(3), wait).await {
            break data;
        }
        assert!(seq < 20, "no live event after {seq} publications");
    };
    let feature: serde_json::Value = serde_json::from_str(&data).unwrap();
    assert_eq!(feature["type"], "Feature");
    assert_eq!(feature["properties"]["source_name"], "live-1");
    assert_eq!(feature["properties"]["intensity"], "high");
    assert_eq!(
        feature["geometry"]["coordinates"],
        serde_json::json!([-100.0, 40.0])
    );

    // Shutdown ends the open stream and the server within the bound.
    let stopping = tokio::spawn(dashboard.stop());
    let rest = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(_)) = response.chunk().await {}
    });
    rest.await.expect("the stream did not end at shutdown");
    tokio::time::timeout(Duration::from_secs(15), stopping)
        .await
        .expect("the dashboard did not stop")
        .unwrap();
    pipeline.stop().await;
}
