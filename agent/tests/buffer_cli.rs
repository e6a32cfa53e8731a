//! `emberline-agent buffer stats` and `buffer export`, run as an operator runs them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::Path;
use std::process::{Command, Output};

use emberline_agent::buffer::{Durability, Incoming, Store, StoreConfig};
use emberline_core::{AgentId, Envelope, Limits, Protocol, Reading};
use time::OffsetDateTime;

/// `emberline-agent buffer <args> --path <path>`.
fn buffer(args: &[&str], path: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_emberline-agent"))
        .arg("buffer")
        .args(args)
        .arg("--path")
        .arg(path)
        .output()
        .unwrap()
}

/// The buffer of agent `edge-9` at `path`.
fn open(path: &Path) -> Store {
    Store::open(StoreConfig {
        path: path.to_owned(),
        agent_id: AgentId::parse("edge-9").unwrap(),
        max_bytes: u64::MAX,
        durability: Durability::Full,
        max_rejected_bytes: emberline_agent::buffer::DEFAULT_MAX_REJECTED_BYTES,
    })
    .unwrap()
}

/// A buffer at `path` holding three readings, and the seq of the first.
fn filled(path: &Path, now: OffsetDateTime) -> (Store, u64) {
    let mut store = open(path);
    let first = store.next_seq();
    let items: Vec<Incoming> = (0..3)
        .map(|i| {
            let body = format!(
                r#"{{"timestamp":"2025-05-24T18:03:11Z","latitude":1,"longitude":2,"temperature":20,"humidity":50,
                "wind_speed":3,"wind_direction":90,"vegetation_density":0.3,"air_quality_index":20,"source_name":"s{i}"}}"#
            );
            Incoming {
                reading: Reading::parse(body.as_bytes(), &Limits::default(), now).unwrap(),
                protocol: Protocol::Http,
                received_at: now,
            }
        })
        .collect();
    store.append(&[items]).unwrap();
    (store, first)
}

/// The reading ids of `buffer export`'s output, in order.
fn exported_ids(export: &Output) -> Vec<String> {
    String::from_utf8(export.stdout.clone())
        .unwrap()
        .lines()
        .map(|line| {
            Envelope::from_slice(line.as_bytes())
                .unwrap()
                .reading_id
                .to_string()
        })
        .collect()
}

/// The lines of `buffer export --quarantined`.
fn quarantined(path: &Path) -> Vec<serde_json::Value> {
    let out = buffer(&["export", "--quarantined"], path);
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[test]
fn stats_and_export_show_what_is_buffered() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("buffer.db");
    let now = OffsetDateTime::now_utc();
    let (mut store, first) = filled(&path, now);
    let oldest = store.peek(1, usize::MAX).unwrap().remove(0);
    let kept = [
        (oldest.seq, oldest.envelope().unwrap()),
        (first + 100, vec![1, 2, 0xff]),
    ];
    store
        .quarantine(&kept, "refused by the bridge", now)
        .unwrap();
    drop(store);

    let stats = buffer(&["stats"], &path);
    assert!(
        stats.status.success(),
        "{}",
        String::from_utf8_lossy(&stats.stderr)
    );
    let text = String::from_utf8(stats.stdout).unwrap();
    assert!(text.contains("readings:    2"), "{text}");
    assert!(text.contains("quarantined: 1"), "{text}");

    let export = buffer(&["export"], &path);
    assert!(export.status.success());
    assert_eq!(
        exported_ids(&export),
        [
            format!("a:edge-9:{}", first + 1),
            format!("a:edge-9:{}", first + 2)
        ],
        "oldest first, quarantined one left out"
    );

    let lines = quarantined(&path);
    assert_eq!(
        lines.len(),
        1,
        "only readings still buffered can be set aside"
    );
    assert_eq!(lines[0]["seq"], first);
    assert_eq!(lines[0]["reason"], "refused by the bridge");
    assert_eq!(
        lines[0]["envelope"]["reading_id"],
        format!("a:edge-9:{first}")
    );

    let missing = buffer(&["stats"], &dir.path().join("none.db"));
    assert!(
        !missing.status.success(),
        "a missing buffer is an error, not a new empty one"
    );
}

#[test]
fn a_damaged_record_is_left_out_of_export_and_kept_in_quarantine_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("buffer.db");
    let now = OffsetDateTime::now_utc();
    let (store, first) = filled(&path, now);
    drop(store);
    // A bad disk block inside one record: a compact record cut short.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE readings SET envelope = x'0100050102' WHERE seq = ?1",
        [first + 1],
    )
    .unwrap();
    drop(conn);

    let export = buffer(&["export"], &path);
    assert!(!export.status.success(), "a damaged record is reported");
    let stderr = String::from_utf8_lossy(&export.stderr);
    assert!(
        stderr.contains(&format!("reading {} left out", first + 1)),
        "{stderr}"
    );
    assert_eq!(
        exported_ids(&export),
        [
            format!("a:edge-9:{first}"),
            format!("a:edge-9:{}", first + 2)
        ]
    );

    let mut store = open(&path);
    let damaged = store.peek_after(first, 1, usize::MAX).unwrap().remove(0);
    assert!(damaged.envelope().is_err());
    store
        .quarantine(&[(damaged.seq, damaged.record().to_vec())], "damaged", now)
        .unwrap();
    drop(store);
    let lines = quarantined(&path);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["record"], "0100050102");
    assert_eq!(lines[0]["reason"], "damaged");
}

#[test]
fn a_damaged_buffer_is_reported_and_left_where_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("buffer.db");
    let garbage = b"this is not a database, it is garbage ".repeat(200);
    std::fs::write(&path, &garbage).unwrap();
    for command in ["stats", "export"] {
        let out = buffer(&[command], &path);
        assert!(!out.status.success(), "{command} on a damaged buffer");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(".recover"), "{command}: {stderr}");
        // Looking must not change anything: the file is neither set aside nor replaced.
        assert_eq!(std::fs::read(&path).unwrap(), garbage, "{command}");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "{command}"
        );
    }
}
