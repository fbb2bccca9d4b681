//! The conformance suite against the PostgreSQL server named by `AGENTRY_TEST_POSTGRES_URL`,
//! each test in a fresh schema so tests running in parallel never see each other's tables.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use agentry_storage::ManualClock;
use agentry_storage::postgres::{PostgresOptions, PostgresStore};
use agentry_storage::testsuite::TestStore;

/// The server's URL, or `None` after saying the tests are skipped (failing under `CI=true`).
pub fn url() -> Option<String> {
    match std::env::var("AGENTRY_TEST_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("AGENTRY_TEST_POSTGRES_URL not set; CI must run the PostgreSQL tests");
            }
            eprintln!("skipped: AGENTRY_TEST_POSTGRES_URL not set");
            None
        }
    }
}

/// A schema name no other test (or earlier run) uses.
pub fn fresh_schema() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "agentry_test_{}_{}_{}",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub async fn drop_schema(url: &str, schema: &str) {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect to drop schema");
    tokio::spawn(conn);
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .await
        .expect("drop test schema");
}

async fn setup(clock: Arc<ManualClock>) -> Option<TestStore> {
    let url = url()?;
    let schema = fresh_schema();
    let options = PostgresOptions {
        schema: Some(schema.clone()),
        clock,
        max_connections: 6,
    };
    let store = PostgresStore::connect(&url, options)
        .await
        .expect("connect postgres store");
    let cleanup = Box::pin(async move { drop_schema(&url, &schema).await });
    Some(TestStore {
        store: Box::new(store),
        guard: Box::new(()),
        cleanup: Some(cleanup),
    })
}

agentry_storage::storage_testsuite!(setup);
