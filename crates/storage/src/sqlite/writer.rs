//! The writer thread: the only connection that writes. It takes every job waiting in its
//! channel, runs each inside a savepoint of one transaction (so one caller's failed condition
//! rolls back only that caller's writes), commits once, and only then answers the callers.

use std::sync::{Arc, mpsc};

use rusqlite::{Connection, params};
use tokio::sync::oneshot;

use super::{Specs, db_err, load_item, load_item_meta};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::item::{Key, TableSpec, Write};
use crate::plan::{self, Effect, Planned};
use crate::rules;

pub(crate) type Reply<T> = oneshot::Sender<Result<T>>;

pub(crate) enum Job {
    /// The writes, and each put's attributes as JSON.
    Transact(Vec<Write>, Vec<Option<String>>, Reply<Vec<Option<u64>>>),
    CreateTable(TableSpec, Reply<()>),
    Purge(String, u32, Reply<u64>),
    /// A read on the writer's connection (in-memory stores), run after the batch commits.
    Read(Box<dyn FnOnce(&Connection) + Send>),
}

/// A job's result held until the batch commits.
enum Done {
    Transact(Result<Vec<Option<u64>>>, Reply<Vec<Option<u64>>>),
    CreateTable(Result<()>, Reply<()>),
    Purge(Result<u64>, Reply<u64>),
}

impl Done {
    fn fail_if_ok(&mut self, e: &str) {
        match self {
            Done::Transact(r, _) if r.is_ok() => *r = Err(Error::unavailable(e)),
            Done::CreateTable(r, _) if r.is_ok() => *r = Err(Error::unavailable(e)),
            Done::Purge(r, _) if r.is_ok() => *r = Err(Error::unavailable(e)),
            _ => {}
        }
    }

    fn send(self) {
        // A caller that gave up waiting is not an error of the store.
        match self {
            Done::Transact(r, tx) => drop(tx.send(r)),
            Done::CreateTable(r, tx) => drop(tx.send(r)),
            Done::Purge(r, tx) => drop(tx.send(r)),
        }
    }
}

pub(crate) fn spawn(
    conn: Connection,
    specs: Arc<Specs>,
    clock: Arc<dyn Clock>,
    max_batch: usize,
) -> mpsc::Sender<Job> {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("agentry-storage-writer".into())
        .spawn(move || run(conn, rx, &specs, &*clock, max_batch))
        .expect("spawning the sqlite writer thread");
    tx
}

fn run(
    conn: Connection,
    rx: mpsc::Receiver<Job>,
    specs: &Specs,
    clock: &dyn Clock,
    max_batch: usize,
) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        run_batch(&conn, batch, specs, clock);
    }
}

fn run_batch(conn: &Connection, batch: Vec<Job>, specs: &Specs, clock: &dyn Clock) {
    let now = clock.now();
    let mut reads = Vec::new();
    let mut done = Vec::with_capacity(batch.len());
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        // Nothing ran: answer everyone that the store is unavailable.
        let e = format!("sqlite: begin: {e}");
        tracing::error!(error = %e, "sqlite store: batch not started");
        for job in batch {
            match job {
                Job::Read(f) => f(conn),
                Job::Transact(_, _, reply) => drop(reply.send(Err(Error::unavailable(&e)))),
                Job::CreateTable(_, reply) => drop(reply.send(Err(Error::unavailable(&e)))),
                Job::Purge(_, _, reply) => drop(reply.send(Err(Error::unavailable(&e)))),
            }
        }
        return;
    }
    for job in batch {
        match job {
            Job::Read(f) => reads.push(f),
            Job::Transact(writes, texts, reply) => {
                let r = savepoint(conn, |c| transact(c, specs, &writes, &texts, now));
                done.push(Done::Transact(r, reply));
            }
            Job::CreateTable(spec, reply) => {
                let r = savepoint(conn, |c| create_table(c, &spec));
                done.push(Done::CreateTable(r, reply));
            }
            Job::Purge(table, limit, reply) => {
                let r = savepoint(conn, |c| purge(c, specs, &table, limit, now));
                done.push(Done::Purge(r, reply));
            }
        }
    }
    let committed = conn
        .execute_batch("COMMIT")
        .map_err(|e| format!("sqlite: commit: {e}"));
    if let Err(e) = committed {
        tracing::error!(error = %e, "sqlite store: batch not committed");
        let _ = conn.execute_batch("ROLLBACK");
        // Table definitions read inside the failed transaction may not exist.
        specs.clear();
        for d in &mut done {
            d.fail_if_ok(&e);
        }
    }
    for d in done {
        d.send();
    }
    for f in reads {
        f(conn);
    }
}

fn savepoint<T>(conn: &Connection, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
    let run = |sql: &str| {
        conn.prepare_cached(sql)
            .and_then(|mut st| st.execute([]))
            .map_err(db_err)
    };
    run("SAVEPOINT job")?;
    let out = f(conn);
    if out.is_err() {
        run("ROLLBACK TO job")?;
    }
    run("RELEASE job")?;
    out
}

fn create_table(conn: &Connection, spec: &TableSpec) -> Result<()> {
    if let Some(existing) = super::load_spec(conn, &spec.name)? {
        if existing == *spec {
            return Ok(());
        }
        return Err(Error::AlreadyExists {
            what: format!("table {:?}", spec.name),
            detail: "with a different definition".into(),
        });
    }
    let json = serde_json::to_string(spec).map_err(|e| Error::invalid("table", e.to_string()))?;
    conn.execute(
        "INSERT INTO tables (name, spec) VALUES (?1, ?2)",
        params![spec.name, json],
    )
    .map_err(db_err)?;
    Ok(())
}

fn transact(
    conn: &Connection,
    specs: &Specs,
    writes: &[Write],
    texts: &[Option<String>],
    now: i64,
) -> Result<Vec<Option<u64>>> {
    let mut versions = Vec::with_capacity(writes.len());
    // No item appears twice, so planning each write against the rows as they were before the
    // transaction and applying it at once is the same as planning all first.
    for (i, w) in writes.iter().enumerate() {
        let spec = specs.get(conn, w.table())?;
        // The old attributes matter only to a change stream's image: otherwise the row's
        // version and expiry decide the write, and its text is neither read nor parsed.
        let stored = if spec.stream {
            load_item(conn, w.table(), w.key())?
        } else {
            load_item_meta(conn, w.table(), w.key())?
        };
        let existed = stored.is_some();
        let json = texts.get(i).and_then(Option::as_deref);
        let planned = plan::plan(i, w, json, &spec, stored, now)?;
        versions.push(planned.version());
        apply(conn, &spec, w.key(), planned, existed, now)?;
    }
    Ok(versions)
}

/// Carries out a planned write. `existed`: the item had a row (live or expired) before it, so
/// there may be index entries to replace; a new row has none.
fn apply(
    conn: &Connection,
    spec: &TableSpec,
    key: &Key,
    planned: Planned<'_>,
    existed: bool,
    now: i64,
) -> Result<()> {
    let table = &spec.name;
    match planned.effect {
        Effect::Nothing => return Ok(()),
        Effect::Upsert {
            version,
            attributes_json,
            expires_at,
            indexes,
            ..
        } => {
            conn.prepare_cached(
                "INSERT INTO items (tbl, pk, sk, version, attrs, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (tbl, pk, sk) DO UPDATE SET version = excluded.version, attrs = excluded.attrs, expires_at = excluded.expires_at",
            )
            .and_then(|mut st| st.execute(params![table, key.pk, key.sk, version as i64, attributes_json, expires_at]))
            .map_err(db_err)?;
            if !spec.indexes.is_empty() {
                if existed {
                    delete_index_entries(conn, table, key)?;
                }
                let mut st = conn
                    .prepare_cached("INSERT INTO index_entries (tbl, idx, ipk, isk, pk, sk) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
                    .map_err(db_err)?;
                for (idx, ipk, isk) in indexes {
                    st.execute(params![table, idx, ipk, isk, key.pk, key.sk])
                        .map_err(db_err)?;
                }
            }
        }
        // No row: nothing to remove, nor any index entries.
        Effect::Remove if !existed => {}
        Effect::Remove => {
            conn.prepare_cached("DELETE FROM items WHERE tbl = ?1 AND pk = ?2 AND sk = ?3")
                .and_then(|mut st| st.execute(params![table, key.pk, key.sk]))
                .map_err(db_err)?;
            if !spec.indexes.is_empty() {
                delete_index_entries(conn, table, key)?;
            }
        }
    }
    if let Some((kind, old, new)) = planned.change {
        let seq: i64 = conn
            .prepare_cached(
                "INSERT INTO partition_seq (tbl, pk, seq) VALUES (?1, ?2, 1)
                 ON CONFLICT (tbl, pk) DO UPDATE SET seq = seq + 1 RETURNING seq",
            )
            .and_then(|mut st| st.query_row(params![table, key.pk], |r| r.get(0)))
            .map_err(db_err)?;
        conn.prepare_cached("INSERT INTO changes (tbl, pk, seq, sk, kind, old, new, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")
            .and_then(|mut st| {
                st.execute(params![table, key.pk, seq, key.sk, kind.as_str(), plan::image_json(&old), plan::image_json(&new), now])
            })
            .map_err(db_err)?;
    }
    Ok(())
}

fn delete_index_entries(conn: &Connection, table: &str, key: &Key) -> Result<()> {
    conn.prepare_cached("DELETE FROM index_entries WHERE tbl = ?1 AND pk = ?2 AND sk = ?3")
        .and_then(|mut st| st.execute(params![table, key.pk, key.sk]))
        .map_err(db_err)
        .map(drop)
}

fn purge(conn: &Connection, specs: &Specs, table: &str, limit: u32, now: i64) -> Result<u64> {
    let spec = specs.get(conn, table)?;
    let limit = limit.clamp(1, rules::MAX_QUERY_LIMIT);
    let keys: Vec<Key> = conn
        .prepare_cached("SELECT pk, sk FROM items WHERE tbl = ?1 AND expires_at IS NOT NULL AND expires_at <= ?2 LIMIT ?3")
        .and_then(|mut st| {
            st.query_map(params![table, now, limit], |r| Ok(Key { pk: r.get(0)?, sk: r.get(1)? }))?.collect()
        })
        .map_err(db_err)?;
    for key in &keys {
        let Some(stored) = load_item(conn, table, key)? else {
            continue;
        };
        let change = spec.stream.then(|| {
            (
                crate::item::ChangeKind::Remove,
                Some(stored.into_item(key.clone())),
                None,
            )
        });
        apply(
            conn,
            &spec,
            key,
            Planned {
                effect: Effect::Remove,
                change,
            },
            true,
            now,
        )?;
    }
    if spec.stream {
        conn.prepare_cached("DELETE FROM changes WHERE tbl = ?1 AND at < ?2")
            .and_then(|mut st| st.execute(params![table, now - rules::STREAM_RETENTION_SECONDS]))
            .map_err(db_err)?;
    }
    Ok(keys.len() as u64)
}
