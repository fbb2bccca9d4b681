//! The embedded default: an in-process cache bounded in bytes.
//!
//! Eviction is exact least-recently-used over all keys (Redis's `allkeys-lru`, without its
//! sampling): every read or write of a key makes it the most recently used, and when a write
//! takes the cache over `max_bytes` the least recently used keys go first. Sizes are
//! approximate: keys, values, fields and members plus a fixed overhead per item. Expired keys
//! are removed when touched and by a sweep every `sweep_interval` that follows an index of
//! deadlines, so it costs only the keys that actually expired. Time is tokio's clock, so tests
//! on a paused runtime move it with `tokio::time::advance` instead of sleeping.
//!
//! Every operation takes one mutex for a few map operations, never across an await point.
//! Pub/sub fans out through a tokio broadcast channel per channel and per pattern.

mod store;
mod zset;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::broadcast;
use tokio::time::Instant;

pub use store::MemoryStats;
use store::{FIELD_OVERHEAD, Hash, Kind, Store, Value};
use zset::ZSet;

use crate::pubsub::{Message, Subscription, glob_match};
use crate::{Cache, End, Error, KeyTtl, Result, Scored, SetCondition, SetOptions, ZRange};
use crate::{check_score, ttl_millis};

/// Settings of the memory backend (the `[cache]` section when the URL is `memory://`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemoryConfig {
    /// The bound on the approximate bytes held; least-recently-used keys are evicted beyond it.
    pub max_bytes: usize,
    /// Messages a subscriber may fall behind before it loses the oldest.
    pub channel_capacity: usize,
    /// How often expired keys are swept, in milliseconds.
    pub sweep_interval_ms: u64,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            max_bytes: 256 << 20,
            channel_capacity: 1024,
            sweep_interval_ms: 100,
        }
    }
}

/// Keys a sweep removes before it lets other operations take the lock again.
const SWEEP_BATCH: usize = 512;

/// The in-process cache. Cheap to clone; clones share the same data.
#[derive(Clone)]
pub struct MemoryCache {
    inner: Arc<Inner>,
}

struct Inner {
    store: Mutex<Store>,
    channels: Mutex<Channels>,
    channel_capacity: usize,
}

#[derive(Default)]
struct Channels {
    exact: HashMap<String, broadcast::Sender<Message>>,
    patterns: HashMap<String, broadcast::Sender<Message>>,
}

impl Default for MemoryCache {
    fn default() -> Self {
        Self::new(MemoryConfig::default())
    }
}

impl std::fmt::Debug for MemoryCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryCache")
            .field("stats", &self.stats())
            .finish()
    }
}

impl MemoryCache {
    /// A new, empty cache. Inside a tokio runtime it starts its expiry sweep, which stops
    /// when the last clone is dropped; elsewhere expired keys are removed only when touched.
    pub fn new(config: MemoryConfig) -> Self {
        let inner = Arc::new(Inner {
            store: Mutex::new(Store::new(config.max_bytes)),
            channels: Mutex::new(Channels::default()),
            channel_capacity: config.channel_capacity.max(1),
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let every = Duration::from_millis(config.sweep_interval_ms.max(1));
            runtime.spawn(sweep(Arc::downgrade(&inner), every));
        }
        MemoryCache { inner }
    }

    /// Keys, bytes, evictions and expiries so far.
    pub fn stats(&self) -> MemoryStats {
        self.store().stats()
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        self.inner
            .store
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn channels(&self) -> MutexGuard<'_, Channels> {
        self.inner
            .channels
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn subscribe_to(&self, name: &str, pattern: bool) -> Subscription {
        let mut channels = self.channels();
        let map = if pattern {
            &mut channels.patterns
        } else {
            &mut channels.exact
        };
        let rx = match map.get(name) {
            Some(tx) => tx.subscribe(),
            None => {
                let (tx, rx) = broadcast::channel(self.inner.channel_capacity);
                map.insert(name.to_owned(), tx);
                rx
            }
        };
        Subscription::new(rx, None)
    }
}

async fn sweep(inner: Weak<Inner>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        loop {
            let removed = {
                let mut store = inner.store.lock().unwrap_or_else(|p| p.into_inner());
                store.sweep(Instant::now(), SWEEP_BATCH)
            };
            if removed < SWEEP_BATCH {
                break;
            }
            tokio::task::yield_now().await;
        }
        let mut channels = inner.channels.lock().unwrap_or_else(|p| p.into_inner());
        channels.exact.retain(|_, tx| tx.receiver_count() > 0);
        channels.patterns.retain(|_, tx| tx.receiver_count() > 0);
    }
}

fn deadline(ttl: Option<Duration>, now: Instant) -> Result<Option<Instant>> {
    ttl.map(|ttl| ttl_millis(ttl).map(|ms| now + Duration::from_millis(ms)))
        .transpose()
}

fn parse_int(key: &str, what: impl Fn() -> String, bytes: &[u8]) -> Result<i64> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| Error::NotInteger {
            key: key.to_owned(),
            what: what(),
        })
}

fn add(key: &str, what: impl Fn() -> String, current: i64, delta: i64) -> Result<i64> {
    current.checked_add(delta).ok_or_else(|| Error::NotInteger {
        key: key.to_owned(),
        what: what(),
    })
}

/// The most bytes a decimal i64 takes.
const INT_BYTES: usize = 20;

#[async_trait]
impl Cache for MemoryCache {
    async fn set(&self, key: &str, value: &[u8], options: SetOptions) -> Result<bool> {
        let now = Instant::now();
        let expires = deadline(options.ttl, now)?;
        let mut store = self.store();
        let write = match options.condition {
            SetCondition::Always => true,
            SetCondition::IfAbsent => !store.exists(key, now),
            SetCondition::IfPresent => store.exists(key, now),
        };
        if write {
            store.insert(key, Value::Str(Bytes::copy_from_slice(value)), expires)?;
        }
        Ok(write)
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let mut store = self.store();
        Ok(store
            .get_kind(key, Kind::Str, Instant::now())?
            .map(|entry| match &entry.value {
                Value::Str(bytes) => bytes.clone(),
                _ => unreachable!("kind was checked"),
            }))
    }

    async fn delete(&self, keys: &[&str]) -> Result<u64> {
        let now = Instant::now();
        let mut store = self.store();
        Ok(keys
            .iter()
            .filter(|key| store.exists(key, now) && store.remove(key))
            .count() as u64)
    }

    async fn expire(&self, key: &str, ttl: Option<Duration>) -> Result<bool> {
        let now = Instant::now();
        let mut store = self.store();
        if !store.exists(key, now) {
            return Ok(false);
        }
        match ttl {
            Some(ttl) if ttl.is_zero() => {
                store.remove(key);
            }
            ttl => store.set_expiry(key, deadline(ttl, now)?),
        }
        Ok(true)
    }

    async fn ttl(&self, key: &str) -> Result<KeyTtl> {
        let now = Instant::now();
        let mut store = self.store();
        Ok(match store.get(key, now) {
            None => KeyTtl::Missing,
            Some(entry) => match entry.expires {
                None => KeyTtl::Persistent,
                Some(at) => KeyTtl::Expires(at - now),
            },
        })
    }

    async fn compare_and_set(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
        ttl: Option<Duration>,
    ) -> Result<bool> {
        let now = Instant::now();
        let expires = deadline(ttl, now)?;
        let mut store = self.store();
        let current = store
            .get_kind(key, Kind::Str, now)?
            .map(|entry| match &entry.value {
                Value::Str(bytes) => bytes.clone(),
                _ => unreachable!("kind was checked"),
            });
        if current.as_deref() != expected {
            return Ok(false);
        }
        match new {
            Some(value) => store.insert(key, Value::Str(Bytes::copy_from_slice(value)), expires)?,
            None => {
                store.remove(key);
            }
        }
        Ok(true)
    }

    async fn incr_by(&self, key: &str, delta: i64) -> Result<i64> {
        let what = || "the value".to_owned();
        self.store()
            .update(key, Kind::Str, Instant::now(), INT_BYTES, |value| {
                let Value::Str(bytes) = value else {
                    unreachable!("kind was checked")
                };
                let next = add(key, what, parse_int(key, what, bytes)?, delta)?;
                *bytes = Bytes::from(next.to_string());
                Ok(next)
            })
    }

    async fn scan_prefix(&self, prefix: &str) -> Result<Vec<String>> {
        Ok(self.store().keys_with_prefix(prefix, Instant::now()))
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        let mut store = self.store();
        let keys = store.keys_with_prefix(prefix, Instant::now());
        Ok(keys.iter().filter(|key| store.remove(key)).count() as u64)
    }

    async fn hset(&self, key: &str, fields: &[(&str, &[u8])]) -> Result<u64> {
        if fields.is_empty() {
            return Err(Error::invalid("fields", "at least one field is required"));
        }
        let growth = fields
            .iter()
            .map(|(f, v)| Hash::field_cost(f, v.len()))
            .sum();
        self.store()
            .update(key, Kind::Hash, Instant::now(), growth, |value| {
                let Value::Hash(hash) = value else {
                    unreachable!("kind was checked")
                };
                Ok(fields
                    .iter()
                    .filter(|(f, v)| hash.insert(f, Bytes::copy_from_slice(v)))
                    .count() as u64)
            })
    }

    async fn hget(&self, key: &str, field: &str) -> Result<Option<Bytes>> {
        let mut store = self.store();
        Ok(store
            .get_kind(key, Kind::Hash, Instant::now())?
            .and_then(|entry| match &entry.value {
                Value::Hash(hash) => hash.fields.get(field).cloned(),
                _ => unreachable!("kind was checked"),
            }))
    }

    async fn hgetall(&self, key: &str) -> Result<BTreeMap<String, Bytes>> {
        let mut store = self.store();
        Ok(match store.get_kind(key, Kind::Hash, Instant::now())? {
            Some(store::Entry {
                value: Value::Hash(hash),
                ..
            }) => hash
                .fields
                .iter()
                .map(|(f, v)| (f.clone(), v.clone()))
                .collect(),
            _ => BTreeMap::new(),
        })
    }

    async fn hdel(&self, key: &str, fields: &[&str]) -> Result<u64> {
        let now = Instant::now();
        let mut store = self.store();
        if store.get_kind(key, Kind::Hash, now)?.is_none() {
            return Ok(0);
        }
        store.update(key, Kind::Hash, now, 0, |value| {
            let Value::Hash(hash) = value else {
                unreachable!("kind was checked")
            };
            Ok(fields.iter().filter(|f| hash.remove(f)).count() as u64)
        })
    }

    async fn hincr_by(&self, key: &str, field: &str, delta: i64) -> Result<i64> {
        let what = || format!("field \"{field}\"");
        let growth = FIELD_OVERHEAD + field.len() + INT_BYTES;
        self.store()
            .update(key, Kind::Hash, Instant::now(), growth, |value| {
                let Value::Hash(hash) = value else {
                    unreachable!("kind was checked")
                };
                let current = match hash.fields.get(field) {
                    Some(bytes) => parse_int(key, what, bytes)?,
                    None => 0,
                };
                let next = add(key, what, current, delta)?;
                hash.insert(field, Bytes::from(next.to_string()));
                Ok(next)
            })
    }

    async fn zadd(&self, key: &str, members: &[(&str, f64)]) -> Result<u64> {
        if members.is_empty() {
            return Err(Error::invalid("members", "at least one member is required"));
        }
        for (_, score) in members {
            check_score("score", *score)?;
        }
        let growth = members.iter().map(|(m, _)| ZSet::member_cost(m)).sum();
        self.store()
            .update(key, Kind::ZSet, Instant::now(), growth, |value| {
                let Value::ZSet(zset) = value else {
                    unreachable!("kind was checked")
                };
                Ok(members.iter().filter(|(m, s)| zset.insert(m, *s)).count() as u64)
            })
    }

    async fn zincr_by(&self, key: &str, member: &str, delta: f64) -> Result<f64> {
        check_score("delta", delta)?;
        self.store().update(
            key,
            Kind::ZSet,
            Instant::now(),
            ZSet::member_cost(member),
            |value| {
                let Value::ZSet(zset) = value else {
                    unreachable!("kind was checked")
                };
                let next = zset.score(member).unwrap_or(0.0) + delta;
                if next.is_nan() {
                    return Err(Error::invalid("delta", "would make the score NaN"));
                }
                zset.insert(member, next);
                Ok(next)
            },
        )
    }

    async fn zrange(&self, key: &str, range: ZRange) -> Result<Vec<Scored>> {
        if let ZRange::Score { min, max, .. } = range {
            for bound in [min, max] {
                if let std::ops::Bound::Included(s) | std::ops::Bound::Excluded(s) = bound {
                    check_score("score bound", s)?;
                }
            }
        }
        let mut store = self.store();
        Ok(match store.get_kind(key, Kind::ZSet, Instant::now())? {
            Some(store::Entry {
                value: Value::ZSet(zset),
                ..
            }) => zset.range(range),
            _ => Vec::new(),
        })
    }

    async fn zscore(&self, key: &str, member: &str) -> Result<Option<f64>> {
        let mut store = self.store();
        Ok(match store.get_kind(key, Kind::ZSet, Instant::now())? {
            Some(store::Entry {
                value: Value::ZSet(zset),
                ..
            }) => zset.score(member),
            _ => None,
        })
    }

    async fn zrem(&self, key: &str, members: &[&str]) -> Result<u64> {
        let now = Instant::now();
        let mut store = self.store();
        if store.get_kind(key, Kind::ZSet, now)?.is_none() {
            return Ok(0);
        }
        store.update(key, Kind::ZSet, now, 0, |value| {
            let Value::ZSet(zset) = value else {
                unreachable!("kind was checked")
            };
            Ok(members.iter().filter(|m| zset.remove(m)).count() as u64)
        })
    }

    async fn zpop(&self, key: &str, end: End, count: usize) -> Result<Vec<Scored>> {
        let now = Instant::now();
        let mut store = self.store();
        if store.get_kind(key, Kind::ZSet, now)?.is_none() {
            return Ok(Vec::new());
        }
        store.update(key, Kind::ZSet, now, 0, |value| {
            let Value::ZSet(zset) = value else {
                unreachable!("kind was checked")
            };
            Ok(zset.pop(end, count))
        })
    }

    async fn zcard(&self, key: &str) -> Result<u64> {
        let mut store = self.store();
        Ok(match store.get_kind(key, Kind::ZSet, Instant::now())? {
            Some(store::Entry {
                value: Value::ZSet(zset),
                ..
            }) => zset.len() as u64,
            _ => 0,
        })
    }

    async fn publish(&self, channel: &str, payload: &[u8]) -> Result<u64> {
        let payload = Bytes::copy_from_slice(payload);
        let channels = self.channels();
        let mut received = 0;
        if let Some(tx) = channels.exact.get(channel) {
            let message = Message {
                channel: channel.to_owned(),
                pattern: None,
                payload: payload.clone(),
            };
            received += tx.send(message).unwrap_or(0);
        }
        for (pattern, tx) in &channels.patterns {
            if tx.receiver_count() > 0 && glob_match(pattern, channel) {
                let message = Message {
                    channel: channel.to_owned(),
                    pattern: Some(pattern.clone()),
                    payload: payload.clone(),
                };
                received += tx.send(message).unwrap_or(0);
            }
        }
        Ok(received as u64)
    }

    async fn subscribe(&self, channel: &str) -> Result<Subscription> {
        Ok(self.subscribe_to(channel, false))
    }

    async fn psubscribe(&self, pattern: &str) -> Result<Subscription> {
        Ok(self.subscribe_to(pattern, true))
    }
}
