//! The buffer's side tables: readings set aside (quarantine) and payloads that failed validation
//! (rejected, a ring under its own cap).

use emberline_core::Protocol;
use time::macros::datetime;

use super::tests::{config, incoming};
use super::*;

#[test]
fn quarantine_and_rejects_are_kept_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(config(&dir, u64::MAX)).unwrap();
    let n = store.next_seq();
    store.append(&[vec![incoming("a"), incoming("b")]]).unwrap();
    let now = datetime!(2025-05-24 18:05 UTC);
    store
        .quarantine(&[(n, b"{\"kept\":1}".to_vec())], "bridge said 400", now)
        .unwrap();
    store
        .reject(
            Protocol::Mqtt,
            "sensors/x/readings",
            b"{bad",
            "malformed",
            now,
        )
        .unwrap();
    let stats = store.stats().unwrap();
    assert_eq!((stats.depth, stats.quarantined, stats.rejected), (1, 1, 1));
    assert_eq!(store.peek(10, usize::MAX).unwrap()[0].seq, n + 1);
    assert_eq!(
        store.quarantined().unwrap(),
        [(n, b"{\"kept\":1}".to_vec(), "bridge said 400".to_owned())]
    );
    // A reading no longer buffered is not set aside (nor counted) again.
    store
        .quarantine(&[(n, b"{}".to_vec())], "again", now)
        .unwrap();
    assert_eq!(store.quarantined_count(), 1);
    drop(store);
    let store = Store::open(config(&dir, u64::MAX)).unwrap();
    assert_eq!(store.quarantined_count(), 1, "counted again at a start");
}

#[test]
fn the_rejected_table_is_a_ring_under_its_cap_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        max_rejected_bytes: 100,
        ..config(&dir, u64::MAX)
    };
    let now = datetime!(2025-05-24 18:05 UTC);
    let reject = |store: &mut Store, payload: &str| {
        // 20 bytes a row: 10 of payload, 5 of origin, 5 of reason.
        store.reject(Protocol::Mqtt, "topic", payload.as_bytes(), "error", now)
    };
    let mut store = Store::open(config.clone()).unwrap();
    let n = store.next_seq();
    store.append(&[vec![incoming("a")]]).unwrap();
    for i in 0..5 {
        assert_eq!(reject(&mut store, &format!("payload-{i:02}")).unwrap(), 0);
    }
    assert_eq!(store.rejected_bytes(), 100);
    drop(store);

    let mut store = Store::open(config).unwrap();
    assert_eq!(store.rejected_bytes(), 100, "counted again at a start");
    assert_eq!(
        reject(&mut store, "payload-05").unwrap(),
        1,
        "the oldest goes"
    );
    assert_eq!(reject(&mut store, &"x".repeat(60)).unwrap(), 4);
    assert_eq!(store.rejected_bytes(), 90);
    assert_eq!(
        reject(&mut store, &"y".repeat(200)).unwrap(),
        2,
        "a row larger than the cap is kept alone"
    );
    assert_eq!(store.rejected_bytes(), 210);
    let stats = store.stats().unwrap();
    assert_eq!((stats.rejected, stats.depth), (1, 1), "readings untouched");
    assert_eq!(store.peek(10, usize::MAX).unwrap()[0].seq, n);
}

/// The newest reading set aside while older ones wait, then a restart: numbering goes on above
/// it. Before, its `seq` (and its reading id) was given again, and setting the new reading aside
/// replaced the first one in the quarantine.
#[test]
fn a_restart_never_numbers_a_reading_under_a_quarantined_seq() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(config(&dir, u64::MAX)).unwrap();
    let n = store.next_seq();
    let three = vec![incoming("a"), incoming("b"), incoming("c")];
    store.append(&[three]).unwrap();
    let now = datetime!(2025-05-24 18:05 UTC);
    store
        .quarantine(&[(n + 2, b"first".to_vec())], "damaged", now)
        .unwrap();
    drop(store);
    let mut store = Store::open(config(&dir, u64::MAX)).unwrap();
    assert_eq!(store.next_seq(), n + 3);
    store.append(&[vec![incoming("d")]]).unwrap();
    store
        .quarantine(&[(n + 3, b"second".to_vec())], "damaged", now)
        .unwrap();
    let kept: Vec<_> = store
        .quarantined()
        .unwrap()
        .into_iter()
        .map(|(seq, bytes, _)| (seq, bytes))
        .collect();
    assert_eq!(
        kept,
        [(n + 2, b"first".to_vec()), (n + 3, b"second".to_vec())]
    );
    assert_eq!(
        (
            store.quarantined_count(),
            store.stats().unwrap().quarantined
        ),
        (2, 2)
    );
}
