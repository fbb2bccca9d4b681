//! A small connection pool with a prepared-statement cache per connection. A connection handed
//! back in the middle of a transaction (its caller was cancelled) is closed rather than reused.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::{Client, Config, NoTls, Statement};

use super::pg_err;
use crate::error::{Error, Result};

pub(crate) struct Pool {
    config: Config,
    schema: Option<String>,
    idle: Arc<Mutex<Vec<Conn>>>,
    permits: Arc<Semaphore>,
}

/// One connection and its prepared statements.
pub(crate) struct Conn {
    pub client: Client,
    statements: HashMap<String, Statement>,
    in_transaction: bool,
    pending_begin: bool,
}

impl Conn {
    pub async fn stmt(&mut self, sql: &str) -> Result<Statement, tokio_postgres::Error> {
        if let Some(st) = self.statements.get(sql) {
            return Ok(st.clone());
        }
        let st = self.client.prepare(sql).await?;
        self.statements.insert(sql.to_owned(), st.clone());
        Ok(st)
    }

    pub async fn begin(&mut self) -> Result<(), tokio_postgres::Error> {
        self.in_transaction = true;
        self.client.batch_execute("BEGIN").await
    }

    /// Starts a transaction whose BEGIN goes out with its first statement (one round trip
    /// less); that statement must call [`Conn::take_pending_begin`].
    pub fn begin_deferred(&mut self) {
        self.in_transaction = true;
        self.pending_begin = true;
    }

    pub fn take_pending_begin(&mut self) -> bool {
        std::mem::take(&mut self.pending_begin)
    }

    pub async fn commit(&mut self) -> Result<(), tokio_postgres::Error> {
        self.pending_begin = false;
        let r = self.client.batch_execute("COMMIT").await;
        // After a failed COMMIT the server has rolled back.
        self.in_transaction = false;
        r
    }

    pub async fn rollback(&mut self) {
        if std::mem::take(&mut self.pending_begin) {
            self.in_transaction = false;
            return;
        }
        if self.client.batch_execute("ROLLBACK").await.is_ok() {
            self.in_transaction = false;
        }
    }
}

/// A connection lent out of the pool; returned when dropped.
pub(crate) struct Lent {
    conn: Option<Conn>,
    idle: Arc<Mutex<Vec<Conn>>>,
    _permit: OwnedSemaphorePermit,
}

impl std::ops::Deref for Lent {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        self.conn
            .as_ref()
            .expect("lent connection present until drop")
    }
}

impl std::ops::DerefMut for Lent {
    fn deref_mut(&mut self) -> &mut Conn {
        self.conn
            .as_mut()
            .expect("lent connection present until drop")
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take()
            && !conn.in_transaction
            && !conn.client.is_closed()
        {
            self.idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(conn);
        }
    }
}

impl Pool {
    pub fn new(config: Config, schema: Option<String>, size: usize) -> Self {
        Pool {
            config,
            schema,
            idle: Arc::new(Mutex::new(Vec::new())),
            permits: Arc::new(Semaphore::new(size)),
        }
    }

    pub async fn get(&self) -> Result<Lent> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::unavailable("postgres: pool closed"))?;
        loop {
            let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            match idle {
                Some(c) if c.client.is_closed() => continue,
                Some(c) => {
                    return Ok(Lent {
                        conn: Some(c),
                        idle: self.idle.clone(),
                        _permit: permit,
                    });
                }
                None => break,
            }
        }
        let (client, connection) =
            self.config.connect(NoTls).await.map_err(|e| {
                Error::unavailable(format_args!("postgres: connecting: {}", pg_err(e)))
            })?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "postgres store: connection closed");
            }
        });
        if let Some(schema) = &self.schema {
            client
                .batch_execute(&format!("SET search_path TO \"{schema}\""))
                .await
                .map_err(|e| {
                    Error::unavailable(format_args!("postgres: setting search_path: {}", pg_err(e)))
                })?;
        }
        let conn = Conn {
            client,
            statements: HashMap::new(),
            in_transaction: false,
            pending_begin: false,
        };
        Ok(Lent {
            conn: Some(conn),
            idle: self.idle.clone(),
            _permit: permit,
        })
    }
}
