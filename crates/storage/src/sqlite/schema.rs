//! The SQLite schema and its versioned migrations, run at start-up by the writer connection.

use rusqlite::{Connection, OptionalExtension};

use crate::error::{Error, Result};

/// Migrations in order; the schema version is the number applied. Never edit one that shipped:
/// add another.
const MIGRATIONS: &[&str] = &[
    // 1: tables, items, index entries, change streams.
    "CREATE TABLE tables (name TEXT PRIMARY KEY, spec TEXT NOT NULL) WITHOUT ROWID;
     CREATE TABLE items (
         tbl TEXT NOT NULL, pk TEXT NOT NULL, sk TEXT NOT NULL,
         version INTEGER NOT NULL, attrs TEXT NOT NULL, expires_at INTEGER,
         PRIMARY KEY (tbl, pk, sk)) WITHOUT ROWID;
     CREATE INDEX items_expiry ON items (tbl, expires_at) WHERE expires_at IS NOT NULL;
     CREATE TABLE index_entries (
         tbl TEXT NOT NULL, idx TEXT NOT NULL, ipk TEXT NOT NULL, isk TEXT NOT NULL,
         pk TEXT NOT NULL, sk TEXT NOT NULL,
         PRIMARY KEY (tbl, idx, ipk, isk, pk, sk)) WITHOUT ROWID;
     CREATE INDEX index_entries_item ON index_entries (tbl, pk, sk);
     CREATE TABLE partition_seq (
         tbl TEXT NOT NULL, pk TEXT NOT NULL, seq INTEGER NOT NULL,
         PRIMARY KEY (tbl, pk)) WITHOUT ROWID;
     CREATE TABLE changes (
         tbl TEXT NOT NULL, pk TEXT NOT NULL, seq INTEGER NOT NULL, sk TEXT NOT NULL,
         kind TEXT NOT NULL, old TEXT, new TEXT, at INTEGER NOT NULL,
         PRIMARY KEY (tbl, pk, seq)) WITHOUT ROWID;
     CREATE INDEX changes_age ON changes (tbl, at);",
];

/// Brings the database to the newest schema, in one transaction per migration.
pub fn migrate(conn: &mut Connection) -> Result<()> {
    let err = |e: rusqlite::Error| Error::Open(format!("schema migration: {e}"));
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        .map_err(err)?;
    let current: i64 = conn
        .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
        .optional()
        .map_err(err)?
        .unwrap_or(0);
    let known = MIGRATIONS.len() as i64;
    if current > known {
        return Err(Error::Open(format!(
            "database schema version {current} is newer than this build knows ({known})"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = i as i64 + 1;
        let tx = conn.transaction().map_err(err)?;
        tx.execute_batch(sql).map_err(err)?;
        tx.execute("DELETE FROM schema_version", []).map_err(err)?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES (?1)",
            [version],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        tracing::info!(version, "sqlite store: schema migrated");
    }
    Ok(())
}
