//! The test-support helpers themselves: databases come and go, names never collide, the shared
//! broker takes topics.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::collections::HashSet;
use std::time::Duration;

use emberline_testkit::{TestDb, create_topic, shared_broker, unique_name, wait_until};
use sqlx::Row as _;

#[test]
fn unique_names_do_not_repeat() {
    let names: HashSet<String> = (0..1000).map(|_| unique_name("t")).collect();
    assert_eq!(names.len(), 1000);
}

#[tokio::test]
async fn a_test_database_is_fresh_usable_and_dropped_afterwards() {
    let db = TestDb::create().await;
    let name = db.name.clone();
    sqlx::query("CREATE TABLE t (id int PRIMARY KEY)")
        .execute(&db.pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO t VALUES (1)")
        .execute(&db.pool)
        .await
        .unwrap();
    let row = sqlx::query("SELECT count(*) AS n FROM t")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(row.get::<i64, _>("n"), 1);
    let other = TestDb::create().await;
    assert_ne!(other.name, name);
    let admin = other.pool.clone();
    drop(db);
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&admin)
            .await
            .unwrap();
    assert!(!exists, "database {name} was not dropped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shared_broker_takes_unique_topics() {
    let bootstrap = tokio::task::block_in_place(shared_broker);
    let topic = create_topic(bootstrap, &unique_name("shared"), 2).await;
    let found = wait_until(
        "topic in metadata",
        Duration::from_secs(10),
        Duration::from_millis(100),
        || {
            let topics = emberline_stack_topics(bootstrap);
            std::future::ready(topics.into_iter().find(|(name, _)| *name == topic))
        },
    )
    .await;
    assert_eq!(found.1, 2);
}

fn emberline_stack_topics(bootstrap: &str) -> Vec<(String, usize)> {
    emberline_stack::topics::describe(bootstrap, Duration::from_secs(5)).unwrap()
}
