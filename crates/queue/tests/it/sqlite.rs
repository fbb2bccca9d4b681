use std::sync::Arc;

use agentry_queue::sqlite::{SqliteOptions, SqliteQueue, Synchronous};
use agentry_queue::{
    Error, ManualClock, Queue, QueueAttributes, QueueExt, ReceiveOptions, SendMessage,
};

async fn setup() -> Option<(Arc<dyn Queue>, ManualClock, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let queue = SqliteQueue::open_with(
        SqliteOptions::new(dir.path().join("queue.db")),
        Arc::new(clock.clone()),
    )
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
    q.create_queue("jobs", &QueueAttributes::default())
        .await
        .unwrap();
    let id = q
        .send("jobs", SendMessage::new("durable"))
        .await
        .unwrap()
        .message_id;
    drop(q);
    let q = agentry_queue::open(&url).await.unwrap();
    let got = q.receive("jobs", ReceiveOptions::max(1)).await.unwrap();
    assert_eq!(got[0].message_id, id);
}

#[tokio::test]
async fn a_missing_database_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent").join("q.db");
    let options = SqliteOptions {
        path: path.clone(),
        synchronous: Synchronous::Full,
        create: false,
    };
    let e = SqliteQueue::open_with(options, Arc::new(ManualClock::new()))
        .await
        .unwrap_err();
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

#[tokio::test]
async fn two_processes_sharing_a_file_see_each_others_queues() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let a = SqliteQueue::open(&path).await.unwrap();
    let b = SqliteQueue::open(&path).await.unwrap();
    a.create_queue("shared", &QueueAttributes::default())
        .await
        .unwrap();
    a.send("shared", SendMessage::new("from a")).await.unwrap();
    assert_eq!(
        b.receive("shared", ReceiveOptions::max(1)).await.unwrap()[0].body,
        "from a"
    );
    b.delete_queue("shared").await.unwrap();
    let longer = QueueAttributes {
        visibility_timeout: std::time::Duration::from_secs(60),
        ..Default::default()
    };
    b.create_queue("shared", &longer).await.unwrap();
    // `a` read the old queue's settings before; it must not keep using them.
    assert_eq!(a.get_queue("shared").await.unwrap().attributes, longer);
    b.delete_queue("shared").await.unwrap();
    assert!(matches!(
        a.send("shared", SendMessage::new("x")).await,
        Err(Error::QueueDoesNotExist(_))
    ));
}
