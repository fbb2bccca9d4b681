//! Conditional puts per second against the machine's own limit, measured in one run:
//!
//! - SQLite: the store with N concurrent writers (group commit) against raw single-row
//!   autocommit INSERTs on the same disk with the same `synchronous` setting (the rate at which
//!   this machine can make separate durable commits).
//! - PostgreSQL (feature `postgres`, `AGENTRY_TEST_POSTGRES_URL` set): the store against a raw
//!   single-row INSERT loop over one connection.
//!
//! `cargo bench -p agentry-storage [--features postgres]`; `AGENTRY_BENCH_SECONDS` sets the
//! length of each measurement (default 2).

use std::sync::Arc;
use std::time::{Duration, Instant};

use agentry_storage::sqlite::{SqliteOptions, SqliteStore, Synchronous};
use agentry_storage::{ItemStore, ItemStoreExt, Key, TableSpec};
use serde_json::json;

fn seconds() -> Duration {
    let s = std::env::var("AGENTRY_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    Duration::from_secs_f64(s)
}

/// Raw SQLite: single-row INSERTs, each its own transaction, WAL, given `synchronous`.
fn raw_sqlite(dir: &std::path::Path, sync: Synchronous, tag: &str) -> f64 {
    let conn = rusqlite::Connection::open(dir.join(format!(
        "raw-{}-{tag}-{}.db",
        sync.pragma(),
        std::process::id()
    )))
    .unwrap();
    let _ = conn.execute_batch("DROP TABLE IF EXISTS t");
    let _: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .unwrap();
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {}; CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT NOT NULL);",
        sync.pragma()
    ))
    .unwrap();
    let mut st = conn
        .prepare("INSERT INTO t (k, v) VALUES (?1, ?2)")
        .unwrap();
    let value = json!({"status": "RUNNING", "n": 0}).to_string();
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < seconds() {
        st.execute(rusqlite::params![format!("key-{n}"), value])
            .unwrap();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// The store: `writers` tasks each creating items with `Condition::Absent` as fast as they can.
async fn store_puts(store: Arc<dyn ItemStore>, writers: usize, label: &str) -> f64 {
    let table = format!("Bench-{label}-{writers}");
    store.create_table(&TableSpec::new(&table)).await.unwrap();
    let deadline = Instant::now() + seconds();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        let table = table.clone();
        tasks.push(tokio::spawn(async move {
            let attrs = json!({"status": "RUNNING", "n": 0})
                .as_object()
                .unwrap()
                .clone();
            let mut n = 0u64;
            while Instant::now() < deadline {
                store
                    .put_if_absent(
                        &table,
                        Key::new(format!("exec-{w}"), format!("{n:010}")),
                        attrs.clone(),
                    )
                    .await
                    .unwrap();
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    total as f64 / start.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes `--bench`; anything else (a filter) is ignored.
    let dir = tempfile::tempdir_in(
        std::env::var("AGENTRY_BENCH_DIR")
            .unwrap_or_else(|_| std::env::temp_dir().display().to_string()),
    )
    .unwrap();
    println!(
        "storage benchmark: {} s per measurement, database in {}",
        seconds().as_secs_f64(),
        dir.path().display()
    );
    for sync in [Synchronous::Full, Synchronous::Normal] {
        // The disk and cores are shared and their rates drift: measure the raw rate right
        // before and right after each store run and compare with their mean.
        println!("\nsqlite synchronous={}:", sync.pragma());
        let options = SqliteOptions {
            synchronous: sync,
            ..SqliteOptions::default()
        };
        let store: Arc<dyn ItemStore> = Arc::new(
            SqliteStore::open(
                dir.path().join(format!("store-{}.db", sync.pragma())),
                options,
            )
            .await
            .unwrap(),
        );
        for writers in [1, 8, 64, 256] {
            let before = raw_sqlite(dir.path(), sync, &format!("{writers}-before"));
            let rate = store_puts(store.clone(), writers, "sqlite").await;
            let after = raw_sqlite(dir.path(), sync, &format!("{writers}-after"));
            let raw = (before + after) / 2.0;
            println!(
                "  {writers:>3} writers: store conditional puts {rate:>7.0}/s, raw autocommit \
                 inserts {raw:>6.0}/s (before {before:.0}, after {after:.0}) = {:.2}x raw",
                rate / raw
            );
        }
    }
    #[cfg(feature = "postgres")]
    postgres::run().await;
    #[cfg(not(feature = "postgres"))]
    println!("\npostgres: skipped (build with --features postgres)");
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use agentry_storage::postgres::{PostgresOptions, PostgresStore};

    pub async fn run() {
        let Ok(url) = std::env::var("AGENTRY_TEST_POSTGRES_URL") else {
            println!("\npostgres: skipped (AGENTRY_TEST_POSTGRES_URL not set)");
            return;
        };
        let schema = format!("agentry_bench_{}", std::process::id());
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
            .batch_execute(&format!("CREATE SCHEMA \"{schema}\"; SET search_path TO \"{schema}\"; CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT NOT NULL)"))
            .await
            .unwrap();
        let st = client
            .prepare("INSERT INTO t (k, v) VALUES ($1, $2)")
            .await
            .unwrap();
        let value = json!({"status": "RUNNING", "n": 0}).to_string();
        let mut n = 0u64;
        let mut raw = async || {
            let start = Instant::now();
            let begun = n;
            while start.elapsed() < seconds() {
                client
                    .execute(&st, &[&format!("key-{n}"), &value])
                    .await
                    .unwrap();
                n += 1;
            }
            (n - begun) as f64 / start.elapsed().as_secs_f64()
        };
        println!("\npostgres (raw: single-row INSERTs, autocommit, one connection):");
        let options = PostgresOptions {
            schema: Some(schema.clone()),
            max_connections: 8,
            ..PostgresOptions::default()
        };
        let store: Arc<dyn ItemStore> =
            Arc::new(PostgresStore::connect(&url, options).await.unwrap());
        for writers in [1, 8, 64] {
            let before = raw().await;
            let rate = store_puts(store.clone(), writers, "pg").await;
            let after = raw().await;
            let raw_rate = (before + after) / 2.0;
            println!(
                "  {writers:>3} writers: store conditional puts {rate:>7.0}/s, raw inserts \
                 {raw_rate:>6.0}/s (before {before:.0}, after {after:.0}) = {:.2}x raw",
                rate / raw_rate
            );
        }
        drop(store);
        client
            .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
            .await
            .unwrap();
    }
}
