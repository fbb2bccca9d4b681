//! Persistent tables for agentry, in DynamoDB's shape: items addressed by a partition key and
//! a sort key, JSON attributes, a version per item for optimistic concurrency, conditional
//! writes and all-or-nothing transactions, range and prefix queries within a partition,
//! secondary indexes, TTL and a change stream per partition. The seed's tables (Users,
//! AgentSessions, Tools, KnowledgeBase) and the engine's executions, history, timers and task
//! tokens ride on it. [`ItemStore`] is the contract; SQLite is the embedded default,
//! PostgreSQL (feature `postgres`) the self-hosted one, and DynamoDB can honour it as it is.
//!
//! ```
//! use agentry_storage::{open, ItemStoreExt, Key, Query, TableSpec};
//! use serde_json::json;
//!
//! # #[tokio::main] async fn main() -> agentry_storage::Result<()> {
//! let store = open("sqlite::memory:").await?;
//! let sessions = TableSpec::new("AgentSessions").with_index("by-user", "user_id", "created_at");
//! store.create_table(&sessions).await?;
//! for (id, at) in [("s1", 100), ("s2", 300), ("s3", 200)] {
//!     let attrs = json!({"user_id": "ada", "created_at": at}).as_object().unwrap().clone();
//!     store.put_if_absent("AgentSessions", Key::new(id, "meta"), attrs).await?;
//! }
//! let newest = store.query(&Query::index("AgentSessions", "by-user", "ada").descending().limit(2)).await?;
//! let ids: Vec<_> = newest.items.iter().map(|i| i.key.pk.as_str()).collect();
//! assert_eq!(ids, ["s2", "s3"]);
//! # Ok(()) }
//! ```
//!
//! Layout:
//! - `error`: the one [`Error`] type and which errors are retryable
//! - `item`: tables, keys, items, writes, conditions, queries, pages and changes
//! - `rules`: DynamoDB's limits (item size, names, transaction size), sort-value and cursor encodings
//! - `clock`: the injectable clock TTL is judged by
//! - `plan`: how a write changes a stored row, shared by the SQL backends
//! - `sql`: the query SQL both SQL backends run
//! - `sqlite`: the embedded backend (WAL, one writer thread with group commit, reader pool)
//! - `postgres`: the PostgreSQL backend (feature `postgres`)
//! - `sweeper`: a background task purging expired items
//! - `resolver`: a URL (`sqlite://path`, `postgres://...`) to a store
//! - `testsuite`: the conformance tests every backend runs

pub mod clock;
pub mod error;
pub mod item;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod plan;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod resolver;
pub mod rules;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod sweeper;
pub mod testsuite;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{Error, ItemRef, Result};
pub use item::{
    Attributes, Change, ChangeKind, Condition, IndexSpec, Item, Key, Page, Query, SortRange,
    TableSpec, Write,
};
pub use resolver::{OpenOptions, open, open_with};
pub use rules::sort_value;
pub use sweeper::spawn_ttl_sweeper;

use async_trait::async_trait;

/// A store of tables of items. The contract every backend honours:
///
/// - **Atomicity.** [`ItemStore::transact`] applies all of its writes or none. When a
///   condition fails the error is [`Error::ConditionFailed`] naming the write's position and
///   item, and nothing was written. A write acknowledged with `Ok` is durable (as durable as
///   the backend is configured to be: SQLite with `synchronous=FULL` by default).
/// - **Consistency.** Reads, queries and index queries see every write acknowledged before
///   they started (DynamoDB serves this with consistent reads; its index queries are
///   eventually consistent, so callers must not rely on an index reflecting a write at once
///   when they may run on DynamoDB).
/// - **Versions.** A created item has version 1; each put adds 1. A deleted or expired item is
///   gone: re-creating it starts at 1 again. [`Condition::Version`] is how optimistic
///   concurrency is done: of two writers that read version n and write with
///   `Condition::Version(n)`, exactly one wins.
/// - **Idempotency.** Writes are not idempotent by themselves. A call that failed with a
///   retryable error ([`Error::is_retryable`]) may or may not have taken effect; make retries
///   safe with a condition (`Absent` for creation, `Version` for updates), and treat a
///   `ConditionFailed` on retry by reading the item again.
/// - **Ordering.** Queries return items by sort key (bytewise UTF-8 order), ascending unless
///   asked otherwise; index queries by index sort value (items with equal values in a stable
///   order of the backend's choosing: the SQL backends use the item key, DynamoDB promises
///   none). Changes in one partition's stream are in commit order with increasing sequences.
/// - **TTL.** An item whose TTL attribute (epoch seconds) is at or before the store's clock is
///   invisible to reads, queries and conditions at once, and removed later by
///   [`ItemStore::purge_expired`] (run it with [`spawn_ttl_sweeper`]); the removal is recorded
///   in the stream, as DynamoDB's TTL deletions are.
/// - **Limits.** As DynamoDB: items up to 400 KB, transactions of up to 100 writes touching
///   each item once, names of 3 to 255 characters of `[A-Za-z0-9_.-]`.
///
/// How DynamoDB honours it (for the backend to come): an item is one DynamoDB item with its
/// key, a version attribute and the TTL attribute; `Absent` is `attribute_not_exists(pk) OR
/// ttl <= :now`, `Version(n)` is `version = :n AND NOT ttl <= :now`; a transaction is one
/// TransactWriteItems whose cancellation reasons give the failing write's position; an index
/// is a GSI over attributes the backend fills in at write time (sparse, values encoded with
/// [`sort_value`]), queried with `ConsistentRead` off; reads filter out expired items; the
/// change stream is written as items in the same transaction (a counter item per partition
/// and a change item), which costs two of the 100 writes per streamed write.
#[async_trait]
pub trait ItemStore: Send + Sync {
    /// Creates a table. Creating a table again with the same definition succeeds (so every
    /// node can declare its tables at start-up); with a different one fails with
    /// [`Error::AlreadyExists`].
    async fn create_table(&self, spec: &TableSpec) -> Result<()>;

    /// The table's definition, or [`Error::NotFound`].
    async fn describe_table(&self, table: &str) -> Result<TableSpec>;

    /// The item, or `None` if absent or expired.
    async fn get(&self, table: &str, key: &Key) -> Result<Option<Item>>;

    /// Applies up to 100 writes atomically. Returns, per write in order, the item's version
    /// after a put and `None` for deletes and checks.
    async fn transact(&self, writes: Vec<Write>) -> Result<Vec<Option<u64>>>;

    /// One page of items of a partition of a table or of an index.
    async fn query(&self, query: &Query) -> Result<Page>;

    /// Changes of a partition after position `after` (0 for the start), oldest first, at most
    /// `limit`. The table must have been created with a stream. Changes are kept for at least
    /// 24 hours; a consumer further behind finds the oldest ones gone (the first sequence it
    /// reads is then above `after + 1`).
    async fn read_changes(
        &self,
        table: &str,
        partition: &str,
        after: u64,
        limit: u32,
    ) -> Result<Vec<Change>>;

    /// Removes up to `limit` expired items of a table; returns how many were removed. Also
    /// drops the table's changes older than 24 hours (DynamoDB Streams' retention).
    async fn purge_expired(&self, table: &str, limit: u32) -> Result<u64>;
}

/// Conveniences over [`ItemStore`], each one call of it.
#[async_trait]
pub trait ItemStoreExt: ItemStore {
    /// Puts unconditionally; returns the new version.
    async fn put(&self, table: &str, key: Key, attributes: Attributes) -> Result<u64> {
        self.put_when(table, key, attributes, Condition::None).await
    }

    /// Puts only if the condition holds; returns the new version.
    async fn put_when(
        &self,
        table: &str,
        key: Key,
        attributes: Attributes,
        condition: Condition,
    ) -> Result<u64> {
        let out = self
            .transact(vec![Write::Put {
                table: table.to_owned(),
                key,
                attributes,
                condition,
            }])
            .await?;
        out.first()
            .copied()
            .flatten()
            .ok_or_else(|| Error::Corrupt("put returned no version".into()))
    }

    /// Creates the item only if it does not exist; returns its version (1).
    async fn put_if_absent(&self, table: &str, key: Key, attributes: Attributes) -> Result<u64> {
        self.put_when(table, key, attributes, Condition::Absent)
            .await
    }

    /// Replaces the item only if it is at `version`; returns the new version.
    async fn put_if_version(
        &self,
        table: &str,
        key: Key,
        attributes: Attributes,
        version: u64,
    ) -> Result<u64> {
        self.put_when(table, key, attributes, Condition::Version(version))
            .await
    }

    /// Deletes the item if the condition holds.
    async fn delete_when(&self, table: &str, key: Key, condition: Condition) -> Result<()> {
        self.transact(vec![Write::Delete {
            table: table.to_owned(),
            key,
            condition,
        }])
        .await
        .map(drop)
    }

    async fn delete(&self, table: &str, key: Key) -> Result<()> {
        self.delete_when(table, key, Condition::None).await
    }

    /// Read-modify-write under optimistic concurrency: reads the item, asks `change` for its
    /// new attributes (`None`: leave it as it is), writes on condition that nobody wrote in
    /// between, and starts again when somebody did, at most `attempts` times. Returns the new
    /// version, or `None` when `change` declined; after the last attempt, the conflict.
    async fn update<F>(
        &self,
        table: &str,
        key: Key,
        attempts: u32,
        mut change: F,
    ) -> Result<Option<u64>>
    where
        F: FnMut(Option<&Item>) -> Option<Attributes> + Send,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let current = self.get(table, &key).await?;
            let Some(attributes) = change(current.as_ref()) else {
                return Ok(None);
            };
            let condition = current
                .as_ref()
                .map_or(Condition::Absent, |i| Condition::Version(i.version));
            match self
                .put_when(table, key.clone(), attributes, condition)
                .await
            {
                Err(e) if e.is_condition_failed() && attempt < attempts => continue,
                other => return other.map(Some),
            }
        }
    }

    /// Every item a query selects, following cursors (for small result sets).
    async fn query_all(&self, query: &Query) -> Result<Vec<Item>> {
        let mut query = query.clone();
        let mut items = Vec::new();
        loop {
            let page = self.query(&query).await?;
            items.extend(page.items);
            match page.cursor {
                Some(c) => query.cursor = Some(c),
                None => return Ok(items),
            }
        }
    }
}

impl<T: ItemStore + ?Sized> ItemStoreExt for T {}
