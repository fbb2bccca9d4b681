//! The embedded default: queues in one SQLite database file (WAL). Every operation runs on
//! one writer thread that groups concurrent calls into one transaction and one fsync
//! (`synchronous=FULL` by default), so a send acknowledged is a send that survives kill -9.
//! Long polls wait on in-process notifications: receivers in another process sharing the
//! file see a message only when their poll comes due or their wait ends.

mod ops;
mod schema;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags};

use crate::poll::{Waiters, long_poll};
use crate::{
    Clock, Error, Message, Queue, QueueAttributes, QueueInfo, QueueStats, ReceiveOptions, Result,
    SendMessage, Sent, SystemClock,
};
use writer::Writer;

/// How SQLite syncs a commit (`PRAGMA synchronous`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Synchronous {
    /// fsync the WAL at every commit: an acknowledged send survives power loss.
    #[default]
    Full,
    /// fsync only at checkpoints: survives a process crash, not a power loss.
    Normal,
    /// Never fsync: for tests and throwaway data.
    Off,
}

impl Synchronous {
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "full" | "extra" => Some(Self::Full),
            "normal" => Some(Self::Normal),
            "off" => Some(Self::Off),
            _ => None,
        }
    }

    fn pragma(self) -> &'static str {
        match self {
            Self::Full => "FULL",
            Self::Normal => "NORMAL",
            Self::Off => "OFF",
        }
    }
}

/// Opening options of a SQLite queue database.
#[derive(Clone, Debug)]
pub struct SqliteOptions {
    pub path: PathBuf,
    pub synchronous: Synchronous,
    /// Create the file when it does not exist.
    pub create: bool,
}

impl SqliteOptions {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            synchronous: Synchronous::Full,
            create: true,
        }
    }
}

pub struct SqliteQueue {
    writer: Writer,
    clock: Arc<dyn Clock>,
    waiters: Waiters,
}

impl std::fmt::Debug for SqliteQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteQueue").finish_non_exhaustive()
    }
}

/// Opens (creating if asked) the database and brings its schema up to date.
pub fn connect(options: &SqliteOptions) -> Result<Connection> {
    let path = &options.path;
    let shown = path.display();
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if options.create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                Error::Unavailable(format!(
                    "sqlite queue database \"{shown}\": cannot create its directory: {e}"
                ))
            })?;
        }
    }
    let open_err =
        |e: rusqlite::Error| Error::Unavailable(format!("sqlite queue database \"{shown}\": {e}"));
    let mut conn = Connection::open_with_flags(path, flags).map_err(open_err)?;
    // SQLite quietly opens a file it may not write read-only; refuse it here rather than fail
    // the first send.
    if conn.is_readonly(rusqlite::MAIN_DB).map_err(open_err)? {
        return Err(Error::Unavailable(format!(
            "sqlite queue database \"{shown}\": the file is read-only"
        )));
    }
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(open_err)?;
    conn.pragma_update(None, "synchronous", options.synchronous.pragma())
        .map_err(open_err)?;
    conn.pragma_update(None, "busy_timeout", 5000)
        .map_err(open_err)?;
    // Without the planner stability guarantee SQLite re-prepares every statement on
    // `messages` at each new binding, because the table has partial indexes.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )
    .map_err(open_err)?;
    conn.set_prepared_statement_cache_capacity(64);
    schema::migrate(&mut conn).map_err(|e| match e {
        Error::Unavailable(m) => {
            Error::Unavailable(format!("sqlite queue database \"{shown}\": {m}"))
        }
        e => e,
    })?;
    Ok(conn)
}

impl SqliteQueue {
    /// Opens the queue database at `path` with the wall clock and `synchronous=FULL`.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(SqliteOptions::new(path.as_ref()), Arc::new(SystemClock)).await
    }

    pub async fn open_with(options: SqliteOptions, clock: Arc<dyn Clock>) -> Result<Self> {
        let writer = Writer::start(move || connect(&options)).await?;
        Ok(Self {
            writer,
            clock,
            waiters: Waiters::default(),
        })
    }
}

#[async_trait]
impl Queue for SqliteQueue {
    async fn create_queue(&self, name: &str, attributes: &QueueAttributes) -> Result<QueueInfo> {
        let (name, attributes, now) = (name.to_owned(), attributes.clone(), self.clock.now_ms());
        self.writer
            .call(move |c| ops::create_queue(c, &name, &attributes, now))
            .await
    }

    async fn get_queue(&self, name: &str) -> Result<QueueInfo> {
        let name = name.to_owned();
        self.writer.call(move |c| ops::get_queue(c, &name)).await
    }

    async fn list_queues(&self, prefix: &str) -> Result<Vec<String>> {
        let prefix = prefix.to_owned();
        self.writer
            .call(move |c| ops::list_queues(c, &prefix))
            .await
    }

    async fn delete_queue(&self, name: &str) -> Result<()> {
        let name = name.to_owned();
        self.writer.call(move |c| ops::delete_queue(c, &name)).await
    }

    async fn send_batch(
        &self,
        queue: &str,
        messages: Vec<SendMessage>,
    ) -> Result<Vec<Result<Sent>>> {
        let (name, now) = (queue.to_owned(), self.clock.now_ms());
        let out = self
            .writer
            .call(move |c| ops::send_batch(c, &name, &messages, now))
            .await?;
        self.waiters.wake(queue);
        Ok(out)
    }

    async fn receive(&self, queue: &str, options: ReceiveOptions) -> Result<Vec<Message>> {
        long_poll(&self.waiters, &*self.clock, queue, |now| {
            let name = queue.to_owned();
            self.writer
                .call(move |c| ops::receive(c, &name, &options, now))
        })
        .await
    }

    async fn delete_batch(
        &self,
        queue: &str,
        receipt_handles: Vec<String>,
    ) -> Result<Vec<Result<()>>> {
        let name = queue.to_owned();
        let out = self
            .writer
            .call(move |c| ops::delete_batch(c, &name, &receipt_handles))
            .await?;
        // A delete may unblock a FIFO message group.
        self.waiters.wake(queue);
        Ok(out)
    }

    async fn change_visibility(
        &self,
        queue: &str,
        receipt_handle: &str,
        timeout: Duration,
    ) -> Result<()> {
        let (name, handle, now) = (
            queue.to_owned(),
            receipt_handle.to_owned(),
            self.clock.now_ms(),
        );
        self.writer
            .call(move |c| ops::change_visibility(c, &name, &handle, timeout, now))
            .await?;
        self.waiters.wake(queue);
        Ok(())
    }

    async fn purge(&self, queue: &str) -> Result<()> {
        let name = queue.to_owned();
        self.writer.call(move |c| ops::purge(c, &name)).await
    }

    async fn redrive(&self, dead_letter_queue: &str, destination: Option<&str>) -> Result<u64> {
        let (dlq, dest, now) = (
            dead_letter_queue.to_owned(),
            destination.map(str::to_owned),
            self.clock.now_ms(),
        );
        let (moved, targets) = self
            .writer
            .call(move |c| ops::redrive(c, &dlq, dest.as_deref(), now))
            .await?;
        for t in &targets {
            self.waiters.wake(t);
        }
        Ok(moved)
    }

    async fn stats(&self, queue: &str) -> Result<QueueStats> {
        let (name, now) = (queue.to_owned(), self.clock.now_ms());
        self.writer.call(move |c| ops::stats(c, &name, now)).await
    }
}
