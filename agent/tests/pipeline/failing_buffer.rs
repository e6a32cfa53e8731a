//! The forwarder against a buffer that refuses to write, made to by SQLite triggers the tests
//! add to the buffer file: nothing in the agent knows it is being tested.

use std::time::Duration;

use emberline_agent::buffer::{Buffer, Store};
use emberline_core::AgentId;
use emberline_testkit::shared_broker;
use rusqlite::Connection;

use crate::support::*;

/// The first batch is delivered but cannot be deleted; the later ones are delivered too. None of
/// them may be deleted while the first is still buffered: the highest `seq` must stay, or a
/// restart would number new readings under ids already forwarded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_delivered_batch_is_deleted_while_one_before_it_is_still_buffered() {
    let bootstrap = shared_broker();
    let (_bridge, bridge_port) = started_bridge(bootstrap).await;
    let dir = tempfile::tempdir().unwrap();
    let agent = AgentId::parse("edge-undeletable").unwrap();
    let (buffer, _thread) = Buffer::start(buffer_config(&dir, &agent)).unwrap();
    let first = buffer
        .append(incoming("undeletable-1", 1..=5))
        .await
        .unwrap();
    buffer
        .append(incoming("undeletable-1", 6..=20))
        .await
        .unwrap();
    let db = Connection::open(dir.path().join("buffer.db")).unwrap();
    let (oldest, newest): (u64, u64) = db
        .query_row("SELECT min(seq), max(seq) FROM readings", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((first.len() as u64, newest - oldest), (5, 19));
    db.execute_batch(&format!(
        "CREATE TRIGGER undeletable BEFORE DELETE ON readings WHEN OLD.seq < {} \
         BEGIN SELECT RAISE(ABORT, 'injected: the disk refuses'); END;",
        oldest + 5
    ))
    .unwrap();

    // Batches of 5; waits between tries to delete are at most max_backoff (500 ms), so the
    // first batch's deletion gives up after about 4 s.
    let running = Running::start(forwarder(buffer.clone(), agent, bridge_port, 5));
    let client = reqwest::Client::new();
    let highest = || -> u64 {
        db.query_row("SELECT max(seq) FROM readings", [], |r| r.get(0))
            .unwrap()
    };
    // Until the forwarder has given up on that deletion and sent the first batch again (the
    // bridge recognises the repeat); the highest `seq` must stay all along, and after.
    let repeated = "emberline_bridge_batches_repeated_total";
    let gave_up = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            highest(),
            newest,
            "a later batch was deleted before the first"
        );
        let repeats = bridge_count(&client, bridge_port, repeated).await;
        if repeats.is_some_and(|n| n >= 1) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < gave_up,
            "no batch sent again in 60 s"
        );
    }
    assert_eq!(
        highest(),
        newest,
        "a later batch was deleted before the first"
    );
    let produced = "emberline_bridge_records_total";
    let sent = bridge_count(&client, bridge_port, produced).await.unwrap();
    assert!(sent >= 10, "the second batch went out too: {sent} produced");

    db.execute_batch("DROP TRIGGER undeletable").unwrap();
    running.drained(&buffer).await;
}

/// A reading the bridge refuses cannot be quarantined: the batch is sent again, but after a pause
/// (`max_backoff`, 500 ms here), not at once in a loop against the bridge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarantine_the_buffer_cannot_write_pauses_before_the_batch_goes_again() {
    let bootstrap = shared_broker();
    let (_bridge, bridge_port) = started_bridge(bootstrap).await;
    let dir = tempfile::tempdir().unwrap();
    let agent = AgentId::parse("edge-no-quarantine").unwrap();
    let store = Store::open(buffer_config(&dir, &agent)).unwrap();
    let refused = store.next_seq();
    drop(store);
    let db = Connection::open(dir.path().join("buffer.db")).unwrap();
    // JSON, so it goes out as it is, but no envelope: the bridge refuses it (400, line 1).
    db.execute(
        "INSERT INTO readings (seq, reading_id, received_at_ns, envelope) VALUES (?1, '', 0, ?2)",
        rusqlite::params![refused, br#"{"v":1}"#.as_slice()],
    )
    .unwrap();
    db.execute_batch(
        "CREATE TRIGGER no_quarantine BEFORE INSERT ON quarantine \
         BEGIN SELECT RAISE(ABORT, 'injected: the disk refuses'); END;",
    )
    .unwrap();
    let (buffer, _thread) = Buffer::start(buffer_config(&dir, &agent)).unwrap();

    let running = Running::start(forwarder(buffer.clone(), agent, bridge_port, 5));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let client = reqwest::Client::new();
    let malformed = r#"emberline_bridge_rejections_total{reason="malformed"}"#;
    let refusals = bridge_count(&client, bridge_port, malformed)
        .await
        .unwrap_or(0);
    // One refusal per try and a pause of 500 ms after each: about 6 in 3 s. Without the pause,
    // each try is one round trip to the bridge, hundreds in 3 s.
    assert!((1..=12).contains(&refusals), "{refusals} refusals in 3 s");

    db.execute_batch("DROP TRIGGER no_quarantine").unwrap();
    running.drained(&buffer).await;
    let kept: u64 = db
        .query_row(
            "SELECT count(*) FROM quarantine WHERE seq = ?1",
            [refused],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(kept, 1, "set aside once the disk takes it");
}
