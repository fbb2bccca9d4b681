//! The working memory of running executions and the wire between nodes (the seed's
//! ElastiCache role): keys with values and expiry, atomic counters (progress of parallel
//! tasks), compare-and-set (leases, optimistic updates), hashes (the working context of an
//! execution), sorted sets (priorities, leaderboards of tool usage) and pub/sub channels
//! (real-time events from the node running an execution to the node holding the user's
//! WebSocket). The [`Cache`] trait is the contract; [`memory::MemoryCache`] is the embedded
//! default and `redis::RedisCache` (feature `redis`) serves Redis and ElastiCache Redis. The
//! semantics are Redis's, so code written against one backend behaves the same on the other.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> agentry_cache::Result<()> {
//! use agentry_cache::ZRange;
//!
//! let cache = agentry_cache::open("memory://?max_bytes=67108864").await?;
//! cache.hset("exec:42:ctx", &[("plan", b"search, then summarize")]).await?;
//! cache.incr_by("exec:42:done", 3).await?;
//! cache.zincr_by("tools:usage", "web_search", 1.0).await?;
//! let mut events = cache.subscribe("exec:42:events").await?;
//! cache.publish("exec:42:events", b"state entered: Plan").await?;
//! assert_eq!(&events.recv().await.unwrap().payload[..], b"state entered: Plan");
//! assert_eq!(cache.zrange("tools:usage", ZRange::all()).await?, [("web_search".into(), 1.0)]);
//! # Ok(()) }
//! ```
//!
//! Layout:
//! - `error`: the one [`Error`] type, and which errors are retryable
//! - `pubsub`: [`Message`], [`Subscription`] and Redis-style channel patterns
//! - `memory`: the in-process backend (bounded, LRU eviction, TTL sweep)
//! - `redis`: the Redis backend (feature `redis`)
//! - `resolver`: a cache URL (`memory://`, `redis://…`) to a backend
//! - `testsuite`: the conformance tests every backend runs
//!
//! # Contract
//!
//! - **Atomicity.** Every method is atomic on its own: no other operation observes it half
//!   done, and concurrent calls behave as if run one after another (Redis runs each command,
//!   and the compare-and-set script, alone). Nothing spans several calls; there are no
//!   transactions. [`Cache::scan_prefix`] and [`Cache::delete_prefix`] are the exception: on
//!   Redis they walk the key space a batch at a time and may miss keys written meanwhile.
//! - **Types.** A key holds one kind of value: a string (bytes; counters are strings holding
//!   a decimal integer, as in Redis), a hash or a sorted set. An operation on a key of another
//!   kind fails with [`Error::WrongType`] and changes nothing. A hash or sorted set whose last
//!   field or member is removed disappears.
//! - **Expiry.** Any key may carry a time to live. Once it passes the key behaves as absent
//!   for every operation; memory is reclaimed lazily on access and by a periodic sweep. `set`
//!   and `compare_and_set` replace the expiry with the one they are given (none means the key
//!   persists); every other write keeps the key's expiry. Expiry has millisecond resolution;
//!   a shorter positive duration is rounded up to one millisecond, and a zero TTL on a write
//!   is refused (use [`Cache::delete`]).
//! - **Eviction.** A cache may drop keys to stay within its memory bound (the memory backend
//!   evicts least-recently-used keys; Redis follows its `maxmemory-policy`, and under
//!   `noeviction` a full server refuses writes, reported as [`Error::Unavailable`]). Callers
//!   treat the cache as a cache: anything that must survive belongs in the store.
//! - **Pub/sub.** At-most-once delivery to subscribers live at the moment of publishing,
//!   exactly as Redis: nothing is stored, a subscriber that was not subscribed yet (or was
//!   reconnecting) misses the message, and a subscriber that falls too far behind loses the
//!   oldest undelivered messages ([`Subscription::lagged`] counts them). Messages from one
//!   publisher on one channel arrive in the order published. A subscription is live when
//!   [`Cache::subscribe`] returns.

pub mod error;
pub mod memory;
mod pubsub;
#[cfg(feature = "redis")]
pub mod redis;
pub mod resolver;
pub mod testsuite;

use std::collections::BTreeMap;
use std::ops::Bound;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use error::{Error, Result};
pub use memory::{MemoryCache, MemoryConfig};
pub use pubsub::{Message, Subscription, glob_match};
pub use resolver::open;

/// When [`Cache::set`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SetCondition {
    /// Always (Redis `SET`).
    #[default]
    Always,
    /// Only if the key does not exist (Redis `SET NX`).
    IfAbsent,
    /// Only if the key exists (Redis `SET XX`).
    IfPresent,
}

/// How [`Cache::set`] writes: the key's new expiry and the condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SetOptions {
    /// Time to live of the new value; `None` means it persists. Replaces any earlier expiry.
    pub ttl: Option<Duration>,
    pub condition: SetCondition,
}

impl SetOptions {
    /// Expire the value after `ttl`.
    pub fn ttl(ttl: Duration) -> Self {
        SetOptions {
            ttl: Some(ttl),
            ..Self::default()
        }
    }

    /// Write only if the key does not exist.
    pub fn if_absent(mut self) -> Self {
        self.condition = SetCondition::IfAbsent;
        self
    }

    /// Write only if the key exists.
    pub fn if_present(mut self) -> Self {
        self.condition = SetCondition::IfPresent;
        self
    }
}

/// The expiry of a key, as [`Cache::ttl`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyTtl {
    /// The key does not exist (or has expired).
    Missing,
    /// The key exists and does not expire.
    Persistent,
    /// The key expires after this long.
    Expires(Duration),
}

/// Which end of a sorted set (lowest or highest score).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Min,
    Max,
}

/// A selection of a sorted set's members for [`Cache::zrange`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ZRange {
    /// By rank, both ends inclusive; negative ranks count from the end (-1 is the last), as
    /// in Redis. With [`ZRange::rev`] rank 0 is the highest score.
    Rank { start: i64, stop: i64, rev: bool },
    /// By score between two bounds (`Bound::Unbounded` is -inf / +inf), optionally skipping
    /// `offset` members and returning at most `count`.
    Score {
        min: Bound<f64>,
        max: Bound<f64>,
        rev: bool,
        limit: Option<(usize, usize)>,
    },
}

impl ZRange {
    /// All members, lowest score first.
    pub fn all() -> Self {
        ZRange::Rank {
            start: 0,
            stop: -1,
            rev: false,
        }
    }

    /// Ranks `start..=stop`, lowest score first.
    pub fn ranks(start: i64, stop: i64) -> Self {
        ZRange::Rank {
            start,
            stop,
            rev: false,
        }
    }

    /// Scores within `min..=max`, lowest first.
    pub fn scores(min: f64, max: f64) -> Self {
        ZRange::Score {
            min: Bound::Included(min),
            max: Bound::Included(max),
            rev: false,
            limit: None,
        }
    }

    /// The same selection, highest score first.
    pub fn rev(self) -> Self {
        match self {
            ZRange::Rank { start, stop, .. } => ZRange::Rank {
                start,
                stop,
                rev: true,
            },
            ZRange::Score {
                min, max, limit, ..
            } => ZRange::Score {
                min,
                max,
                rev: true,
                limit,
            },
        }
    }

    /// Skip `offset` members of a score range and return at most `count` (no effect on a
    /// rank range, which already says how many).
    pub fn limit(self, offset: usize, count: usize) -> Self {
        match self {
            ZRange::Score { min, max, rev, .. } => ZRange::Score {
                min,
                max,
                rev,
                limit: Some((offset, count)),
            },
            rank => rank,
        }
    }
}

/// A sorted-set member and its score.
pub type Scored = (String, f64);

/// The cache contract (see the crate documentation for atomicity, expiry and delivery).
///
/// Keys, hash fields, sorted-set members and channels are UTF-8 strings; values are bytes.
/// Sorted sets order members by score, and members with equal scores by their bytes.
///
/// Each required method is one primitive a backend must implement itself (one Redis command
/// or script); anything composed of them belongs in [`CacheExt`].
#[async_trait]
pub trait Cache: Send + Sync + 'static {
    // Strings and expiry.

    /// Write `value` under `key` if `options.condition` holds; returns whether it wrote.
    async fn set(&self, key: &str, value: &[u8], options: SetOptions) -> Result<bool>;

    /// The string value of `key`, or `None` if absent.
    async fn get(&self, key: &str) -> Result<Option<Bytes>>;

    /// Remove keys of any kind; returns how many existed.
    async fn delete(&self, keys: &[&str]) -> Result<u64>;

    /// Set (`Some`) or remove (`None`) the expiry of an existing key; returns whether the key
    /// exists. A zero duration removes the key at once.
    async fn expire(&self, key: &str, ttl: Option<Duration>) -> Result<bool>;

    /// The remaining time to live of `key`.
    async fn ttl(&self, key: &str) -> Result<KeyTtl>;

    /// Atomically replace the string value of `key` with `new` (or remove the key, if `new`
    /// is `None`) only if its current value equals `expected` (`None`: only if the key is
    /// absent). `ttl` becomes the key's expiry as with [`Cache::set`]. Returns whether it
    /// swapped; of concurrent callers expecting the same value exactly one succeeds.
    async fn compare_and_set(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
        ttl: Option<Duration>,
    ) -> Result<bool>;

    /// Add `delta` to the integer in `key` (an absent key counts as 0) and return the result.
    async fn incr_by(&self, key: &str, delta: i64) -> Result<i64>;

    /// Keys starting with `prefix`, in no particular order. Walks the key space: meant for
    /// housekeeping (an execution's keys), not hot paths.
    async fn scan_prefix(&self, prefix: &str) -> Result<Vec<String>>;

    /// Remove every key starting with `prefix`; returns how many it removed. Not atomic.
    async fn delete_prefix(&self, prefix: &str) -> Result<u64>;

    // Hashes.

    /// Set fields of the hash at `key`, creating it if needed; returns how many fields are new.
    async fn hset(&self, key: &str, fields: &[(&str, &[u8])]) -> Result<u64>;

    /// One field of the hash at `key`.
    async fn hget(&self, key: &str, field: &str) -> Result<Option<Bytes>>;

    /// Every field of the hash at `key` (empty if absent).
    async fn hgetall(&self, key: &str) -> Result<BTreeMap<String, Bytes>>;

    /// Remove fields; returns how many existed.
    async fn hdel(&self, key: &str, fields: &[&str]) -> Result<u64>;

    /// Add `delta` to the integer in a hash field (absent counts as 0); returns the result.
    async fn hincr_by(&self, key: &str, field: &str, delta: i64) -> Result<i64>;

    // Sorted sets.

    /// Add members or update their scores; returns how many members are new. Scores must
    /// not be NaN.
    async fn zadd(&self, key: &str, members: &[(&str, f64)]) -> Result<u64>;

    /// Add `delta` to a member's score (absent counts as 0); returns the new score.
    async fn zincr_by(&self, key: &str, member: &str, delta: f64) -> Result<f64>;

    /// Members with their scores, selected and ordered by `range`.
    async fn zrange(&self, key: &str, range: ZRange) -> Result<Vec<Scored>>;

    /// The score of one member.
    async fn zscore(&self, key: &str, member: &str) -> Result<Option<f64>>;

    /// Remove members; returns how many existed.
    async fn zrem(&self, key: &str, members: &[&str]) -> Result<u64>;

    /// Remove and return up to `count` members from one end, the end's member first.
    async fn zpop(&self, key: &str, end: End, count: usize) -> Result<Vec<Scored>>;

    /// How many members the sorted set has (0 if absent).
    async fn zcard(&self, key: &str) -> Result<u64>;

    // Pub/sub.

    /// Send `payload` to the current subscribers of `channel`; returns how many received it.
    /// Subscriptions that share one connection to a server count once.
    async fn publish(&self, channel: &str, payload: &[u8]) -> Result<u64>;

    /// Subscribe to one channel; live when this returns.
    async fn subscribe(&self, channel: &str) -> Result<Subscription>;

    /// Subscribe to every channel matching a Redis glob pattern (`*`, `?`, `[a-z]`, `\`).
    async fn psubscribe(&self, pattern: &str) -> Result<Subscription>;
}

/// Conveniences over [`Cache`], for every implementation.
#[async_trait]
pub trait CacheExt: Cache {
    /// Write `value` with no expiry.
    async fn put(&self, key: &str, value: &[u8]) -> Result<()> {
        self.set(key, value, SetOptions::default()).await.map(drop)
    }

    /// Write `value` expiring after `ttl`.
    async fn put_ttl(&self, key: &str, value: &[u8], ttl: Duration) -> Result<()> {
        self.set(key, value, SetOptions::ttl(ttl)).await.map(drop)
    }

    /// Write only if absent; returns whether it wrote.
    async fn set_if_absent(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<bool> {
        self.set(
            key,
            value,
            SetOptions {
                ttl,
                condition: SetCondition::IfAbsent,
            },
        )
        .await
    }

    /// Add one to a counter.
    async fn incr(&self, key: &str) -> Result<i64> {
        self.incr_by(key, 1).await
    }

    /// Read a JSON value.
    async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        match self.get(key).await? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Error::Decode {
                    what: format!("key \"{key}\""),
                    reason: e.to_string(),
                }),
        }
    }

    /// Write a value as JSON.
    async fn set_json<T: Serialize + Sync>(
        &self,
        key: &str,
        value: &T,
        options: SetOptions,
    ) -> Result<bool> {
        let bytes =
            serde_json::to_vec(value).map_err(|e| Error::invalid("value", e.to_string()))?;
        self.set(key, &bytes, options).await
    }

    /// Read a JSON value from a hash field.
    async fn hget_json<T: DeserializeOwned>(&self, key: &str, field: &str) -> Result<Option<T>> {
        match self.hget(key, field).await? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Error::Decode {
                    what: format!("field \"{field}\" of key \"{key}\""),
                    reason: e.to_string(),
                }),
        }
    }

    /// Write a hash field as JSON.
    async fn hset_json<T: Serialize + Sync>(
        &self,
        key: &str,
        field: &str,
        value: &T,
    ) -> Result<()> {
        let bytes =
            serde_json::to_vec(value).map_err(|e| Error::invalid("value", e.to_string()))?;
        self.hset(key, &[(field, &bytes)]).await.map(drop)
    }

    /// The `n` members with the highest scores, highest first (a leaderboard).
    async fn top(&self, key: &str, n: usize) -> Result<Vec<Scored>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        self.zrange(
            key,
            ZRange::Rank {
                start: 0,
                stop: n as i64 - 1,
                rev: true,
            },
        )
        .await
    }
}

impl<C: Cache + ?Sized> CacheExt for C {}

/// A TTL in whole milliseconds as both backends store it: sub-millisecond durations round up,
/// zero is refused for writes.
pub(crate) fn ttl_millis(ttl: Duration) -> Result<u64> {
    if ttl.is_zero() {
        return Err(Error::invalid(
            "ttl",
            "must be positive (delete the key instead)",
        ));
    }
    let ms = ttl.as_nanos().div_ceil(1_000_000);
    u64::try_from(ms)
        .ok()
        .filter(|ms| *ms <= i64::MAX as u64 / 2)
        .ok_or_else(|| Error::invalid("ttl", "is too long"))
}

pub(crate) fn check_score(field: &'static str, score: f64) -> Result<()> {
    if score.is_nan() {
        Err(Error::invalid(field, "is not a number (NaN)"))
    } else {
        Ok(())
    }
}
