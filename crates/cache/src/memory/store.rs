//! The memory backend's key space: entries in least-recently-used order, an index of
//! expiry deadlines, and approximate byte accounting against the bound.

use std::collections::{BTreeSet, HashMap};

use bytes::Bytes;
use lru::LruCache;
use tokio::time::Instant;

use super::zset::ZSet;
use crate::{Error, Result};

/// Bytes of bookkeeping per key (map node, LRU links, expiry), on top of key and value.
const ENTRY_OVERHEAD: usize = 64;
/// Bytes of bookkeeping per hash field, on top of its name and value.
pub(crate) const FIELD_OVERHEAD: usize = 32;

#[derive(Debug)]
pub(crate) enum Value {
    Str(Bytes),
    Hash(Hash),
    ZSet(ZSet),
}

impl Value {
    fn bytes(&self) -> usize {
        match self {
            Value::Str(b) => b.len(),
            Value::Hash(h) => h.bytes,
            Value::ZSet(z) => z.bytes(),
        }
    }

    fn is_empty_collection(&self) -> bool {
        match self {
            Value::Str(_) => false,
            Value::Hash(h) => h.fields.is_empty(),
            Value::ZSet(z) => z.len() == 0,
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Hash {
    pub(crate) fields: HashMap<String, Bytes>,
    bytes: usize,
}

impl Hash {
    pub(crate) fn field_cost(field: &str, value_len: usize) -> usize {
        FIELD_OVERHEAD + field.len() + value_len
    }

    /// Set a field; returns whether it is new.
    pub(crate) fn insert(&mut self, field: &str, value: Bytes) -> bool {
        let len = value.len();
        match self.fields.insert(field.to_owned(), value) {
            Some(old) => {
                self.bytes = self.bytes + len - old.len();
                false
            }
            None => {
                self.bytes += Self::field_cost(field, len);
                true
            }
        }
    }

    pub(crate) fn remove(&mut self, field: &str) -> bool {
        match self.fields.remove(field) {
            Some(old) => {
                self.bytes -= Self::field_cost(field, old.len());
                true
            }
            None => false,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) value: Value,
    pub(crate) expires: Option<Instant>,
}

fn entry_size(key: &str, value: &Value) -> usize {
    ENTRY_OVERHEAD + key.len() + value.bytes()
}

/// The kind of value an operation works on, for creating absent keys and type checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Str,
    Hash,
    ZSet,
}

/// Counters for tests and metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MemoryStats {
    /// Keys currently held (some may have expired and not been swept yet).
    pub keys: usize,
    /// Approximate bytes held.
    pub used_bytes: usize,
    /// Keys evicted to stay within the bound.
    pub evicted: u64,
    /// Keys removed because their time to live passed.
    pub expired: u64,
}

pub(crate) struct Store {
    entries: LruCache<String, Entry>,
    deadlines: BTreeSet<(Instant, String)>,
    used: usize,
    max_bytes: usize,
    evicted: u64,
    expired: u64,
}

impl Store {
    pub(crate) fn new(max_bytes: usize) -> Self {
        Store {
            entries: LruCache::unbounded(),
            deadlines: BTreeSet::new(),
            used: 0,
            max_bytes,
            evicted: 0,
            expired: 0,
        }
    }

    pub(crate) fn stats(&self) -> MemoryStats {
        MemoryStats {
            keys: self.entries.len(),
            used_bytes: self.used,
            evicted: self.evicted,
            expired: self.expired,
        }
    }

    /// The live entry at `key`, marked most recently used; an expired one is removed.
    pub(crate) fn get(&mut self, key: &str, now: Instant) -> Option<&mut Entry> {
        let expired = self.entries.peek(key)?.expires.is_some_and(|at| at <= now);
        if expired {
            self.remove(key);
            self.expired += 1;
            return None;
        }
        self.entries.get_mut(key)
    }

    /// The live entry at `key` if it holds `kind`; `WrongType` if it holds another.
    pub(crate) fn get_kind(
        &mut self,
        key: &str,
        kind: Kind,
        now: Instant,
    ) -> Result<Option<&mut Entry>> {
        match self.get(key, now) {
            None => Ok(None),
            Some(entry) if entry_kind(&entry.value) == kind => Ok(Some(entry)),
            Some(_) => Err(Error::WrongType {
                key: key.to_owned(),
            }),
        }
    }

    /// Whether a live key exists.
    pub(crate) fn exists(&mut self, key: &str, now: Instant) -> bool {
        self.get(key, now).is_some()
    }

    /// Replace whatever `key` holds.
    pub(crate) fn insert(
        &mut self,
        key: &str,
        value: Value,
        expires: Option<Instant>,
    ) -> Result<()> {
        let size = entry_size(key, &value);
        self.check_fits(key, size)?;
        self.remove(key);
        if let Some(at) = expires {
            self.deadlines.insert((at, key.to_owned()));
        }
        self.entries.put(key.to_owned(), Entry { value, expires });
        self.used += size;
        self.evict();
        Ok(())
    }

    /// Remove `key`; returns whether it held anything (expired or not).
    pub(crate) fn remove(&mut self, key: &str) -> bool {
        match self.entries.pop(key) {
            Some(entry) => {
                self.forget(key, &entry);
                true
            }
            None => false,
        }
    }

    fn forget(&mut self, key: &str, entry: &Entry) {
        self.used -= entry_size(key, &entry.value);
        if let Some(at) = entry.expires {
            self.deadlines.remove(&(at, key.to_owned()));
        }
    }

    pub(crate) fn set_expiry(&mut self, key: &str, expires: Option<Instant>) {
        let Some(entry) = self.entries.peek_mut(key) else {
            return;
        };
        let old = std::mem::replace(&mut entry.expires, expires);
        if let Some(at) = old {
            self.deadlines.remove(&(at, key.to_owned()));
        }
        if let Some(at) = expires {
            self.deadlines.insert((at, key.to_owned()));
        }
    }

    /// Change the collection or counter at `key` in place (creating it as `kind` if absent),
    /// with `growth` the most bytes the change can add. Keeps the key's expiry; removes the
    /// key if the change leaves an empty collection.
    pub(crate) fn update<R>(
        &mut self,
        key: &str,
        kind: Kind,
        now: Instant,
        growth: usize,
        change: impl FnOnce(&mut Value) -> Result<R>,
    ) -> Result<R> {
        let exists = self.get_kind(key, kind, now)?.is_some();
        let before = match self.entries.peek(key) {
            Some(entry) if exists => entry_size(key, &entry.value),
            _ => 0,
        };
        let bound = if exists {
            before + growth
        } else {
            ENTRY_OVERHEAD + key.len() + growth
        };
        self.check_fits(key, bound)?;
        if !exists {
            let value = match kind {
                // Counters start from zero, as in Redis.
                Kind::Str => Value::Str(Bytes::from_static(b"0")),
                Kind::Hash => Value::Hash(Hash::default()),
                Kind::ZSet => Value::ZSet(ZSet::default()),
            };
            self.entries.put(
                key.to_owned(),
                Entry {
                    value,
                    expires: None,
                },
            );
        }
        let entry = self
            .entries
            .get_mut(key)
            .expect("entry was just found or created");
        let result = change(&mut entry.value);
        let after = entry_size(key, &entry.value);
        let empty = entry.value.is_empty_collection();
        self.used = self.used + after - before;
        if empty || (!exists && result.is_err()) {
            self.remove(key);
        }
        self.evict();
        result
    }

    fn check_fits(&self, key: &str, size: usize) -> Result<()> {
        if size > self.max_bytes {
            return Err(Error::TooLarge {
                what: format!("entry \"{key}\""),
                size,
                limit: self.max_bytes,
            });
        }
        Ok(())
    }

    /// Drop least-recently-used keys until the bound holds again (allkeys-lru, exact).
    fn evict(&mut self) {
        while self.used > self.max_bytes {
            let Some((key, entry)) = self.entries.pop_lru() else {
                break;
            };
            self.forget(&key, &entry);
            self.evicted += 1;
        }
    }

    /// Remove up to `budget` keys whose deadline has passed; returns how many it removed.
    pub(crate) fn sweep(&mut self, now: Instant, budget: usize) -> usize {
        let mut removed = 0;
        while removed < budget {
            let Some((at, _)) = self.deadlines.first() else {
                break;
            };
            if *at > now {
                break;
            }
            let (_, key) = self.deadlines.pop_first().expect("first exists");
            if let Some(entry) = self.entries.pop(&key) {
                self.used -= entry_size(&key, &entry.value);
                self.expired += 1;
            }
            removed += 1;
        }
        removed
    }

    /// Live keys starting with `prefix`, without touching their recency.
    pub(crate) fn keys_with_prefix(&self, prefix: &str, now: Instant) -> Vec<String> {
        self.entries
            .iter()
            .filter(|(k, e)| k.starts_with(prefix) && e.expires.is_none_or(|at| at > now))
            .map(|(k, _)| k.clone())
            .collect()
    }
}

fn entry_kind(value: &Value) -> Kind {
    match value {
        Value::Str(_) => Kind::Str,
        Value::Hash(_) => Kind::Hash,
        Value::ZSet(_) => Kind::ZSet,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Value::Str(Bytes::copy_from_slice(v.as_bytes()))
    }

    #[test]
    fn accounting_returns_to_zero() {
        let now = Instant::now();
        let mut store = Store::new(10_000);
        store.insert("a", s("hello"), None).unwrap();
        store.insert("b", s("world"), Some(now)).unwrap();
        store
            .update("h", Kind::Hash, now, 100, |v| {
                let Value::Hash(h) = v else { unreachable!() };
                h.insert("f", Bytes::from_static(b"x"));
                h.insert("f", Bytes::from_static(b"xyz"));
                Ok(())
            })
            .unwrap();
        assert!(store.stats().used_bytes > 0);
        store.remove("a");
        store.remove("h");
        assert_eq!(store.sweep(now, 10), 1);
        assert_eq!(
            store.stats(),
            MemoryStats {
                keys: 0,
                used_bytes: 0,
                evicted: 0,
                expired: 1
            }
        );
    }

    #[test]
    fn a_failed_change_of_an_absent_key_leaves_nothing() {
        let now = Instant::now();
        let mut store = Store::new(10_000);
        let r: Result<()> =
            store.update("c", Kind::Str, now, 20, |_| Err(Error::invalid("x", "y")));
        assert!(r.is_err());
        assert_eq!(store.stats().keys, 0);
        assert_eq!(store.stats().used_bytes, 0);
    }
}
