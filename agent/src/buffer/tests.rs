use std::collections::VecDeque;

use emberline_core::{AgentId, Envelope, Limits, Protocol, Reading};
use proptest::prelude::*;
use time::macros::datetime;

use super::*;

fn reading(source: &str, seq: Option<u64>) -> Reading {
    let seq = seq.map(|s| format!(",\"seq\":{s}")).unwrap_or_default();
    let body = format!(
        r#"{{"timestamp":"2025-05-24T18:03:11Z","latitude":1,"longitude":2,"temperature":20,"humidity":50,
        "wind_speed":3,"wind_direction":90,"vegetation_density":0.3,"air_quality_index":20,"source_name":"{source}"{seq}}}"#
    );
    Reading::parse(
        body.as_bytes(),
        &Limits::default(),
        datetime!(2025-05-24 18:04 UTC),
    )
    .unwrap()
}

pub(crate) fn incoming(source: &str) -> Incoming {
    Incoming {
        reading: reading(source, None),
        protocol: Protocol::Http,
        received_at: datetime!(2025-05-24 18:03:12 UTC),
    }
}

pub(crate) fn config(dir: &tempfile::TempDir, max_bytes: u64) -> StoreConfig {
    StoreConfig {
        path: dir.path().join("buffer.db"),
        agent_id: AgentId::parse("edge-1").unwrap(),
        max_bytes,
        durability: Durability::Full,
        max_rejected_bytes: crate::buffer::DEFAULT_MAX_REJECTED_BYTES,
    }
}

/// The `seq` of every buffered reading (up to ten), oldest first.
fn buffered_seqs(store: &Store) -> Vec<u64> {
    let stored = store.peek(10, usize::MAX).unwrap();
    stored.iter().map(|s| s.seq).collect()
}

fn ids(answers: Vec<Result<Vec<Accepted>, Full>>) -> Vec<String> {
    answers
        .into_iter()
        .flat_map(|answer| answer.unwrap())
        .map(|a| a.reading_id.to_string())
        .collect()
}

#[test]
fn ids_come_from_the_buffer_sequence_and_are_never_reused() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(config(&dir, u64::MAX)).unwrap();
    let n = store.next_seq();
    let first = ids(store.append(&[vec![incoming("a"), incoming("b")]]).unwrap());
    assert_eq!(
        first,
        [format!("a:edge-1:{n}"), format!("a:edge-1:{}", n + 1)]
    );
    // A restart while readings are held carries on where it was.
    drop(store);
    let mut store = Store::open(config(&dir, u64::MAX)).unwrap();
    assert_eq!(store.next_seq(), n + 2);
    store.remove(&[n, n + 1]).unwrap();
    drop(store);
    // Empty at a start (everything forwarded), or a new file (the old one deleted or set aside
    // as damaged): numbering starts somewhere new, so no id repeats one the hub already has
    // (it would drop the reading as a duplicate).
    let mut store = Store::open(config(&dir, u64::MAX)).unwrap();
    let second = ids(store.append(&[vec![incoming("c")]]).unwrap());
    drop(store);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(dir.path().join(format!("buffer.db{suffix}")));
    }
    let mut store = Store::open(config(&dir, u64::MAX)).unwrap();
    let third = ids(store.append(&[vec![incoming("d")]]).unwrap());
    let all: std::collections::HashSet<&String> =
        first.iter().chain(&second).chain(&third).collect();
    assert_eq!(all.len(), 4, "{first:?} {second:?} {third:?}");
}

#[test]
fn without_a_flush_per_commit_numbering_leaps_past_what_a_power_cut_may_have_taken() {
    let dir = tempfile::tempdir().unwrap();
    let normal = StoreConfig {
        durability: Durability::Normal,
        ..config(&dir, u64::MAX)
    };
    let mut store = Store::open(normal.clone()).unwrap();
    let n = store.next_seq();
    let sent = ids(store
        .append(&[vec![incoming("a"), incoming("b"), incoming("c")]])
        .unwrap());
    drop(store);
    // A power cut took back the last two commits after the forwarder had sent them: their ids
    // are at the hub, and must not be given to other readings.
    rusqlite::Connection::open(dir.path().join("buffer.db"))
        .unwrap()
        .execute(
            "DELETE FROM readings WHERE seq > ?1",
            [i64::try_from(n).unwrap()],
        )
        .unwrap();
    let mut store = Store::open(normal.clone()).unwrap();
    assert!(
        store.next_seq() >= n + (1 << 32),
        "{} after {n}",
        store.next_seq()
    );
    let after = ids(store.append(&[vec![incoming("d")]]).unwrap());
    assert!(
        !sent.contains(&after[0]),
        "{after:?} repeats one of {sent:?}"
    );
    // Order is kept: the new reading comes after the one still held.
    let seqs = buffered_seqs(&store);
    assert!(seqs.len() == 2 && seqs[0] == n && seqs[1] > n, "{seqs:?}");
    // Two restarts from the same state do not number on from the same point.
    drop(store);
    let first = Store::open(normal.clone()).unwrap().next_seq();
    let second = Store::open(normal).unwrap().next_seq();
    assert_ne!(first, second);
}

#[test]
fn a_sequence_clash_fails_the_commit_instead_of_a_silent_yes() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(config(&dir, u64::MAX)).unwrap();
    // Only a device's own ids may be dropped as repeats; a clash on `seq` (a bug or a tampered
    // file) must not acknowledge a reading that was not stored.
    rusqlite::Connection::open(dir.path().join("buffer.db"))
        .unwrap()
        .execute(
            "INSERT INTO readings VALUES (?1, 'a:other:1', 0, x'7b7d')",
            [i64::try_from(store.next_seq()).unwrap()],
        )
        .unwrap();
    assert!(store.append(&[vec![incoming("a")]]).is_err());
}

/// A buffer made by an earlier agent: AUTOINCREMENT and every id in a unique index.
const OLD_SCHEMA: &str = "
CREATE TABLE readings (seq INTEGER PRIMARY KEY AUTOINCREMENT, reading_id TEXT NOT NULL UNIQUE,
    received_at_ns INTEGER NOT NULL, envelope BLOB NOT NULL);
PRAGMA journal_mode = WAL;";

#[test]
fn an_earlier_agents_buffer_is_brought_to_todays_schema_with_its_readings() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("buffer.db");
    let old = rusqlite::Connection::open(&path).unwrap();
    old.execute_batch(OLD_SCHEMA).unwrap();
    for seq in [40, 41, 100] {
        old.execute(
            "INSERT INTO readings VALUES (?1, ?2, 0, x'7b7d')",
            rusqlite::params![seq, format!("a:edge-1:{seq}")],
        )
        .unwrap();
    }
    // Forwarded and deleted before the older ones (an earlier agent could): its AUTOINCREMENT
    // still remembers 100, and ids up to it may be at the hub already.
    old.execute("DELETE FROM readings WHERE seq = 100", [])
        .unwrap();
    drop(old);
    let table_sql = || -> String {
        rusqlite::Connection::open(&path)
            .unwrap()
            .query_row(
                "SELECT sql FROM sqlite_master WHERE name = 'readings'",
                [],
                |row| row.get(0),
            )
            .unwrap()
    };
    let mut store = Store::open(config(&dir, u64::MAX)).unwrap();
    assert!(!table_sql().contains("AUTOINCREMENT"), "{}", table_sql());
    assert_eq!(
        (store.depth(), store.next_seq()),
        (2, 101),
        "readings and numbering kept"
    );
    // Readings the agent numbers itself are stored with an empty id: the old table's unique
    // index over every id refused the second of them.
    store.append(&[vec![incoming("a"), incoming("b")]]).unwrap();
    store.append(&[vec![incoming("c")]]).unwrap();
    let retry = Incoming {
        reading: reading("dev", Some(7)),
        ..incoming("dev")
    };
    store.append(&[vec![retry.clone()], vec![retry]]).unwrap();
    assert_eq!(store.depth(), 6, "a device's retry is still stored once");
    let seqs = buffered_seqs(&store);
    assert_eq!(
        seqs,
        [40, 41, 101, 102, 103, 104],
        "in order, the old ones first"
    );
    store.remove(&seqs).unwrap();
    drop(store);
    let store = Store::open(config(&dir, u64::MAX)).unwrap();
    assert!(
        store.depth() == 0 && store.next_seq() >= 1_000_000_000_000_000_000,
        "drained, it numbers from a fresh random point: {}",
        store.next_seq()
    );
}

#[test]
fn a_device_retry_with_the_same_seq_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(config(&dir, u64::MAX)).unwrap();
    let retry = Incoming {
        reading: reading("dev", Some(7)),
        ..incoming("dev")
    };
    let answers = store.append(&[vec![retry.clone()], vec![retry]]).unwrap();
    for answer in &answers {
        assert!(
            answer.as_ref().unwrap()[0]
                .reading_id
                .as_str()
                .starts_with("d:dev:7:")
        );
    }
    assert_eq!(store.depth(), 1);
}

#[test]
fn a_full_buffer_refuses_whole_requests_and_keeps_what_it_has() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(config(&dir, stored_size(0) * 3)).unwrap();
    let answers = store
        .append(&[
            vec![incoming("s0"), incoming("s0")],
            vec![incoming("s0"), incoming("s0")],
            vec![incoming("s0")],
        ])
        .unwrap();
    assert!(answers[0].is_ok());
    assert_eq!(answers[1], Err(Full), "would pass the cap: refused whole");
    assert!(answers[2].is_ok(), "a smaller request still fits");
    assert_eq!(store.depth(), 3);
}

#[test]
fn a_damaged_buffer_is_set_aside_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("buffer.db"),
        b"this is not a database, it is garbage ".repeat(200),
    )
    .unwrap();
    let store = Store::open(config(&dir, u64::MAX)).unwrap();
    assert_eq!(store.depth(), 0);
    let set_aside = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("buffer.db.corrupt-")
        });
    assert!(set_aside);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_share_commits() {
    let dir = tempfile::tempdir().unwrap();
    let (buffer, thread) = Buffer::start(config(&dir, u64::MAX)).unwrap();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let buffer = buffer.clone();
            tokio::spawn(async move { buffer.append(vec![incoming(&format!("s{}", i % 7))]).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().len(), 1);
    }
    let commits = buffer.gauges().commits.get();
    assert_eq!(buffer.stats().await.unwrap().depth, 200);
    assert!(
        commits < 200,
        "group commit: {commits} commits for 200 requests"
    );
    drop(buffer);
    thread.join().unwrap();
}

/// What the buffer is supposed to be: a FIFO of envelopes with a byte cap.
#[derive(Debug, Clone)]
enum Op {
    Append(Vec<u8>),
    Forward(usize),
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => prop::collection::vec(0u8..5, 1..6).prop_map(Op::Append),
        2 => (1usize..8).prop_map(Op::Forward),
        1 => Just(Op::Reopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Model-based: the store behaves like a `VecDeque` of readings with a byte cap — appends
    /// refused only when the cap would be passed, forwarding takes the oldest in order, and a
    /// reopen (a restart) loses nothing.
    #[test]
    fn the_buffer_behaves_like_a_capped_fifo(ops in prop::collection::vec(op(), 1..40), cap_readings in 3u64..12) {
        let dir = tempfile::tempdir().unwrap();
        let cap = stored_size(0) * cap_readings;
        let mut store = Store::open(config(&dir, cap)).unwrap();
        // The model: (reading id, stored bytes) in arrival order, and the next sequence number
        // (where a buffer empty at a start begins is random: the model takes it from the store).
        let mut model: VecDeque<(String, u64)> = VecDeque::new();
        let mut next_seq = store.next_seq();
        for op in ops {
            match op {
                Op::Append(sensors) => {
                    let sizes: Vec<u64> = sensors.iter().map(|s| stored_size(*s)).collect();
                    let held: u64 = model.iter().map(|(_, size)| size).sum();
                    let fits = held + sizes.iter().sum::<u64>() <= cap;
                    let items: Vec<Incoming> = sensors.iter().map(|s| incoming(&format!("s{s}"))).collect();
                    let answer = store.append(&[items]).unwrap().remove(0);
                    prop_assert_eq!(answer.is_ok(), fits);
                    if let Ok(accepted) = answer {
                        model.extend(accepted.into_iter().map(|a| a.reading_id.to_string()).zip(sizes));
                        next_seq += sensors.len() as u64;
                    }
                }
                Op::Forward(n) => {
                    let batch = store.peek(n, usize::MAX).unwrap();
                    let ids: Vec<String> = batch.iter().map(|s| envelope_id(&s.envelope().unwrap())).collect();
                    let expected: Vec<String> = model.iter().take(n).map(|(id, _)| id.clone()).collect();
                    prop_assert_eq!(&ids, &expected);
                    store.remove(&batch.iter().map(|s| s.seq).collect::<Vec<_>>()).unwrap();
                    model.drain(..ids.len());
                }
                Op::Reopen => {
                    drop(store);
                    store = Store::open(config(&dir, cap)).unwrap();
                    if model.is_empty() {
                        next_seq = store.next_seq();
                    }
                    prop_assert_eq!(store.next_seq(), next_seq);
                }
            }
            prop_assert_eq!(store.depth(), model.len() as u64);
            prop_assert_eq!(store.bytes(), model.iter().map(|(_, size)| size).sum::<u64>());
        }
    }
}

/// Bytes the store holds for the reading of sensor `s{sensor}`.
fn stored_size(sensor: u8) -> u64 {
    let agent = AgentId::parse("edge-1").unwrap();
    Prepared::new(&incoming(&format!("s{sensor}")), &agent)
        .record
        .len() as u64
}

fn envelope_id(bytes: &[u8]) -> String {
    emberline_core::Envelope::from_slice(bytes)
        .unwrap()
        .reading_id
        .to_string()
}

#[test]
fn stored_envelopes_are_the_envelope_of_the_reading() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(config(&dir, u64::MAX)).unwrap();
    // A device that numbers its readings, an offset and nanoseconds in both times, an extra
    // field, a name that JSON escapes.
    let mut json = serde_json::to_value(reading("x", Some(3))).unwrap();
    json["source_name"] = serde_json::json!("a \"quoted\" sensor");
    json["timestamp"] = serde_json::json!("2025-05-24T20:03:11.123456789+02:00");
    json["battery"] = serde_json::json!({"volts": 3.7, "ok": true});
    let now = datetime!(2025-05-24 18:04 UTC);
    let numbered = Incoming {
        reading: Reading::from_json(json, &Limits::default(), now).unwrap(),
        protocol: Protocol::Mqtt,
        received_at: datetime!(2025-05-24 18:03:12.987654321 UTC),
    };
    let items = vec![incoming("plain"), numbered];
    let answered = ids(store.append(std::slice::from_ref(&items)).unwrap());
    assert!(answered[1].starts_with("d:"), "{answered:?}");
    let agent = AgentId::parse("edge-1").unwrap();
    let stored = store.peek(10, usize::MAX).unwrap();
    assert_eq!(stored.len(), 2);
    for ((stored, item), id) in stored.iter().zip(items).zip(answered) {
        // The id a device was given in its 202 is the one its reading travels under.
        let expected = emberline_core::Envelope::new(
            serde_json::from_value(serde_json::json!(id)).unwrap(),
            agent.clone(),
            item.received_at,
            item.protocol,
            item.reading,
        );
        assert_eq!(stored.envelope().unwrap(), expected.to_vec());
    }
}

#[test]
fn envelopes_stored_by_an_older_agent_go_out_as_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(config(&dir, u64::MAX)).unwrap();
    let n = store.next_seq();
    let stored = legacy_then_new(&dir, &mut store);
    assert_eq!(stored[0].envelope().unwrap(), LEGACY);
    assert_eq!(
        envelope_id(&stored[1].envelope().unwrap()),
        format!("a:edge-1:{n}")
    );
}

/// Before the compact form, a row held the envelope's JSON and its id.
const LEGACY: &[u8] = br#"{"reading_id":"a:edge-0:7","v":1,"agent_id":"edge-0","received_at":"2025-05-24T18:03:12Z","protocol":"http","reading":{"timestamp":"2025-05-24T18:03:11Z","latitude":1.0,"longitude":2.0,"temperature":20.0,"humidity":50.0,"wind_speed":3.0,"wind_direction":90.0,"vegetation_density":0.3,"air_quality_index":20.0,"source_name":"old","big":123456789012345678901234567890}}"#;

/// An older agent's row ([`LEGACY`], received as `edge-0`), then a reading `store` numbers.
fn legacy_then_new(dir: &tempfile::TempDir, store: &mut Store) -> Vec<Stored> {
    rusqlite::Connection::open(dir.path().join("buffer.db"))
        .unwrap()
        .execute(
            "INSERT INTO readings (seq, reading_id, received_at_ns, envelope) VALUES (?1, 'a:edge-0:7', 0, ?2)",
            rusqlite::params![store.next_seq() - 1, LEGACY],
        )
        .unwrap();
    store.append(&[vec![incoming("new")]]).unwrap();
    Store::open(config(dir, u64::MAX))
        .unwrap()
        .peek(10, usize::MAX)
        .unwrap()
}

#[test]
fn readings_received_under_an_earlier_agent_id_go_out_under_the_current_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(config(&dir, u64::MAX)).unwrap();
    let n = store.next_seq();
    let stored = legacy_then_new(&dir, &mut store);
    let renamed = AgentId::parse("edge-2").unwrap();
    for (stored, id) in stored
        .iter()
        .zip(["a:edge-0:7".to_owned(), format!("a:edge-1:{n}")])
    {
        let before = Envelope::from_slice(&stored.envelope().unwrap()).unwrap();
        let sent = Envelope::from_slice(&stored.envelope_for(&renamed).unwrap()).unwrap();
        // The id made at ingest stays (a redelivery is still a duplicate); the agent is the one
        // whose token the bridge checks.
        assert_eq!(
            (sent.reading_id.to_string(), sent.agent_id),
            (id, renamed.clone())
        );
        assert_eq!(sent.reading, before.reading);
        assert_eq!(sent.received_at, before.received_at);
    }
    let relabelled = String::from_utf8(stored[0].envelope_for(&renamed).unwrap()).unwrap();
    assert!(
        relabelled.contains(":123456789012345678901234567890}"),
        "{relabelled}"
    );
    assert_eq!(
        (stored[0].received_by(), stored[1].received_by()),
        (None, Some("edge-1"))
    );
    // Under the id they were received with, both go out byte for byte as made at ingest.
    let (edge0, edge1) = (
        AgentId::parse("edge-0").unwrap(),
        AgentId::parse("edge-1").unwrap(),
    );
    assert_eq!(stored[0].envelope_for(&edge0).unwrap(), LEGACY);
    assert_eq!(
        stored[1].envelope_for(&edge1).unwrap(),
        stored[1].envelope().unwrap()
    );
}

#[test]
fn a_record_of_no_known_form_is_an_error_not_an_envelope() {
    // Sent as they are, these would get their whole batch refused by the bridge.
    for record in [&b""[..], b"\x00", b"\x02abc", b"{\"v\":1", b"{not json"] {
        assert!(
            Stored::new(1, 0, record.to_vec()).envelope().is_err(),
            "{record:?}"
        );
    }
}
