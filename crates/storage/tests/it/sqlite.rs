//! The conformance suite against SQLite files (and the in-memory variant).

use std::sync::Arc;

use agentry_storage::ManualClock;
use agentry_storage::sqlite::{SqliteOptions, SqliteStore};
use agentry_storage::testsuite::TestStore;

async fn setup(clock: Arc<ManualClock>) -> Option<TestStore> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let options = SqliteOptions {
        clock,
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open(dir.path().join("store.db"), options)
        .await
        .expect("open sqlite store");
    Some(TestStore {
        store: Box::new(store),
        guard: Box::new(dir),
        cleanup: None,
    })
}

agentry_storage::storage_testsuite!(setup);

mod memory {
    use super::*;

    async fn setup(clock: Arc<ManualClock>) -> Option<TestStore> {
        let options = SqliteOptions {
            clock,
            ..SqliteOptions::default()
        };
        let store = SqliteStore::open_in_memory(options)
            .await
            .expect("open in-memory store");
        Some(TestStore {
            store: Box::new(store),
            guard: Box::new(()),
            cleanup: None,
        })
    }

    agentry_storage::storage_testsuite!(setup);
}

mod sweeper {
    use super::*;
    use agentry_storage::{ChangeKind, ItemStore, ItemStoreExt, Key, TableSpec, spawn_ttl_sweeper};
    use serde_json::json;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn sweeper_purges_expired_items() {
        let clock = Arc::new(ManualClock::new(agentry_storage::testsuite::START));
        let options = SqliteOptions {
            clock: clock.clone(),
            ..SqliteOptions::default()
        };
        let store: Arc<dyn ItemStore> =
            Arc::new(SqliteStore::open_in_memory(options).await.unwrap());
        store
            .create_table(&TableSpec::new("Cache").with_ttl("ttl").with_stream())
            .await
            .unwrap();
        let soon = agentry_storage::testsuite::START + 60;
        for i in 0..1200 {
            let ttl = if i % 2 == 0 { soon } else { soon + 3600 };
            store
                .put(
                    "Cache",
                    Key::new("llm", format!("{i:05}")),
                    json!({"ttl": ttl}).as_object().unwrap().clone(),
                )
                .await
                .unwrap();
        }
        let sweeper =
            spawn_ttl_sweeper(store.clone(), vec!["Cache".into()], Duration::from_secs(30));
        clock.advance(60);
        // Sweeper periods pass on tokio's paused clock; the purges themselves run on the
        // store's writer thread in real time, so wait (boundedly) for them to land.
        let real_deadline = std::time::Instant::now() + Duration::from_secs(20);
        let mut removed = Vec::new();
        while std::time::Instant::now() < real_deadline {
            tokio::time::sleep(Duration::from_secs(30)).await;
            removed = store
                .read_changes("Cache", "llm", 1200, 1000)
                .await
                .unwrap();
            if removed.len() >= 600 {
                break;
            }
        }
        sweeper.abort();
        assert_eq!(
            removed.len(),
            600,
            "every expired item purged, over several batches"
        );
        assert!(removed.iter().all(|c| c.kind == ChangeKind::Remove
            && c.old.as_ref().unwrap().attributes["ttl"] == json!(soon)));
        assert_eq!(store.purge_expired("Cache", 1000).await.unwrap(), 0);
    }
}

/// The writer commits many callers' transactions together without a savepoint each; a write
/// that fails after its transaction's conditions passed must still undo only that
/// transaction, and every other one of the batch commit.
mod group_commit {
    use super::*;
    use agentry_storage::{ItemStore, ItemStoreExt, Key, TableSpec, Write};
    use serde_json::json;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_failing_midway_undoes_only_its_own_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let store = Arc::new(
            SqliteStore::open(&path, SqliteOptions::default())
                .await
                .unwrap(),
        );
        store.create_table(&TableSpec::new("things")).await.unwrap();
        // Any row written under partition "boom" fails inside SQLite, after planning.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TRIGGER boom BEFORE INSERT ON items WHEN NEW.pk = 'boom'
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
        )
        .unwrap();
        drop(conn);
        let attrs = |i: usize| json!({"i": i}).as_object().cloned().expect("an object");
        let mut calls = tokio::task::JoinSet::new();
        for i in 0..60 {
            let store = store.clone();
            calls.spawn(async move {
                let mut writes = vec![
                    Write::put("things", Key::new("ok", format!("{i:03}")), attrs(i)),
                    Write::put("things", Key::new("other", format!("{i:03}")), attrs(i)),
                ];
                if i % 20 == 7 {
                    writes.push(Write::put(
                        "things",
                        Key::new("boom", format!("{i:03}")),
                        attrs(i),
                    ));
                }
                (i, store.transact(writes).await)
            });
        }
        for (i, r) in calls.join_all().await {
            let stored = store
                .get("things", &Key::new("ok", format!("{i:03}")))
                .await
                .unwrap();
            if i % 20 == 7 {
                let e = r.expect_err("the failing write's transaction fails");
                assert!(e.to_string().contains("injected failure"), "{e}");
                assert!(
                    stored.is_none(),
                    "transaction {i} left its first write behind"
                );
            } else {
                r.unwrap_or_else(|e| panic!("transaction {i} failed with another's: {e}"));
                assert_eq!(stored.unwrap().attributes, attrs(i));
            }
        }
    }
}
