//! The conformance suite against SQLite files (and the in-memory variant).

use std::sync::Arc;

use agentry_storage::ManualClock;
use agentry_storage::sqlite::{SqliteOptions, SqliteStore};
use agentry_storage::testsuite::TestStore;

async fn setup(clock: Arc<ManualClock>) -> Option<TestStore> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let options = SqliteOptions { clock, ..SqliteOptions::default() };
    let store = SqliteStore::open(dir.path().join("store.db"), options).await.expect("open sqlite store");
    Some(TestStore { store: Box::new(store), guard: Box::new(dir), cleanup: None })
}

agentry_storage::storage_testsuite!(setup);

mod memory {
    use super::*;

    async fn setup(clock: Arc<ManualClock>) -> Option<TestStore> {
        let options = SqliteOptions { clock, ..SqliteOptions::default() };
        let store = SqliteStore::open_in_memory(options).await.expect("open in-memory store");
        Some(TestStore { store: Box::new(store), guard: Box::new(()), cleanup: None })
    }

    agentry_storage::storage_testsuite!(setup);
}
