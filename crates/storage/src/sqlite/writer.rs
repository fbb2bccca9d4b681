//! The writer thread: the only connection that writes. It takes every job waiting in its
//! channel, runs them all in one transaction, commits once, and only then answers the callers.
//! One caller's failure must undo only that caller's writes: a transaction's writes are all
//! planned (conditions checked) before any is made, so a failed condition has nothing to
//! undo; should making a planned write fail (an I/O error), the batch is rolled back and run
//! again with each job in a savepoint of its own. Savepoints cost a copy of every page a job
//! touches, so the common case goes without.

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

/// A transaction's writes, and each put's attributes as JSON. Shared with the caller, who
/// frees it: freeing thousands of JSON values is work the one writer thread need not do.
pub(crate) type Writes = Arc<(Vec<Write>, Vec<Option<String>>)>;

pub(crate) enum Job {
    Transact(Writes, Reply<Vec<Option<u64>>>),
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

/// Pages the WAL may hold before the writer checkpoints it itself: the checkpointer thread
/// normally has copied them to the database long before.
pub(crate) const WRITER_CHECKPOINT_PAGES: u32 = 10_000;
/// How often, at most, the checkpointer thread copies the WAL into the database.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// Starts the writer thread on `conn` and, given a connection for it, the checkpointer: a
/// thread that copies committed pages from the WAL into the database (and syncs it) beside
/// the writer, so that the writer's commits do not wait for that work.
pub(crate) fn spawn(
    conn: Connection,
    checkpointer: Option<Connection>,
    specs: Arc<Specs>,
    clock: Arc<dyn Clock>,
    max_batch: usize,
) -> mpsc::Sender<Job> {
    let (tx, rx) = mpsc::channel();
    let committed = checkpointer.map(|c| {
        let (tx, rx) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("agentry-storage-checkpointer".into())
            .spawn(move || checkpoint(c, rx))
            .expect("spawning the sqlite checkpointer thread");
        tx
    });
    std::thread::Builder::new()
        .name("agentry-storage-writer".into())
        .spawn(move || run(conn, rx, committed, &specs, &*clock, max_batch))
        .expect("spawning the sqlite writer thread");
    tx
}

fn run(
    conn: Connection,
    rx: mpsc::Receiver<Job>,
    committed: Option<mpsc::SyncSender<()>>,
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
        if let Some(c) = &committed {
            // Full: the checkpointer has been told already.
            let _ = c.try_send(());
        }
    }
}

/// Copies the WAL into the database after commits, at most every [`CHECKPOINT_EVERY`], until
/// the writer stops. Passive: it never waits for, nor holds up, the writer or readers.
fn checkpoint(conn: Connection, committed: mpsc::Receiver<()>) {
    while committed.recv().is_ok() {
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "sqlite store: checkpoint failed; the writer checkpoints when the WAL grows");
        }
        std::thread::sleep(CHECKPOINT_EVERY);
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
                Job::Transact(_, reply) => drop(reply.send(Err(Error::unavailable(&e)))),
                Job::CreateTable(_, reply) => drop(reply.send(Err(Error::unavailable(&e)))),
                Job::Purge(_, _, reply) => drop(reply.send(Err(Error::unavailable(&e)))),
            }
        }
        return;
    }
    let mut jobs = Vec::with_capacity(batch.len());
    for job in batch {
        match job {
            Job::Read(f) => reads.push(f),
            job => jobs.push(job),
        }
    }
    // Without savepoints first; with them only if a planned write failed.
    let results = match run_jobs(conn, &jobs, specs, now, false) {
        Some(results) => results,
        None => {
            let _ = conn.execute_batch("ROLLBACK");
            specs.clear();
            if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
                let e = format!("sqlite: begin: {e}");
                tracing::error!(error = %e, "sqlite store: batch not restarted");
                jobs.iter().map(|_| Err(e.clone())).collect()
            } else {
                run_jobs(conn, &jobs, specs, now, true).expect("savepoints contain failures")
            }
        }
    };
    for (job, r) in jobs.into_iter().zip(results) {
        done.push(match (job, r) {
            (Job::Transact(_, reply), Ok(Outcome::Transact(v))) => Done::Transact(v, reply),
            (Job::CreateTable(_, reply), Ok(Outcome::CreateTable(v))) => {
                Done::CreateTable(v, reply)
            }
            (Job::Purge(_, _, reply), Ok(Outcome::Purge(v))) => Done::Purge(v, reply),
            (Job::Transact(_, reply), Err(e)) => Done::Transact(Err(Error::unavailable(&e)), reply),
            (Job::CreateTable(_, reply), Err(e)) => {
                Done::CreateTable(Err(Error::unavailable(&e)), reply)
            }
            (Job::Purge(_, _, reply), Err(e)) => Done::Purge(Err(Error::unavailable(&e)), reply),
            _ => unreachable!("each job has an outcome of its kind"),
        });
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

/// What a job came to, inside the batch's transaction.
enum Outcome {
    Transact(Result<Vec<Option<u64>>>),
    CreateTable(Result<()>),
    Purge(Result<u64>),
}

/// Runs the jobs inside the open transaction. Without `guarded`, transactions run without
/// savepoints: `None` when a planned write failed, leaving the transaction to roll back.
/// Otherwise each outcome, or the error that ended the batch for every job.
fn run_jobs(
    conn: &Connection,
    jobs: &[Job],
    specs: &Specs,
    now: i64,
    guarded: bool,
) -> Option<Vec<std::result::Result<Outcome, String>>> {
    let mut out = Vec::with_capacity(jobs.len());
    for job in jobs {
        out.push(Ok(match job {
            Job::Transact(w, _) if guarded => {
                Outcome::Transact(savepoint(conn, |c| transact(c, specs, &w.0, &w.1, now)))
            }
            Job::Transact(w, _) => match plan_all(conn, specs, &w.0, &w.1, now) {
                Err(e) => Outcome::Transact(Err(e)),
                Ok(planned) => match apply_all(conn, specs, &w.0, planned, now) {
                    Ok(versions) => Outcome::Transact(Ok(versions)),
                    Err(e) => {
                        tracing::warn!(error = %e, "sqlite store: a planned write failed; the batch runs again, each job in a savepoint");
                        return None;
                    }
                },
            },
            Job::CreateTable(spec, _) => {
                Outcome::CreateTable(savepoint(conn, |c| create_table(c, spec)))
            }
            Job::Purge(table, limit, _) => {
                Outcome::Purge(savepoint(conn, |c| purge(c, specs, table, *limit, now)))
            }
            Job::Read(_) => unreachable!("reads run after the batch"),
        }));
    }
    Some(out)
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
    let planned = plan_all(conn, specs, writes, texts, now)?;
    apply_all(conn, specs, writes, planned, now)
}

/// Checks every write of a transaction against the rows as they are and decides its effect,
/// writing nothing. No item appears twice, so planning all against the rows as they were
/// before the transaction is the same as planning each after the one before is made.
fn plan_all<'a>(
    conn: &Connection,
    specs: &Specs,
    writes: &[Write],
    texts: &'a [Option<String>],
    now: i64,
) -> Result<Vec<(Planned<'a>, bool)>> {
    let mut planned = Vec::with_capacity(writes.len());
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
        planned.push((plan::plan(i, w, json, &spec, stored, now)?, existed));
    }
    Ok(planned)
}

/// Makes the planned writes; returns each put's new version.
fn apply_all(
    conn: &Connection,
    specs: &Specs,
    writes: &[Write],
    planned: Vec<(Planned<'_>, bool)>,
    now: i64,
) -> Result<Vec<Option<u64>>> {
    let mut versions = Vec::with_capacity(writes.len());
    for (w, (planned, existed)) in writes.iter().zip(planned) {
        let spec = specs.get(conn, w.table())?;
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
            // Most puts leave an item's index entries as they were (a running execution's
            // record): reading them is cheaper than replacing them.
            let entries_stand = spec.indexes.is_empty()
                || (existed && same_index_entries(conn, table, key, &indexes)?);
            if !entries_stand {
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

/// Whether the item's stored index entries are exactly `entries`.
fn same_index_entries(
    conn: &Connection,
    table: &str,
    key: &Key,
    entries: &[rules::IndexEntry],
) -> Result<bool> {
    let mut stored: Vec<rules::IndexEntry> = conn
        .prepare_cached(
            "SELECT idx, ipk, isk FROM index_entries WHERE tbl = ?1 AND pk = ?2 AND sk = ?3",
        )
        .and_then(|mut st| {
            st.query_map(params![table, key.pk, key.sk], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect()
        })
        .map_err(db_err)?;
    if stored.len() != entries.len() {
        return Ok(false);
    }
    let mut wanted = entries.to_vec();
    stored.sort();
    wanted.sort();
    Ok(stored == wanted)
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
