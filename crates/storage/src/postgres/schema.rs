//! The PostgreSQL schema and its versioned migrations, run at start-up under an advisory lock so
//! nodes starting together migrate once. Key columns use the "C" collation: byte order, the
//! order the contract promises (and SQLite's).

use tokio_postgres::Client;

use super::pg_err;
use crate::error::{Error, Result};

/// Migrations in order; never edit one that shipped, add another.
const MIGRATIONS: &[&str] = &[
    // 1: tables, items, index entries, change streams.
    r#"CREATE TABLE tables (name TEXT COLLATE "C" PRIMARY KEY, spec TEXT NOT NULL);
       CREATE TABLE items (
           tbl TEXT COLLATE "C" NOT NULL, pk TEXT COLLATE "C" NOT NULL, sk TEXT COLLATE "C" NOT NULL,
           version BIGINT NOT NULL, attrs TEXT NOT NULL, expires_at BIGINT,
           PRIMARY KEY (tbl, pk, sk));
       CREATE INDEX items_expiry ON items (tbl, expires_at) WHERE expires_at IS NOT NULL;
       CREATE TABLE index_entries (
           tbl TEXT COLLATE "C" NOT NULL, idx TEXT COLLATE "C" NOT NULL, ipk TEXT COLLATE "C" NOT NULL,
           isk TEXT COLLATE "C" NOT NULL, pk TEXT COLLATE "C" NOT NULL, sk TEXT COLLATE "C" NOT NULL,
           PRIMARY KEY (tbl, idx, ipk, isk, pk, sk));
       CREATE INDEX index_entries_item ON index_entries (tbl, pk, sk);
       CREATE TABLE partition_seq (
           tbl TEXT COLLATE "C" NOT NULL, pk TEXT COLLATE "C" NOT NULL, seq BIGINT NOT NULL,
           PRIMARY KEY (tbl, pk));
       CREATE TABLE changes (
           tbl TEXT COLLATE "C" NOT NULL, pk TEXT COLLATE "C" NOT NULL, seq BIGINT NOT NULL,
           sk TEXT COLLATE "C" NOT NULL, kind TEXT NOT NULL, old TEXT, new TEXT, at BIGINT NOT NULL,
           PRIMARY KEY (tbl, pk, seq));
       CREATE INDEX changes_age ON changes (tbl, at);"#,
];

/// Creates the store's schema if named, and brings it to the newest version.
pub async fn migrate(client: &Client, schema: Option<&str>) -> Result<()> {
    let err = |e: tokio_postgres::Error| Error::Open(format!("schema migration: {}", pg_err(e)));
    if let Some(schema) = schema {
        client
            .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
            .await
            .map_err(err)?;
        client
            .batch_execute(&format!("SET search_path TO \"{schema}\""))
            .await
            .map_err(err)?;
    }
    client.batch_execute("BEGIN").await.map_err(err)?;
    let out = async {
        client
            .execute(
                "SELECT pg_advisory_xact_lock(hashtext('agentry-storage:' || current_schema()))",
                &[],
            )
            .await?;
        client
            .batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
            .await?;
        let current: i64 = client
            .query_opt("SELECT version FROM schema_version", &[])
            .await?
            .map_or(0, |r| r.get(0));
        Ok::<_, tokio_postgres::Error>(current)
    }
    .await;
    let current = match out {
        Ok(c) => c,
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(err(e));
        }
    };
    let known = MIGRATIONS.len() as i64;
    if current > known {
        let _ = client.batch_execute("ROLLBACK").await;
        return Err(Error::Open(format!(
            "database schema version {current} is newer than this build knows ({known})"
        )));
    }
    let applied = async {
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            client.batch_execute(sql).await?;
            client.execute("DELETE FROM schema_version", &[]).await?;
            client
                .execute(
                    "INSERT INTO schema_version (version) VALUES ($1)",
                    &[&(i as i64 + 1)],
                )
                .await?;
            tracing::info!(version = i + 1, "postgres store: schema migrated");
        }
        client.batch_execute("COMMIT").await
    }
    .await;
    if let Err(e) = applied {
        let _ = client.batch_execute("ROLLBACK").await;
        return Err(err(e));
    }
    Ok(())
}
