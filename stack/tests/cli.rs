//! The main command's building block, run as a user runs it: `emberline-stack up` brings up a
//! real broker with every topic and finds PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::process::Command;

use emberline_stack::STANDARD_TOPICS;
use emberline_stack::broker::free_port;

fn stack() -> Command {
    Command::new(env!("CARGO_BIN_EXE_emberline-stack"))
}

#[test]
fn up_smoke_starts_the_broker_creates_every_topic_and_checks_postgres() {
    let data = tempfile::tempdir().unwrap();
    let port = free_port().unwrap();
    let output = stack()
        .args(["up", "--smoke", "--kafka-port", &port.to_string()])
        .arg("--data-dir")
        .arg(data.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for (topic, partitions) in STANDARD_TOPICS {
        let line = stdout
            .lines()
            .find(|line| line.split_whitespace().next() == Some(topic))
            .unwrap_or_else(|| panic!("topic {topic} missing from:\n{stdout}"));
        let unit = if partitions == 1 {
            "partition"
        } else {
            "partitions"
        };
        assert!(line.contains(&format!(" {partitions} {unit}")), "{line}");
    }
    assert!(stdout.contains("postgresql: ok (PostgreSQL"), "{stdout}");
    assert!(
        data.path().join("broker/tansu.db").exists(),
        "SQLite storage in the data dir"
    );

    // Data is kept: a second start finds the topics already there.
    let again = stack()
        .args(["up", "--smoke", "--kafka-port", &port.to_string()])
        .arg("--data-dir")
        .arg(data.path())
        .output()
        .unwrap();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}

#[test]
fn check_fails_clearly_when_nothing_listens() {
    let port = free_port().unwrap();
    let output = stack()
        .args(["check", "--brokers", &format!("127.0.0.1:{port}")])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("does not answer"), "{stderr}");
}

#[test]
fn a_bad_database_url_is_reported_without_its_password() {
    let data = tempfile::tempdir().unwrap();
    let port = free_port().unwrap();
    let output = stack()
        .args(["up", "--smoke", "--kafka-port", &port.to_string()])
        .args([
            "--database-url",
            "postgres://emberline:s3cret@127.0.0.1:1/none",
        ])
        .arg("--data-dir")
        .arg(data.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(all.contains("emberline:***@127.0.0.1:1"), "{all}");
    assert!(!all.contains("s3cret"), "{all}");
}

#[test]
fn check_fails_when_emberline_topics_are_missing() {
    let data = tempfile::tempdir().unwrap();
    let port = free_port().unwrap();
    let config = emberline_stack::BrokerConfig::new(data.path(), port).unwrap();
    let _broker = emberline_stack::Broker::start(config).unwrap();
    let output = stack()
        .args(["check", "--brokers", &format!("127.0.0.1:{port}")])
        .output()
        .unwrap();
    assert!(
        !output.status.success(),
        "a broker without the topics is not a healthy stack"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is missing"), "{stderr}");
}
