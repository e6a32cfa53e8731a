//! An agent given a new `--agent-id` with readings still buffered forwards them under its new
//! id, to a bridge that checks agent tokens, and they keep the reading ids they were given.

use std::collections::BTreeSet;
use std::time::Duration;

use emberline_agent::buffer::{Buffer, Incoming, Store};
use emberline_core::{AgentId, Limits, Protocol, Reading};
use emberline_testkit::{free_port, shared_broker};
use secrecy::SecretString;

use crate::support::*;

/// Readings the agent numbers itself (no device `seq`): their ids carry the agent's id.
fn numbered_by_the_agent(source: &str, count: usize) -> Vec<Incoming> {
    let now = time::OffsetDateTime::now_utc();
    let body = reading(source, 0).replace(r#","seq":0"#, "");
    let reading = Reading::parse(body.as_bytes(), &Limits::default(), now).unwrap();
    let item = Incoming {
        reading,
        protocol: Protocol::Http,
        received_at: now,
    };
    vec![item; count]
}

/// Before, the bridge refused the old readings with 403 (the token is the new agent's) and
/// nothing behind them was ever forwarded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_buffered_before_a_new_agent_id_are_forwarded_under_it() {
    let bootstrap = shared_broker();
    let topics = topics(bootstrap).await;
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("agent-tokens");
    std::fs::write(&tokens, "edge-renamed tok-renamed-0123456789abcdef\n").unwrap();
    let bridge_port = free_port().unwrap();
    let mut command = bridge_command(bootstrap, &topics, bridge_port);
    let _bridge = spawn(command.arg("--tokens-file").arg(&tokens));
    wait_healthy(bridge_port, "bridge").await;

    let (old, renamed) = (
        AgentId::parse("edge-old").unwrap(),
        AgentId::parse("edge-renamed").unwrap(),
    );
    let mut store = Store::open(buffer_config(&dir, &old)).unwrap();
    let mut expected: BTreeSet<String> = BTreeSet::new();
    let accepted = store
        .append(&[
            numbered_by_the_agent("renamed-1", 5),
            incoming("renamed-2", 1..=5),
        ])
        .unwrap();
    drop(store);
    let (buffer, _thread) = Buffer::start(buffer_config(&dir, &renamed)).unwrap();
    let later = buffer
        .append(numbered_by_the_agent("renamed-1", 3))
        .await
        .unwrap();
    for id in accepted.into_iter().flat_map(|a| a.unwrap()).chain(later) {
        expected.insert(id.reading_id.to_string());
    }
    assert_eq!(expected.len(), 13);
    assert_eq!(
        expected
            .iter()
            .filter(|id| id.starts_with("a:edge-old:"))
            .count(),
        5
    );

    let mut config = forwarder_config(renamed.clone(), bridge_port, 4);
    config.token = Some(SecretString::from("tok-renamed-0123456789abcdef"));
    Running::start(forwarder_with(config, buffer.clone()))
        .drained(&buffer)
        .await;

    let records = read_until(bootstrap, &topics.raw, &expected, Duration::from_secs(30)).await;
    let ids: BTreeSet<String> = records
        .iter()
        .map(|(_, e)| e.reading_id.to_string())
        .collect();
    assert_eq!(
        ids, expected,
        "every reading, under the id it was given at ingest"
    );
    assert!(
        records.iter().all(|(_, e)| e.agent_id == renamed),
        "every envelope names the agent whose token sent it"
    );
}
