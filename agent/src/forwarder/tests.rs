use super::*;

#[test]
fn answers_are_classified_without_io() {
    assert_eq!(classify(Some(StatusCode::OK), None, ""), Outcome::Delivered);
    assert_eq!(
        classify(Some(StatusCode::PAYLOAD_TOO_LARGE), None, ""),
        Outcome::Split
    );
    assert!(
        matches!(classify(Some(StatusCode::BAD_REQUEST), None, "line 3"), Outcome::Quarantine { reason, line: None } if reason.contains("line 3"))
    );
    let named = r#"{"error":"malformed","message":"line 3: …","line":3}"#;
    assert!(matches!(
        classify(Some(StatusCode::BAD_REQUEST), None, named),
        Outcome::Quarantine { line: Some(3), .. }
    ));
    let later = Some(Duration::from_secs(7));
    assert_eq!(
        classify(Some(StatusCode::SERVICE_UNAVAILABLE), later, ""),
        Outcome::Retry { after: later }
    );
    for status in [
        StatusCode::UNAUTHORIZED,
        StatusCode::FORBIDDEN,
        StatusCode::INTERNAL_SERVER_ERROR,
        StatusCode::BAD_GATEWAY,
    ] {
        assert_eq!(
            classify(Some(status), None, ""),
            Outcome::Retry { after: None },
            "{status}"
        );
    }
    assert_eq!(classify(None, None, ""), Outcome::Retry { after: None });
}

#[test]
fn a_refused_batch_is_narrowed_to_the_readings_before_the_one_at_fault() {
    assert_eq!(narrowed(25, Some(11)), 10, "the ten before it go through");
    assert_eq!(narrowed(15, Some(1)), 1, "then it goes alone");
    assert_eq!(narrowed(25, Some(2)), 1);
    assert_eq!(narrowed(25, None), 12, "no line named: halved");
    assert_eq!(
        narrowed(25, Some(99)),
        12,
        "a line past the batch is not trusted"
    );
    assert_eq!(narrowed(2, None), 1);
}

#[test]
fn a_batch_stops_at_its_byte_limit_and_leaves_damaged_records_out() {
    use crate::buffer::Store;
    use crate::buffer::tests::{config, incoming};
    use std::io::Read as _;

    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(config(&dir, u64::MAX)).unwrap();
    let n = store.next_seq();
    let seqs: Vec<u64> = (n..n + 4).collect();
    let items = (0..4).map(|i| incoming(&format!("s{i}"))).collect();
    store.append(&[items]).unwrap();
    rusqlite::Connection::open(dir.path().join("buffer.db"))
        .unwrap()
        .execute(
            "UPDATE readings SET envelope = x'01' WHERE seq = ?1",
            [seqs[1]],
        )
        .unwrap();
    let stored = store.peek(4, usize::MAX).unwrap();
    let line = stored[0].envelope().unwrap().len() + 1;

    let agent = AgentId::parse("edge-1").unwrap();
    let (outgoing, damaged) = make_batch(stored.clone(), 2 * line, &agent);
    let sent: Vec<u64> = outgoing.readings.iter().map(|s| s.seq).collect();
    assert_eq!(
        sent,
        [seqs[0], seqs[2]],
        "two lines fit; the damaged one is left out"
    );
    let (records, reason) = damaged.unwrap();
    assert_eq!(records, [(seqs[1], vec![1])]);
    assert!(reason.contains("damaged"), "{reason}");
    let mut body = String::new();
    flate2::read::GzDecoder::new(&outgoing.body.unwrap()[..])
        .read_to_string(&mut body)
        .unwrap();
    let expected: String = [&stored[0], &stored[2]]
        .iter()
        .map(|s| String::from_utf8(s.envelope().unwrap()).unwrap() + "\n")
        .collect();
    assert_eq!(body, expected);

    let (outgoing, _) = make_batch(stored, 1, &agent);
    assert_eq!(
        outgoing.readings.len(),
        1,
        "one reading goes even past the limit"
    );
}

#[test]
fn retry_after_is_read_in_seconds_and_capped() {
    let mut headers = hyper::header::HeaderMap::new();
    headers.insert(RETRY_AFTER, "12".parse().unwrap());
    assert_eq!(retry_after(&headers), Some(Duration::from_secs(12)));
    headers.insert(RETRY_AFTER, "999999".parse().unwrap());
    assert_eq!(retry_after(&headers), Some(Duration::from_secs(300)));
    headers.insert(
        RETRY_AFTER,
        "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
    );
    assert_eq!(retry_after(&headers), None);
}
