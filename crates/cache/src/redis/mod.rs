//! The Redis backend (Redis ≥ 6.2, Valkey, ElastiCache Redis): one command per operation over
//! a `ConnectionManager` (multiplexed, reconnecting), compare-and-set as a Lua script, and
//! subscriptions on a dedicated RESP3 connection (see `pubsub`).
//!
//! Every key and channel gets the cache's prefix (`?prefix=` in the URL), so deployments or
//! tests can share a server; results strip it again.

mod pubsub;

use std::collections::{BTreeMap, HashSet};
use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, FromRedisValue, RedisError, Script};

use self::pubsub::Hub;
use crate::pubsub::{Subscription, glob_escape};
use crate::resolver::query_pairs;
use crate::{Cache, End, Error, KeyTtl, Result, Scored, SetCondition, SetOptions, ZRange};
use crate::{check_score, ttl_millis};

/// How long a command or a connection attempt may take before the call fails as unavailable.
const TIMEOUT: Duration = Duration::from_secs(5);
/// Redis's limit on one string value (`proto-max-bulk-len`'s default).
const MAX_VALUE: usize = 512 << 20;
/// Keys deleted per UNLINK when deleting by prefix.
const UNLINK_BATCH: usize = 500;

/// Swap a string value only if it still holds the expected one. KEYS[1] the key; ARGV: "1"
/// if a current value is expected (else absence), the expected value, "1" to write (else
/// delete), the new value, the TTL in milliseconds or "".
const COMPARE_AND_SET: &str = r#"
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if current ~= ARGV[2] then return 0 end
elseif current then
  return 0
end
if ARGV[3] == '1' then
  if ARGV[5] ~= '' then
    redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[5])
  else
    redis.call('SET', KEYS[1], ARGV[4])
  end
else
  redis.call('DEL', KEYS[1])
end
return 1
"#;

/// A cache on a Redis server. Cheap to clone; clones share connections.
#[derive(Clone)]
pub struct RedisCache {
    conn: ConnectionManager,
    prefix: Arc<str>,
    cas: Arc<Script>,
    hub: Arc<Hub>,
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisCache {
    /// Connect to the server a `redis://` URL names; `?prefix=` sets the key prefix.
    pub async fn open(url: &str) -> Result<Self> {
        let mut prefix = String::new();
        let mut rest = Vec::new();
        for (name, value) in query_pairs(url)? {
            if name == "prefix" {
                prefix = value.to_owned();
            } else {
                rest.push(format!("{name}={value}"));
            }
        }
        let base = url.split('?').next().unwrap_or(url);
        let server_url = if rest.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", rest.join("&"))
        };
        Self::connect(&server_url, &prefix).await
    }

    /// Connect to the server at `url`, putting `prefix` before every key and channel.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self> {
        let client = redis::Client::open(url).map_err(|e| Error::InvalidUrl {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(2);
        let conn = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .map_err(|e| unavailable(url, e))?;
        Ok(RedisCache {
            conn,
            prefix: prefix.into(),
            cas: Arc::new(Script::new(COMPARE_AND_SET)),
            hub: Arc::new(Hub::new(client, prefix.to_owned())),
        })
    }

    /// The prefix put before every key and channel.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    async fn run<T: FromRedisValue>(&self, cmd: &Cmd, key: &str, what: &str) -> Result<T> {
        cmd.query_async(&mut self.conn.clone())
            .await
            .map_err(|e| map_error(e, key, what))
    }

    /// Keys (with the prefix) matching `prefix`, walking the key space with SCAN.
    async fn scan(&self, prefix: &str) -> Result<Vec<String>> {
        let pattern = format!("{}*", glob_escape(&self.key(prefix)));
        let mut conn = self.conn.clone();
        let mut cursor: u64 = 0;
        let mut keys = HashSet::new();
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .map_err(|e| map_error(e, prefix, "key"))?;
            keys.extend(batch);
            if next == 0 {
                return Ok(keys.into_iter().collect());
            }
            cursor = next;
        }
    }
}

fn unavailable(url: &str, e: RedisError) -> Error {
    Error::Unavailable(format!("redis at {}: {e}", redact(url)))
}

/// A URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

/// Map a Redis error on `key` into the cache's error; `what` names the value for integer
/// errors ("the value", "field \"f\"").
fn map_error(e: RedisError, key: &str, what: &str) -> Error {
    let detail = e.detail().unwrap_or_default().to_owned();
    let code = e.code().unwrap_or_default();
    if code == "WRONGTYPE" || detail.contains("WRONGTYPE") {
        return Error::WrongType {
            key: key.to_owned(),
        };
    }
    if detail.contains("not an integer") || detail.contains("would overflow") {
        return Error::NotInteger {
            key: key.to_owned(),
            what: what.to_owned(),
        };
    }
    if detail.contains("not a valid float") || detail.contains("NaN") {
        return Error::InvalidInput {
            field: "score",
            reason: detail,
        };
    }
    let transient = e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || matches!(
            code,
            "LOADING" | "TRYAGAIN" | "MASTERDOWN" | "CLUSTERDOWN" | "BUSY" | "OOM"
        );
    if transient {
        return Error::Unavailable(format!("redis: {e}"));
    }
    Error::Backend(format!("redis, key \"{key}\": {e}"))
}

/// A score bound in Redis's syntax: `(` for exclusive, `-inf`/`+inf` for none.
fn score_bound(bound: Bound<f64>, unbounded: &str) -> Result<String> {
    let number = |s: f64| -> Result<String> {
        check_score("score bound", s)?;
        Ok(if s.is_infinite() {
            if s > 0.0 {
                "+inf".into()
            } else {
                "-inf".into()
            }
        } else {
            s.to_string()
        })
    };
    Ok(match bound {
        Bound::Included(s) => number(s)?,
        Bound::Excluded(s) => format!("({}", number(s)?),
        Bound::Unbounded => unbounded.to_owned(),
    })
}

fn check_size(key: &str, value: &[u8]) -> Result<()> {
    if value.len() > MAX_VALUE {
        return Err(Error::TooLarge {
            what: format!("value of key \"{key}\""),
            size: value.len(),
            limit: MAX_VALUE,
        });
    }
    Ok(())
}

fn bytes(value: Option<Vec<u8>>) -> Option<Bytes> {
    value.map(Bytes::from)
}

#[async_trait]
impl Cache for RedisCache {
    async fn set(&self, key: &str, value: &[u8], options: SetOptions) -> Result<bool> {
        check_size(key, value)?;
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(key)).arg(value);
        if let Some(ttl) = options.ttl {
            cmd.arg("PX").arg(ttl_millis(ttl)?);
        }
        match options.condition {
            SetCondition::Always => {}
            SetCondition::IfAbsent => {
                cmd.arg("NX");
            }
            SetCondition::IfPresent => {
                cmd.arg("XX");
            }
        }
        let reply: Option<String> = self.run(&cmd, key, "the value").await?;
        Ok(reply.is_some())
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.run(redis::cmd("GET").arg(self.key(key)), key, "the value")
            .await
            .map(bytes)
    }

    async fn delete(&self, keys: &[&str]) -> Result<u64> {
        if keys.is_empty() {
            return Ok(0);
        }
        let mut cmd = redis::cmd("DEL");
        for key in keys {
            cmd.arg(self.key(key));
        }
        self.run(&cmd, keys[0], "the value").await
    }

    async fn expire(&self, key: &str, ttl: Option<Duration>) -> Result<bool> {
        let k = self.key(key);
        let existed: u64 = match ttl {
            Some(ttl) => {
                let ms = if ttl.is_zero() { 0 } else { ttl_millis(ttl)? };
                self.run(redis::cmd("PEXPIRE").arg(&k).arg(ms), key, "")
                    .await?
            }
            None => {
                // PERSIST says whether it removed an expiry, not whether the key exists.
                let mut pipe = redis::pipe();
                pipe.atomic()
                    .cmd("PERSIST")
                    .arg(&k)
                    .ignore()
                    .cmd("EXISTS")
                    .arg(&k);
                let (exists,): (u64,) = pipe
                    .query_async(&mut self.conn.clone())
                    .await
                    .map_err(|e| map_error(e, key, ""))?;
                exists
            }
        };
        Ok(existed > 0)
    }

    async fn ttl(&self, key: &str) -> Result<KeyTtl> {
        let ms: i64 = self
            .run(redis::cmd("PTTL").arg(self.key(key)), key, "")
            .await?;
        Ok(match ms {
            -2 => KeyTtl::Missing,
            -1 => KeyTtl::Persistent,
            ms => KeyTtl::Expires(Duration::from_millis(ms.max(0) as u64)),
        })
    }

    async fn compare_and_set(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
        ttl: Option<Duration>,
    ) -> Result<bool> {
        check_size(key, new.unwrap_or_default())?;
        let ttl = match ttl {
            Some(ttl) => ttl_millis(ttl)?.to_string(),
            None => String::new(),
        };
        let swapped: i64 = self
            .cas
            .key(self.key(key))
            .arg(if expected.is_some() { "1" } else { "0" })
            .arg(expected.unwrap_or_default())
            .arg(if new.is_some() { "1" } else { "0" })
            .arg(new.unwrap_or_default())
            .arg(ttl)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| map_error(e, key, "the value"))?;
        Ok(swapped == 1)
    }

    async fn incr_by(&self, key: &str, delta: i64) -> Result<i64> {
        self.run(
            redis::cmd("INCRBY").arg(self.key(key)).arg(delta),
            key,
            "the value",
        )
        .await
    }

    async fn scan_prefix(&self, prefix: &str) -> Result<Vec<String>> {
        let strip = self.prefix.len();
        Ok(self
            .scan(prefix)
            .await?
            .into_iter()
            .map(|k| k[strip..].to_owned())
            .collect())
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        let keys = self.scan(prefix).await?;
        let mut removed = 0;
        for batch in keys.chunks(UNLINK_BATCH) {
            let n: u64 = self
                .run(redis::cmd("UNLINK").arg(batch), prefix, "")
                .await?;
            removed += n;
        }
        Ok(removed)
    }

    async fn hset(&self, key: &str, fields: &[(&str, &[u8])]) -> Result<u64> {
        if fields.is_empty() {
            return Err(Error::invalid("fields", "at least one field is required"));
        }
        let mut cmd = redis::cmd("HSET");
        cmd.arg(self.key(key));
        for (field, value) in fields {
            cmd.arg(*field).arg(*value);
        }
        self.run(&cmd, key, "").await
    }

    async fn hget(&self, key: &str, field: &str) -> Result<Option<Bytes>> {
        self.run(redis::cmd("HGET").arg(self.key(key)).arg(field), key, "")
            .await
            .map(bytes)
    }

    async fn hgetall(&self, key: &str) -> Result<BTreeMap<String, Bytes>> {
        let all: Vec<(String, Vec<u8>)> = self
            .run(redis::cmd("HGETALL").arg(self.key(key)), key, "")
            .await?;
        Ok(all.into_iter().map(|(f, v)| (f, Bytes::from(v))).collect())
    }

    async fn hdel(&self, key: &str, fields: &[&str]) -> Result<u64> {
        if fields.is_empty() {
            return Ok(0);
        }
        self.run(redis::cmd("HDEL").arg(self.key(key)).arg(fields), key, "")
            .await
    }

    async fn hincr_by(&self, key: &str, field: &str, delta: i64) -> Result<i64> {
        let what = format!("field \"{field}\"");
        self.run(
            redis::cmd("HINCRBY")
                .arg(self.key(key))
                .arg(field)
                .arg(delta),
            key,
            &what,
        )
        .await
    }

    async fn zadd(&self, key: &str, members: &[(&str, f64)]) -> Result<u64> {
        if members.is_empty() {
            return Err(Error::invalid("members", "at least one member is required"));
        }
        let mut cmd = redis::cmd("ZADD");
        cmd.arg(self.key(key));
        for (member, score) in members {
            check_score("score", *score)?;
            cmd.arg(*score).arg(*member);
        }
        self.run(&cmd, key, "").await
    }

    async fn zincr_by(&self, key: &str, member: &str, delta: f64) -> Result<f64> {
        check_score("delta", delta)?;
        self.run(
            redis::cmd("ZINCRBY")
                .arg(self.key(key))
                .arg(delta)
                .arg(member),
            key,
            "",
        )
        .await
        .map_err(|e| match e {
            Error::InvalidInput { .. } => Error::invalid("delta", "would make the score NaN"),
            e => e,
        })
    }

    async fn zrange(&self, key: &str, range: ZRange) -> Result<Vec<Scored>> {
        let mut cmd = redis::cmd("ZRANGE");
        cmd.arg(self.key(key));
        match range {
            ZRange::Rank { start, stop, rev } => {
                cmd.arg(start).arg(stop);
                if rev {
                    cmd.arg("REV");
                }
            }
            ZRange::Score {
                min,
                max,
                rev,
                limit,
            } => {
                let (min, max) = (score_bound(min, "-inf")?, score_bound(max, "+inf")?);
                // With REV, Redis takes the upper bound first.
                if rev {
                    cmd.arg(max).arg(min).arg("BYSCORE").arg("REV");
                } else {
                    cmd.arg(min).arg(max).arg("BYSCORE");
                }
                if let Some((offset, count)) = limit {
                    let count = i64::try_from(count).unwrap_or(-1);
                    cmd.arg("LIMIT").arg(offset).arg(count);
                }
            }
        }
        cmd.arg("WITHSCORES");
        self.run(&cmd, key, "").await
    }

    async fn zscore(&self, key: &str, member: &str) -> Result<Option<f64>> {
        self.run(redis::cmd("ZSCORE").arg(self.key(key)).arg(member), key, "")
            .await
    }

    async fn zrem(&self, key: &str, members: &[&str]) -> Result<u64> {
        if members.is_empty() {
            return Ok(0);
        }
        self.run(redis::cmd("ZREM").arg(self.key(key)).arg(members), key, "")
            .await
    }

    async fn zpop(&self, key: &str, end: End, count: usize) -> Result<Vec<Scored>> {
        let name = match end {
            End::Min => "ZPOPMIN",
            End::Max => "ZPOPMAX",
        };
        self.run(redis::cmd(name).arg(self.key(key)).arg(count), key, "")
            .await
    }

    async fn zcard(&self, key: &str) -> Result<u64> {
        self.run(redis::cmd("ZCARD").arg(self.key(key)), key, "")
            .await
    }

    async fn publish(&self, channel: &str, payload: &[u8]) -> Result<u64> {
        self.run(
            redis::cmd("PUBLISH").arg(self.key(channel)).arg(payload),
            channel,
            "",
        )
        .await
    }

    async fn subscribe(&self, channel: &str) -> Result<Subscription> {
        self.hub.subscribe(channel, false).await
    }

    async fn psubscribe(&self, pattern: &str) -> Result<Subscription> {
        self.hub.subscribe(pattern, true).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_and_redaction() {
        assert_eq!(score_bound(Bound::Excluded(1.5), "-inf").unwrap(), "(1.5");
        assert_eq!(
            score_bound(Bound::Included(f64::NEG_INFINITY), "-inf").unwrap(),
            "-inf"
        );
        assert_eq!(score_bound(Bound::Unbounded, "+inf").unwrap(), "+inf");
        assert!(score_bound(Bound::Included(f64::NAN), "+inf").is_err());
        assert_eq!(
            redact("redis://user:secret@host:6379/0"),
            "redis://***@host:6379/0"
        );
        assert_eq!(redact("redis://host"), "redis://host");
    }
}
