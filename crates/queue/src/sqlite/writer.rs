//! The one thread that owns the SQLite connection. Calls queue up while a transaction
//! commits; the next transaction takes all of them (group commit), so concurrent senders,
//! receivers and deleters share one fsync. Each caller is answered only after the
//! transaction holding its change is durable.

use std::sync::mpsc;

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::{Error, Result};

type Reply = Box<dyn FnOnce(Option<Error>) + Send>;
/// Runs on the writer thread; `None` when the transaction could not start, so the job only
/// answers its caller.
type Job = Box<dyn FnOnce(Option<&Connection>) -> (bool, Reply) + Send>;

/// Most calls one transaction takes; bounds the latency of the first caller in a batch.
const MAX_GROUP: usize = 1024;

pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
}

fn stopped() -> Error {
    Error::Unavailable("sqlite writer thread has stopped".into())
}

pub(crate) fn sql_error(e: rusqlite::Error) -> Error {
    Error::Unavailable(format!("sqlite: {e}"))
}

impl Writer {
    /// Starts the thread with a connection made by `open`, answering once it is ready.
    pub async fn start(open: impl FnOnce() -> Result<Connection> + Send + 'static) -> Result<Self> {
        let (jobs, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready) = oneshot::channel();
        std::thread::Builder::new()
            .name("agentry-queue-sqlite".into())
            .spawn(move || match open() {
                Ok(conn) => {
                    let _ = ready_tx.send(Ok(()));
                    run(&conn, &rx);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            })
            .map_err(|e| Error::Unavailable(format!("cannot start sqlite writer thread: {e}")))?;
        ready.await.map_err(|_| stopped())??;
        Ok(Self { jobs })
    }

    /// Runs `f` in the next transaction and answers once that transaction is durable. `f`
    /// must fail before changing anything, or the whole transaction is rolled back and every
    /// caller in it answered with a retryable error.
    pub async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let r = match conn {
                Some(conn) => f(conn),
                None => Err(Error::Unavailable(
                    "sqlite transaction could not start".into(),
                )),
            };
            let ok = r.is_ok();
            let reply: Reply = Box::new(move |commit: Option<Error>| {
                let _ = tx.send(match commit {
                    Some(e) => Err(e),
                    None => r,
                });
            });
            (ok, reply)
        });
        self.jobs.send(job).map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}

fn run(conn: &Connection, rx: &mpsc::Receiver<Job>) {
    // Kept across groups: the writer allocates nothing per group but the calls themselves.
    let mut jobs: Vec<Job> = Vec::with_capacity(MAX_GROUP);
    let mut replies: Vec<Reply> = Vec::with_capacity(MAX_GROUP);
    while let Ok(first) = rx.recv() {
        jobs.push(first);
        while jobs.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
            tracing::warn!(error = %e, "sqlite queue: cannot begin transaction");
            let e = sql_error(e);
            for job in jobs.drain(..) {
                job(None).1(Some(e.clone()));
            }
            continue;
        }
        super::ops::check_data_version(conn);
        let mut broken = None;
        for job in jobs.drain(..) {
            if broken.is_some() {
                replies.push(job(None).1);
                continue;
            }
            // No savepoint per call: a call that fails before changing anything (bad input,
            // unknown queue) leaves the transaction as it was; one that fails after changing
            // something (an SQLite error midway) takes the whole group down with it, since
            // its partial changes must not be committed. Savepoints would cost a copy of
            // every page each call touches.
            let changes = conn.total_changes();
            let (ok, reply) = job(Some(conn));
            if !ok && conn.total_changes() != changes {
                broken = Some(Error::Unavailable(
                    "sqlite: a call failed midway; its transaction was rolled back".into(),
                ));
            }
            replies.push(reply);
        }
        let outcome = match broken {
            Some(e) => Some(e),
            None => exec(conn, "COMMIT").err().map(sql_error),
        };
        if let Some(e) = &outcome {
            tracing::warn!(error = %e, "sqlite queue: transaction failed, rolling back");
            let _ = conn.execute_batch("ROLLBACK");
            super::ops::forget_queues();
        }
        for reply in replies.drain(..) {
            reply(outcome.clone());
        }
    }
}

/// Runs a statement without result rows, parsed once per connection.
fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn writer() -> Writer {
        Writer::start(|| {
            let c = Connection::open_in_memory().map_err(sql_error)?;
            c.execute_batch("CREATE TABLE t (v TEXT)")
                .map_err(sql_error)?;
            Ok(c)
        })
        .await
        .unwrap()
    }

    fn count(c: &Connection) -> Result<i64> {
        c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .map_err(sql_error)
    }

    #[tokio::test]
    async fn a_call_failing_midway_commits_nothing() {
        let w = writer().await;
        let e = w
            .call(|c| {
                c.execute("INSERT INTO t VALUES ('partial')", [])
                    .map_err(sql_error)?;
                Err::<(), _>(Error::invalid("x", "failed after writing"))
            })
            .await
            .unwrap_err();
        assert!(e.is_retryable(), "{e:?}");
        assert_eq!(w.call(count).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_call_refused_before_writing_keeps_its_error_and_spares_the_others() {
        let w = writer().await;
        let (refused, written) = tokio::join!(
            w.call(|_| Err::<(), _>(Error::invalid("x", "bad input"))),
            w.call(|c| c
                .execute("INSERT INTO t VALUES ('kept')", [])
                .map_err(sql_error)),
        );
        assert_eq!(refused.unwrap_err(), Error::invalid("x", "bad input"));
        assert_eq!(written.unwrap(), 1);
        assert_eq!(w.call(count).await.unwrap(), 1);
    }
}
