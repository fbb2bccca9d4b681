//! Versioned schema migrations, applied in order at start-up. `PRAGMA user_version` records
//! how many have run; a database from a newer build is refused rather than misread.

use rusqlite::Connection;

use crate::{Error, Result};

use super::writer::sql_error;

const MIGRATIONS: &[&str] = &[
    // 1: queues, messages and FIFO deduplication ids.
    "CREATE TABLE queues (
        id         INTEGER PRIMARY KEY,
        name       TEXT NOT NULL UNIQUE,
        attributes TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    -- seq orders the queue (FIFO sequence numbers); AUTOINCREMENT never reuses one.
    CREATE TABLE messages (
        seq               INTEGER PRIMARY KEY AUTOINCREMENT,
        queue_id          INTEGER NOT NULL,
        message_id        TEXT NOT NULL,
        body              TEXT NOT NULL,
        attributes        TEXT,
        group_id          TEXT,
        dedup_id          TEXT,
        priority          INTEGER,
        sent_at           INTEGER NOT NULL,
        visible_at        INTEGER NOT NULL,
        expires_at        INTEGER NOT NULL,
        receive_count     INTEGER NOT NULL DEFAULT 0,
        first_received_at INTEGER,
        receipt_token     INTEGER,
        source_queue      TEXT
    );
    CREATE INDEX messages_visible ON messages (queue_id, visible_at);
    CREATE INDEX messages_group ON messages (queue_id, group_id, seq) WHERE group_id IS NOT NULL;
    CREATE INDEX messages_priority ON messages (queue_id, priority DESC, seq) WHERE priority IS NOT NULL;
    CREATE TABLE deduplication (
        queue_id   INTEGER NOT NULL,
        dedup_id   TEXT NOT NULL,
        message_id TEXT NOT NULL,
        seq        INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        PRIMARY KEY (queue_id, dedup_id)
    ) WITHOUT ROWID;",
];

pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    let version = conn
        .query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
        .map_err(sql_error)? as usize;
    if version > MIGRATIONS.len() {
        return Err(Error::Backend(format!(
            "sqlite queue schema version {version} is newer than this build's {}",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction().map_err(sql_error)?;
        tx.execute_batch(sql).map_err(sql_error)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)
            .map_err(sql_error)?;
        tx.commit().map_err(sql_error)?;
    }
    Ok(())
}
