use std::sync::Arc;

use agentry_queue::sqlite::{SqliteOptions, SqliteQueue, Synchronous};
use agentry_queue::{Error, ManualClock, Queue, QueueAttributes, QueueExt, ReceiveOptions, SendMessage};

async fn setup() -> Option<(Arc<dyn Queue>, ManualClock, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let queue = SqliteQueue::open_with(SqliteOptions::new(dir.path().join("queue.db")), Arc::new(clock.clone()))
        .await
        .unwrap();
    Some((Arc::new(queue), clock, dir))
}

agentry_queue::testsuite!(setup);

#[tokio::test]
async fn messages_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("q.db").display());
    let q = agentry_queue::open(&url).await.unwrap();
    q.create_queue("jobs", &QueueAttributes::default()).await.unwrap();
    let id = q.send("jobs", SendMessage::new("durable")).await.unwrap().message_id;
    drop(q);
    let q = agentry_queue::open(&url).await.unwrap();
    let got = q.receive("jobs", ReceiveOptions::max(1)).await.unwrap();
    assert_eq!(got[0].message_id, id);
}

#[tokio::test]
async fn a_missing_database_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent").join("q.db");
    let options = SqliteOptions { path: path.clone(), synchronous: Synchronous::Full, create: false };
    let e = SqliteQueue::open_with(options, Arc::new(ManualClock::new())).await.unwrap_err();
    assert!(matches!(e, Error::Unavailable(_)));
    assert!(e.to_string().contains(&path.display().to_string()), "{e}");
}

#[tokio::test]
async fn a_database_from_a_newer_build_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    drop(SqliteQueue::open(&path).await.unwrap());
    let conn = agentry_queue::sqlite::connect(&SqliteOptions::new(&path)).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let e = SqliteQueue::open(&path).await.unwrap_err();
    assert!(e.to_string().contains("schema version 99 is newer"), "{e}");
}
