//! The self-hosted store: PostgreSQL, any number of agentry nodes sharing it. Same relational
//! shape as SQLite. A transaction locks the addresses of the items it touches (an advisory
//! lock per item, present or not, then `SELECT ... FOR UPDATE`), in key order so concurrent
//! transactions cannot deadlock; checks conditions against what it read; writes; then bumps
//! the partitions' stream counters. If the database still reports a conflict (a deadlock, a
//! unique violation), the transaction runs again from the start.

mod pool;
mod schema;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio_postgres::types::ToSql;

use crate::ItemStore;
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::item::{Change, ChangeKind, Item, Key, Page, Query, TableSpec, Write};
use crate::plan::{self, Effect, Planned, Stored};
use crate::rules;
use crate::sql::{self, Dialect, Param};

use pool::{Conn, Pool};

/// How to connect a PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// Most connections held open.
    pub max_connections: usize,
    /// Keep the store's tables in this schema (created if missing) instead of the URL's
    /// default search path; also settable as `?schema=NAME` on the URL.
    pub schema: Option<String>,
    pub clock: Arc<dyn Clock>,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            max_connections: 8,
            schema: None,
            clock: Arc::new(SystemClock),
        }
    }
}

/// The PostgreSQL item store.
pub struct PostgresStore {
    pool: Pool,
    specs: Mutex<HashMap<String, Arc<TableSpec>>>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

/// Renders a driver error with the server's message (tokio-postgres' Display omits it).
pub(crate) fn pg_err(e: tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

fn unavailable(e: tokio_postgres::Error) -> Error {
    Error::unavailable(format_args!("postgres: {}", pg_err(e)))
}

/// Errors after which the whole transaction is simply run again.
fn must_retry(e: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    e.code().is_some_and(|c| {
        *c == SqlState::T_R_SERIALIZATION_FAILURE
            || *c == SqlState::T_R_DEADLOCK_DETECTED
            || *c == SqlState::UNIQUE_VIOLATION
    })
}

/// A transaction failed: either the contract says no, or the database asks to try again.
enum TxError {
    Store(Error),
    Db(tokio_postgres::Error),
    Retry,
}

impl From<tokio_postgres::Error> for TxError {
    fn from(e: tokio_postgres::Error) -> Self {
        if must_retry(&e) {
            TxError::Retry
        } else {
            TxError::Db(e)
        }
    }
}

impl From<Error> for TxError {
    fn from(e: Error) -> Self {
        TxError::Store(e)
    }
}

const ATTEMPTS: usize = 8;

fn check_schema_name(schema: &str) -> Result<()> {
    let ok = !schema.is_empty()
        && schema.len() <= 63
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !schema.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "schema",
            format!("{schema:?}: use 1 to 63 of [a-z0-9_], not starting with a digit"),
        ))
    }
}

impl PostgresStore {
    /// Connects to `postgres://user[:password]@host[:port]/database[?schema=NAME]` and migrates
    /// the schema.
    pub async fn connect(url: &str, mut options: PostgresOptions) -> Result<Self> {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("schema", s)) => options.schema = Some(s.to_owned()),
                _ => kept.push(pair),
            }
        }
        if let Some(s) = &options.schema {
            check_schema_name(s)?;
        }
        let url = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| Error::invalid("store url", format!("postgres url: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(10));
        }
        let pool = Pool::new(
            config,
            options.schema.clone(),
            options.max_connections.max(1),
        );
        let conn = pool.get().await?;
        schema::migrate(&conn.client, options.schema.as_deref()).await?;
        drop(conn);
        Ok(PostgresStore {
            pool,
            specs: Mutex::new(HashMap::new()),
            clock: options.clock,
        })
    }

    async fn spec(&self, conn: &mut Conn, table: &str) -> Result<Arc<TableSpec>> {
        if let Some(s) = self
            .specs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(table)
        {
            return Ok(s.clone());
        }
        let st = conn
            .stmt("SELECT spec FROM tables WHERE name = $1")
            .await
            .map_err(unavailable)?;
        let row = conn
            .client
            .query_opt(&st, &[&table])
            .await
            .map_err(unavailable)?;
        let Some(row) = row else {
            return Err(Error::table_not_found(table));
        };
        let spec: TableSpec = serde_json::from_str(row.get(0))
            .map_err(|e| Error::Corrupt(format!("definition of table {table:?}: {e}")))?;
        let spec = Arc::new(spec);
        self.specs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(table.to_owned(), spec.clone());
        Ok(spec)
    }

    /// Ends a transaction attempt: commits after success, rolls back after failure. `None`
    /// means the database asked for the transaction to be run again.
    async fn finish<T>(
        conn: &mut Conn,
        attempt: usize,
        outcome: Result<T, TxError>,
    ) -> Option<Result<T>> {
        match outcome {
            Ok(v) => match conn.commit().await {
                Ok(()) => return Some(Ok(v)),
                Err(e) if must_retry(&e) => {}
                Err(e) => return Some(Err(unavailable(e))),
            },
            Err(e) => {
                conn.rollback().await;
                match e {
                    TxError::Store(e) => return Some(Err(e)),
                    TxError::Db(e) => return Some(Err(unavailable(e))),
                    TxError::Retry => {}
                }
            }
        }
        tracing::debug!(
            attempt,
            "postgres store: transaction conflicted, running it again"
        );
        None
    }

    async fn transact_once(
        &self,
        conn: &mut Conn,
        writes: &[Write],
        texts: &[Option<String>],
        now: i64,
    ) -> Result<Vec<Option<u64>>, TxError> {
        let mut specs = Vec::with_capacity(writes.len());
        for w in writes {
            specs.push(self.spec(conn, w.table()).await?);
        }
        // Lock in key order so that two transactions never wait on each other in a cycle.
        let mut order: Vec<usize> = (0..writes.len()).collect();
        order.sort_by(|&a, &b| {
            (writes[a].table(), writes[a].key()).cmp(&(writes[b].table(), writes[b].key()))
        });
        let mut stored: Vec<Option<Stored>> = vec![None; writes.len()];
        for &i in &order {
            stored[i] = lock_and_load(conn, writes[i].table(), writes[i].key()).await?;
        }
        let existed: Vec<bool> = stored.iter().map(Option::is_some).collect();
        let mut planned = Vec::with_capacity(writes.len());
        for (i, (w, s)) in writes.iter().zip(stored).enumerate() {
            let json = texts.get(i).and_then(Option::as_deref);
            planned.push(plan::plan(i, w, json, &specs[i], s, now)?);
        }
        for &i in &order {
            apply_item(
                conn,
                &specs[i],
                writes[i].key(),
                existed[i],
                &planned[i].effect,
            )
            .await?;
        }
        // Stream counters after every item lock, in key order: no lock cycles with other writers.
        for &i in &order {
            record_change(conn, writes[i].table(), writes[i].key(), &planned[i], now).await?;
        }
        Ok(planned.iter().map(Planned::version).collect())
    }

    async fn purge_once(
        &self,
        conn: &mut Conn,
        table: &str,
        limit: i64,
        now: i64,
    ) -> Result<u64, TxError> {
        let spec = self.spec(conn, table).await?;
        let st = conn
            .stmt(
                "SELECT pk, sk, version, attrs, expires_at FROM items WHERE tbl = $1 AND expires_at <= $2
                 ORDER BY pk, sk LIMIT $3 FOR UPDATE SKIP LOCKED",
            )
            .await?;
        let rows = conn.client.query(&st, &[&table, &now, &limit]).await?;
        let mut expired = Vec::with_capacity(rows.len());
        for r in rows {
            let key = Key {
                pk: r.get(0),
                sk: r.get(1),
            };
            let stored = Stored {
                version: r.get::<_, i64>(2) as u64,
                attributes: plan::attributes_from_json(&key, r.get(3))?,
                expires_at: r.get(4),
            };
            expired.push((key, stored));
        }
        for (key, _) in &expired {
            apply_item(conn, &spec, key, true, &Effect::Remove).await?;
        }
        let n = expired.len() as u64;
        for (key, stored) in expired {
            let change = spec.stream.then(|| {
                (
                    ChangeKind::Remove,
                    Some(stored.into_item(key.clone())),
                    None,
                )
            });
            record_change(
                conn,
                table,
                &key,
                &Planned {
                    effect: Effect::Remove,
                    change,
                },
                now,
            )
            .await?;
        }
        if spec.stream {
            let st = conn
                .stmt("DELETE FROM changes WHERE tbl = $1 AND at < $2")
                .await?;
            let horizon = now - rules::STREAM_RETENTION_SECONDS;
            conn.client.execute(&st, &[&table, &horizon]).await?;
        }
        Ok(n)
    }
}

fn gave_up() -> Error {
    Error::unavailable(format_args!(
        "postgres: transaction still conflicting after {ATTEMPTS} attempts"
    ))
}

/// A 64-bit FNV-1a hash of an item's address: the key of its advisory lock.
fn item_lock_key(table: &str, key: &Key) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in [table, "\0", &key.pk, "\0", &key.sk] {
        for b in part.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    h as i64
}

/// Locks the item's address, present or not, then reads its row. Row locks alone cannot
/// cover an absent item, and a check that an item is absent must hold until commit (or two
/// transactions could each see the other's item absent and both commit). Every transaction
/// takes these locks in key order; the read is a statement of its own so that it sees what
/// a previous holder of the lock committed.
async fn lock_and_load(conn: &mut Conn, table: &str, key: &Key) -> Result<Option<Stored>, TxError> {
    let lock = conn.stmt("SELECT pg_advisory_xact_lock($1)").await?;
    let select = conn
        .stmt("SELECT version, attrs, expires_at FROM items WHERE tbl = $1 AND pk = $2 AND sk = $3 FOR UPDATE")
        .await?;
    let lock_key = item_lock_key(table, key);
    // Pipelined: both go out at once, and the server runs them in order.
    let lock_params: [&(dyn ToSql + Sync); 1] = [&lock_key];
    let select_params: [&(dyn ToSql + Sync); 3] = [&table, &key.pk, &key.sk];
    let row = if conn.take_pending_begin() {
        let (_, _, row) = tokio::try_join!(
            conn.client.batch_execute("BEGIN"),
            conn.client.execute(&lock, &lock_params),
            conn.client.query_opt(&select, &select_params)
        )?;
        row
    } else {
        let (_, row) = tokio::try_join!(
            conn.client.execute(&lock, &lock_params),
            conn.client.query_opt(&select, &select_params)
        )?;
        row
    };
    Ok(match row {
        None => None,
        Some(r) => Some(Stored {
            version: r.get::<_, i64>(0) as u64,
            attributes: plan::attributes_from_json(key, r.get(1))?,
            expires_at: r.get(2),
        }),
    })
}

/// Writes an item's row change (not its stream record).
async fn apply_item(
    conn: &mut Conn,
    spec: &TableSpec,
    key: &Key,
    existed: bool,
    effect: &Effect<'_>,
) -> Result<(), TxError> {
    let table = spec.name.as_str();
    match effect {
        Effect::Nothing => return Ok(()),
        Effect::Upsert {
            version,
            attributes_json,
            expires_at,
            indexes,
        } => {
            let version = *version as i64;
            if existed {
                let st = conn.stmt("UPDATE items SET version = $4, attrs = $5, expires_at = $6 WHERE tbl = $1 AND pk = $2 AND sk = $3").await?;
                conn.client
                    .execute(
                        &st,
                        &[
                            &table,
                            &key.pk,
                            &key.sk,
                            &version,
                            attributes_json,
                            expires_at,
                        ],
                    )
                    .await?;
            } else {
                // Another transaction may have created the item since we looked: then run again
                // and judge the condition against its row.
                let st = conn
                    .stmt("INSERT INTO items (tbl, pk, sk, version, attrs, expires_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING")
                    .await?;
                let n = conn
                    .client
                    .execute(
                        &st,
                        &[
                            &table,
                            &key.pk,
                            &key.sk,
                            &version,
                            attributes_json,
                            expires_at,
                        ],
                    )
                    .await?;
                if n == 0 {
                    return Err(TxError::Retry);
                }
            }
            if !spec.indexes.is_empty() {
                let st = conn
                    .stmt("DELETE FROM index_entries WHERE tbl = $1 AND pk = $2 AND sk = $3")
                    .await?;
                conn.client
                    .execute(&st, &[&table, &key.pk, &key.sk])
                    .await?;
                let st = conn.stmt("INSERT INTO index_entries (tbl, idx, ipk, isk, pk, sk) VALUES ($1, $2, $3, $4, $5, $6)").await?;
                for (idx, ipk, isk) in indexes {
                    conn.client
                        .execute(&st, &[&table, idx, ipk, isk, &key.pk, &key.sk])
                        .await?;
                }
            }
        }
        Effect::Remove => {
            if existed {
                let st = conn
                    .stmt("DELETE FROM items WHERE tbl = $1 AND pk = $2 AND sk = $3")
                    .await?;
                conn.client
                    .execute(&st, &[&table, &key.pk, &key.sk])
                    .await?;
                if !spec.indexes.is_empty() {
                    let st = conn
                        .stmt("DELETE FROM index_entries WHERE tbl = $1 AND pk = $2 AND sk = $3")
                        .await?;
                    conn.client
                        .execute(&st, &[&table, &key.pk, &key.sk])
                        .await?;
                }
            }
        }
    }
    Ok(())
}

async fn record_change(
    conn: &mut Conn,
    table: &str,
    key: &Key,
    planned: &Planned<'_>,
    now: i64,
) -> Result<(), TxError> {
    let Some((kind, old, new)) = &planned.change else {
        return Ok(());
    };
    let st = conn
        .stmt(
            "INSERT INTO partition_seq (tbl, pk, seq) VALUES ($1, $2, 1)
             ON CONFLICT (tbl, pk) DO UPDATE SET seq = partition_seq.seq + 1 RETURNING seq",
        )
        .await?;
    let seq: i64 = conn.client.query_one(&st, &[&table, &key.pk]).await?.get(0);
    let st = conn.stmt("INSERT INTO changes (tbl, pk, seq, sk, kind, old, new, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)").await?;
    conn.client
        .execute(
            &st,
            &[
                &table,
                &key.pk,
                &seq,
                &key.sk,
                &kind.as_str(),
                &plan::image_json(old),
                &plan::image_json(new),
                &now,
            ],
        )
        .await?;
    Ok(())
}

fn params(ps: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    ps.iter()
        .map(|p| match p {
            Param::Text(s) => s as &(dyn ToSql + Sync),
            Param::Int(i) => i as &(dyn ToSql + Sync),
        })
        .collect()
}

#[async_trait]
impl ItemStore for PostgresStore {
    async fn create_table(&self, spec: &TableSpec) -> Result<()> {
        rules::check_spec(spec)?;
        let json =
            serde_json::to_string(spec).map_err(|e| Error::invalid("table", e.to_string()))?;
        let mut conn = self.pool.get().await?;
        let st = conn
            .stmt("INSERT INTO tables (name, spec) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .await
            .map_err(unavailable)?;
        conn.client
            .execute(&st, &[&spec.name, &json])
            .await
            .map_err(unavailable)?;
        let existing = self.spec(&mut conn, &spec.name).await?;
        if *existing != *spec {
            return Err(Error::AlreadyExists {
                what: format!("table {:?}", spec.name),
                detail: "with a different definition".into(),
            });
        }
        Ok(())
    }

    async fn describe_table(&self, table: &str) -> Result<TableSpec> {
        rules::check_name("table name", table)?;
        let mut conn = self.pool.get().await?;
        Ok((*self.spec(&mut conn, table).await?).clone())
    }

    async fn get(&self, table: &str, key: &Key) -> Result<Option<Item>> {
        rules::check_name("table name", table)?;
        rules::check_key(table, key)?;
        let now = self.clock.now();
        let mut conn = self.pool.get().await?;
        self.spec(&mut conn, table).await?;
        let st = conn
            .stmt("SELECT version, attrs FROM items WHERE tbl = $1 AND pk = $2 AND sk = $3 AND (expires_at IS NULL OR expires_at > $4)")
            .await
            .map_err(unavailable)?;
        let row = conn
            .client
            .query_opt(&st, &[&table, &key.pk, &key.sk, &now])
            .await
            .map_err(unavailable)?;
        row.map(|r| {
            Ok(Item {
                key: key.clone(),
                attributes: plan::attributes_from_json(key, r.get(1))?,
                version: r.get::<_, i64>(0) as u64,
            })
        })
        .transpose()
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<Vec<Option<u64>>> {
        let texts = rules::check_transaction(&writes)?;
        for attempt in 0..ATTEMPTS {
            let mut conn = self.pool.get().await?;
            conn.begin_deferred();
            let outcome = self
                .transact_once(&mut conn, &writes, &texts, self.clock.now())
                .await;
            if let Some(result) = Self::finish(&mut conn, attempt, outcome).await {
                return result;
            }
        }
        Err(gave_up())
    }

    async fn query(&self, query: &Query) -> Result<Page> {
        rules::check_name("table name", &query.table)?;
        let now = self.clock.now();
        let mut conn = self.pool.get().await?;
        let spec = self.spec(&mut conn, &query.table).await?;
        let limit = rules::check_query(query, &spec)?;
        let built = sql::query_sql(query, limit, now, Dialect::Postgres)?;
        let st = conn.stmt(&built.sql).await.map_err(unavailable)?;
        let rows = conn
            .client
            .query(&st, &params(&built.params))
            .await
            .map_err(unavailable)?;
        let rows = rows
            .into_iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
            .collect();
        sql::page(rows, limit, query.index.is_some())
    }

    async fn read_changes(
        &self,
        table: &str,
        partition: &str,
        after: u64,
        limit: u32,
    ) -> Result<Vec<Change>> {
        rules::check_name("table name", table)?;
        let limit = i64::from(limit.clamp(1, rules::MAX_QUERY_LIMIT));
        let mut conn = self.pool.get().await?;
        let spec = self.spec(&mut conn, table).await?;
        if !spec.stream {
            return Err(Error::invalid(
                "table",
                format!("table {table:?} has no change stream"),
            ));
        }
        let st = conn
            .stmt("SELECT seq, sk, kind, old, new, at FROM changes WHERE tbl = $1 AND pk = $2 AND seq > $3 ORDER BY seq LIMIT $4")
            .await
            .map_err(unavailable)?;
        let rows = conn
            .client
            .query(&st, &[&table, &partition, &(after as i64), &limit])
            .await
            .map_err(unavailable)?;
        rows.into_iter()
            .map(|r| {
                let key = Key {
                    pk: partition.to_owned(),
                    sk: r.get(1),
                };
                let kind: &str = r.get(2);
                let kind = ChangeKind::parse(kind)
                    .ok_or_else(|| Error::Corrupt(format!("change kind {kind:?}")))?;
                Ok(Change {
                    sequence: r.get::<_, i64>(0) as u64,
                    kind,
                    old: plan::image_from_json(&key, r.get(3))?,
                    new: plan::image_from_json(&key, r.get(4))?,
                    key,
                    at: r.get(5),
                })
            })
            .collect()
    }

    async fn purge_expired(&self, table: &str, limit: u32) -> Result<u64> {
        rules::check_name("table name", table)?;
        let limit = i64::from(limit.clamp(1, rules::MAX_QUERY_LIMIT));
        for attempt in 0..ATTEMPTS {
            let mut conn = self.pool.get().await?;
            conn.begin().await.map_err(unavailable)?;
            let outcome = self
                .purge_once(&mut conn, table, limit, self.clock.now())
                .await;
            if let Some(result) = Self::finish(&mut conn, attempt, outcome).await {
                return result;
            }
        }
        Err(gave_up())
    }
}
