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
