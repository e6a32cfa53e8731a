//! A reading the bridge refuses is set aside alone: the readings of its batch go through.

use emberline_agent::buffer::{Buffer, Store};
use emberline_core::AgentId;
use emberline_testkit::shared_broker;

use crate::support::*;

/// An older agent's stored envelope that is JSON but not an envelope the bridge takes (400,
/// naming its line).
const REFUSED: &[u8] = br#"{"v":1,"reading_id":3}"#;

/// Ten readings, the refused record, then nineteen more, forwarded in batches of 25: the bridge
/// refuses the first batch naming line 11; the ten before it go, then the refused record alone
/// (quarantined), then the rest. Before, the whole batch of 25 was quarantined with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_reading_is_quarantined_alone_and_its_batch_goes_through() {
    let (_bridge, bridge_port) = started_bridge(shared_broker()).await;

    let dir = tempfile::tempdir().unwrap();
    let agent = AgentId::parse("edge-refused").unwrap();
    let mut store = Store::open(buffer_config(&dir, &agent)).unwrap();
    store.append(&[incoming("refused-1", 1..=10)]).unwrap();
    let refused_seq = store.next_seq();
    drop(store);
    let db = rusqlite::Connection::open(dir.path().join("buffer.db")).unwrap();
    db.execute(
        "INSERT INTO readings (seq, reading_id, received_at_ns, envelope) VALUES (?1, '', 0, ?2)",
        rusqlite::params![refused_seq, REFUSED],
    )
    .unwrap();
    drop(db);
    let (buffer, _thread) = Buffer::start(buffer_config(&dir, &agent)).unwrap();
    buffer.append(incoming("refused-1", 11..=29)).await.unwrap();

    Running::start(forwarder(buffer.clone(), agent, bridge_port, 25))
        .drained(&buffer)
        .await;
    assert_eq!(buffer.gauges().quarantined.get(), 1, "the quarantine gauge");

    let client = reqwest::Client::new();
    let produced = bridge_count(&client, bridge_port, "emberline_bridge_records_total").await;
    assert_eq!(produced, Some(29), "every good reading produced, once");
    // 25 refused at line 11; the 10 before it taken; 20 refused at line 1; the 1 alone refused
    // (and quarantined); the last 19 taken. Halving blindly would take more refusals.
    let refused = r#"emberline_bridge_rejections_total{reason="malformed"}"#;
    assert_eq!(
        bridge_count(&client, bridge_port, refused).await,
        Some(3),
        "the line the bridge names is used"
    );
    let db = rusqlite::Connection::open(dir.path().join("buffer.db")).unwrap();
    let quarantined: Vec<(u64, Vec<u8>, String)> = db
        .prepare("SELECT seq, envelope, reason FROM quarantine")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(quarantined.len(), 1, "only the refused record set aside");
    let (seq, kept, reason) = &quarantined[0];
    assert_eq!((*seq, &kept[..]), (refused_seq, REFUSED));
    assert!(reason.contains("\"line\":1"), "{reason}");
}
