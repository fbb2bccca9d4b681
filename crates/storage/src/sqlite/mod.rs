//! The embedded store: one SQLite file in WAL mode. One writer thread owns the only writing
//! connection and commits the writes of many concurrent callers in one transaction (group
//! commit: one fsync for the batch); each caller is answered only once its batch is durable.
//! Reads run on a small pool of reader connections on blocking threads, never on the async
//! runtime.

mod schema;
mod writer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use tokio::sync::{Semaphore, oneshot};

use crate::ItemStore;
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::item::{Change, ChangeKind, Item, Key, Page, Query, TableSpec, Write};
use crate::plan::{self, Stored};
use crate::rules;
use crate::sql::{self, Dialect, Param};

use writer::Job;

/// SQLite's `synchronous` setting: how much a commit waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// No fsync; a power loss may lose recent commits (a process crash does not).
    Off,
    /// In WAL mode, fsync at checkpoints only; a power loss may lose recent commits.
    Normal,
    /// fsync the WAL on every commit: an acknowledged write survives power loss.
    #[default]
    Full,
}

impl Synchronous {
    pub fn pragma(self) -> &'static str {
        match self {
            Synchronous::Off => "OFF",
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        }
    }
}

/// How to open a SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    pub synchronous: Synchronous,
    /// Reader connections (reads beyond this many wait).
    pub readers: usize,
    /// Most caller operations committed in one transaction.
    pub max_batch: usize,
    pub clock: Arc<dyn Clock>,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            synchronous: Synchronous::Full,
            readers: 4,
            max_batch: 512,
            clock: Arc::new(SystemClock),
        }
    }
}

/// Table definitions, cached: tables are never altered, so a definition once read stays true.
#[derive(Debug, Default)]
pub(crate) struct Specs(Mutex<HashMap<String, Arc<TableSpec>>>);

impl Specs {
    fn get(&self, conn: &Connection, table: &str) -> Result<Arc<TableSpec>> {
        if let Some(s) = self.0.lock().unwrap_or_else(|e| e.into_inner()).get(table) {
            return Ok(s.clone());
        }
        let spec = load_spec(conn, table)?.ok_or_else(|| Error::table_not_found(table))?;
        let spec = Arc::new(spec);
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(table.to_owned(), spec.clone());
        Ok(spec)
    }

    fn clear(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

fn load_spec(conn: &Connection, table: &str) -> Result<Option<TableSpec>> {
    let json: Option<String> = conn
        .prepare_cached("SELECT spec FROM tables WHERE name = ?1")
        .and_then(|mut st| st.query_row([table], |r| r.get(0)).optional())
        .map_err(db_err)?;
    json.map(|j| {
        serde_json::from_str(&j)
            .map_err(|e| Error::Corrupt(format!("definition of table {table:?}: {e}")))
    })
    .transpose()
}

pub(crate) fn db_err(e: rusqlite::Error) -> Error {
    Error::unavailable(format_args!("sqlite: {e}"))
}

/// Where reads run: a pool of reader connections, or (in memory, where other connections
/// cannot see the data) the writer thread.
enum Readers {
    Pool {
        conns: Arc<Mutex<Vec<Connection>>>,
        permits: Arc<Semaphore>,
    },
    Writer,
}

/// The SQLite item store. Cheap to share behind an `Arc`; dropping the last handle stops the
/// writer thread after it finishes the work it has.
pub struct SqliteStore {
    jobs: mpsc::Sender<Job>,
    readers: Readers,
    specs: Arc<Specs>,
    clock: Arc<dyn Clock>,
    path: Option<PathBuf>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Closing the last connection checkpoints the WAL (disk I/O): never on the runtime.
        if let Readers::Pool { conns, .. } = &self.readers {
            let conns = std::mem::take(&mut *conns.lock().unwrap_or_else(|e| e.into_inner()));
            if !conns.is_empty() {
                let _ = std::thread::Builder::new()
                    .name("agentry-storage-close".into())
                    .spawn(move || drop(conns));
            }
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` and migrates its schema. The
    /// directory must exist and be writable.
    pub async fn open(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let p = path.clone();
        let opts = options.clone();
        let (writer_conn, checkpointer, readers) =
            tokio::task::spawn_blocking(move || open_files(&p, &opts))
                .await
                .map_err(|e| Error::Open(format!("opening {}: {e}", path.display())))??;
        Ok(Self::start(
            writer_conn,
            Some(checkpointer),
            Readers::Pool {
                permits: Arc::new(Semaphore::new(readers.len())),
                conns: Arc::new(Mutex::new(readers)),
            },
            options,
            Some(path),
        ))
    }

    /// A store held in memory only, gone when dropped (tests, throwaway runs).
    pub async fn open_in_memory(options: SqliteOptions) -> Result<Self> {
        let conn = tokio::task::spawn_blocking(|| {
            let mut conn = Connection::open_in_memory()
                .map_err(|e| Error::Open(format!("in-memory database: {e}")))?;
            schema::migrate(&mut conn)?;
            Ok::<_, Error>(conn)
        })
        .await
        .map_err(|e| Error::Open(format!("in-memory database: {e}")))??;
        Ok(Self::start(conn, None, Readers::Writer, options, None))
    }

    fn start(
        conn: Connection,
        checkpointer: Option<Connection>,
        readers: Readers,
        options: SqliteOptions,
        path: Option<PathBuf>,
    ) -> Self {
        let specs = Arc::new(Specs::default());
        let jobs = writer::spawn(
            conn,
            checkpointer,
            specs.clone(),
            options.clock.clone(),
            options.max_batch.max(1),
        );
        SqliteStore {
            jobs,
            readers,
            specs,
            clock: options.clock,
            path,
        }
    }

    async fn submit<T>(&self, make: impl FnOnce(oneshot::Sender<Result<T>>) -> Job) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(make(tx))
            .map_err(|_| Error::unavailable("sqlite store: writer thread has stopped"))?;
        rx.await.map_err(|_| {
            Error::unavailable("sqlite store: writer thread stopped before answering")
        })?
    }

    /// Runs `f` on a reader connection off the async runtime.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection, &Specs) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let specs = self.specs.clone();
        match &self.readers {
            Readers::Pool { conns, permits } => {
                let _permit = permits
                    .acquire()
                    .await
                    .map_err(|_| Error::unavailable("sqlite store: closed"))?;
                let conns = conns.clone();
                tokio::task::spawn_blocking(move || {
                    // A permit guarantees a connection unless a read panicked with one.
                    let Some(conn) = conns.lock().unwrap_or_else(|e| e.into_inner()).pop() else {
                        return Err(Error::unavailable(
                            "sqlite store: no reader connection left",
                        ));
                    };
                    let out = f(&conn, &specs);
                    conns.lock().unwrap_or_else(|e| e.into_inner()).push(conn);
                    out
                })
                .await
                .map_err(|e| Error::unavailable(format_args!("sqlite read task: {e}")))?
            }
            Readers::Writer => {
                let (tx, rx) = oneshot::channel();
                let job = Job::Read(Box::new(move |conn: &Connection| {
                    let _ = tx.send(f(conn, &specs));
                }));
                self.jobs
                    .send(job)
                    .map_err(|_| Error::unavailable("sqlite store: writer thread has stopped"))?;
                rx.await.map_err(|_| {
                    Error::unavailable("sqlite store: writer thread stopped before answering")
                })?
            }
        }
    }
}

/// The writer's connection, the checkpointer's and the readers'.
fn open_files(
    path: &Path,
    options: &SqliteOptions,
) -> Result<(Connection, Connection, Vec<Connection>)> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.is_dir() {
        return Err(Error::Open(format!(
            "directory {} of database {} does not exist",
            dir.display(),
            path.display()
        )));
    }
    let open_err = |e: rusqlite::Error| {
        let hint = match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::ReadOnly)
            | Some(rusqlite::ErrorCode::CannotOpen)
            | Some(rusqlite::ErrorCode::PermissionDenied) => {
                " (is the file or its directory read-only?)"
            }
            Some(rusqlite::ErrorCode::NotADatabase) => " (not a SQLite database)",
            _ => "",
        };
        Error::Open(format!("database {}: {e}{hint}", path.display()))
    };
    let mut writer = Connection::open(path).map_err(open_err)?;
    // SQLite quietly opens a file it may not write read-only; a store that cannot write is
    // refused here rather than failing its first write.
    if writer.is_readonly(rusqlite::MAIN_DB).map_err(open_err)? {
        return Err(Error::Open(format!(
            "database {}: the file is read-only (is the file or its directory read-only?)",
            path.display()
        )));
    }
    // WAL lets readers run beside the writer; the busy timeout covers checkpoints and other
    // processes opening the same file.
    let mode: String = writer
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(open_err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Open(format!(
            "database {}: cannot switch to WAL mode (journal mode is {mode})",
            path.display()
        )));
    }
    writer
        .execute_batch(&format!(
            "PRAGMA synchronous = {}; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = OFF;
             PRAGMA wal_autocheckpoint = {};",
            options.synchronous.pragma(),
            writer::WRITER_CHECKPOINT_PAGES
        ))
        .map_err(open_err)?;
    schema::migrate(&mut writer).map_err(|e| match e {
        Error::Open(m) => Error::Open(format!("database {}: {m}", path.display())),
        other => other,
    })?;
    let checkpointer = Connection::open(path).map_err(open_err)?;
    checkpointer
        .execute_batch(&format!(
            "PRAGMA synchronous = {}; PRAGMA busy_timeout = 5000; PRAGMA wal_autocheckpoint = 0;",
            options.synchronous.pragma()
        ))
        .map_err(open_err)?;
    let mut readers = Vec::new();
    for _ in 0..options.readers.max(1) {
        let r = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_err)?;
        r.execute_batch("PRAGMA busy_timeout = 5000;")
            .map_err(open_err)?;
        readers.push(r);
    }
    Ok((writer, checkpointer, readers))
}

fn row_stored(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, String, Option<i64>)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
}

/// The version and expiry of an item's stored row, expired or not, without its attributes
/// (left empty): what a write needs when no change stream wants the old image.
pub(crate) fn load_item_meta(conn: &Connection, table: &str, key: &Key) -> Result<Option<Stored>> {
    conn.prepare_cached(
        "SELECT version, expires_at FROM items WHERE tbl = ?1 AND pk = ?2 AND sk = ?3",
    )
    .and_then(|mut st| {
        st.query_row(params![table, key.pk, key.sk], |r| {
            Ok(Stored {
                version: r.get::<_, i64>(0)? as u64,
                attributes: Default::default(),
                expires_at: r.get(1)?,
            })
        })
        .optional()
    })
    .map_err(db_err)
}

/// The stored row of an item, expired or not.
pub(crate) fn load_item(conn: &Connection, table: &str, key: &Key) -> Result<Option<Stored>> {
    let row = conn
        .prepare_cached(
            "SELECT version, attrs, expires_at FROM items WHERE tbl = ?1 AND pk = ?2 AND sk = ?3",
        )
        .and_then(|mut st| {
            st.query_row(params![table, key.pk, key.sk], row_stored)
                .optional()
        })
        .map_err(db_err)?;
    row.map(|(version, attrs, expires_at)| {
        Ok(Stored {
            version: version as u64,
            attributes: plan::attributes_from_json(key, &attrs)?,
            expires_at,
        })
    })
    .transpose()
}

fn to_sql(p: &Param) -> rusqlite::types::Value {
    match p {
        Param::Text(s) => rusqlite::types::Value::Text(s.clone()),
        Param::Int(i) => rusqlite::types::Value::Integer(*i),
    }
}

#[async_trait]
impl ItemStore for SqliteStore {
    async fn create_table(&self, spec: &TableSpec) -> Result<()> {
        rules::check_spec(spec)?;
        let spec = spec.clone();
        self.submit(|reply| Job::CreateTable(spec, reply)).await
    }

    async fn describe_table(&self, table: &str) -> Result<TableSpec> {
        rules::check_name("table name", table)?;
        let table = table.to_owned();
        self.read(move |conn, specs| Ok((*specs.get(conn, &table)?).clone()))
            .await
    }

    async fn get(&self, table: &str, key: &Key) -> Result<Option<Item>> {
        rules::check_name("table name", table)?;
        rules::check_key(table, key)?;
        let (table, key) = (table.to_owned(), key.clone());
        let now = self.clock.now();
        self.read(move |conn, specs| {
            specs.get(conn, &table)?;
            Ok(load_item(conn, &table, &key)?
                .filter(|s| s.live(now))
                .map(|s| s.into_item(key)))
        })
        .await
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<Vec<Option<u64>>> {
        let texts = rules::check_transaction(&writes)?;
        let job = Arc::new((writes, texts));
        let result = self.submit(|reply| Job::Transact(job.clone(), reply)).await;
        drop(job);
        result
    }

    async fn query(&self, query: &Query) -> Result<Page> {
        rules::check_name("table name", &query.table)?;
        let query = query.clone();
        let now = self.clock.now();
        self.read(move |conn, specs| {
            let spec = specs.get(conn, &query.table)?;
            let limit = rules::check_query(&query, &spec)?;
            let built = sql::query_sql(&query, limit, now, Dialect::Sqlite)?;
            let params: Vec<rusqlite::types::Value> = built.params.iter().map(to_sql).collect();
            let mut st = conn.prepare_cached(&built.sql).map_err(db_err)?;
            let rows = st
                .query_map(rusqlite::params_from_iter(params), |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<sql::Row>>>())
                .map_err(db_err)?;
            sql::page(rows, limit, query.index.is_some())
        })
        .await
    }

    async fn read_changes(
        &self,
        table: &str,
        partition: &str,
        after: u64,
        limit: u32,
    ) -> Result<Vec<Change>> {
        rules::check_name("table name", table)?;
        let (table, partition) = (table.to_owned(), partition.to_owned());
        let limit = limit.clamp(1, rules::MAX_QUERY_LIMIT);
        self.read(move |conn, specs| {
            let spec = specs.get(conn, &table)?;
            if !spec.stream {
                return Err(Error::invalid("table", format!("table {table:?} has no change stream")));
            }
            let mut st = conn
                .prepare_cached(
                    "SELECT seq, sk, kind, old, new, at FROM changes WHERE tbl = ?1 AND pk = ?2 AND seq > ?3 ORDER BY seq LIMIT ?4",
                )
                .map_err(db_err)?;
            let rows = st
                .query_map(params![table, partition, after as i64, limit], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, Option<String>>(3)?, r.get::<_, Option<String>>(4)?, r.get::<_, i64>(5)?))
                })
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(db_err)?;
            rows.into_iter()
                .map(|(seq, sk, kind, old, new, at)| {
                    let key = Key { pk: partition.clone(), sk };
                    let kind = ChangeKind::parse(&kind).ok_or_else(|| Error::Corrupt(format!("change kind {kind:?}")))?;
                    Ok(Change {
                        sequence: seq as u64,
                        kind,
                        old: plan::image_from_json(&key, old.as_deref())?,
                        new: plan::image_from_json(&key, new.as_deref())?,
                        key,
                        at,
                    })
                })
                .collect()
        })
        .await
    }

    async fn purge_expired(&self, table: &str, limit: u32) -> Result<u64> {
        rules::check_name("table name", table)?;
        let table = table.to_owned();
        self.submit(|reply| Job::Purge(table, limit, reply)).await
    }
}
