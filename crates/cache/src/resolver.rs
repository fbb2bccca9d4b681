//! A cache URL to a backend: the one place that knows which backends exist.
//!
//! - `memory://` or `memory://?max_bytes=67108864&channel_capacity=1024&sweep_interval_ms=100`
//! - `redis://[user:password@]host[:port][/db][?prefix=app:]` (feature `redis`); `prefix` is
//!   put before every key and channel so several deployments can share one server.

use std::sync::Arc;

use crate::memory::{MemoryCache, MemoryConfig};
use crate::{Cache, Error, Result};

/// Open the cache a URL names.
pub async fn open(url: &str) -> Result<Arc<dyn Cache>> {
    let Some((scheme, _)) = url.split_once("://") else {
        return Err(invalid(
            url,
            "expected scheme://..., e.g. memory:// or redis://127.0.0.1:6379",
        ));
    };
    match scheme {
        "memory" => Ok(Arc::new(MemoryCache::new(memory_config(url)?))),
        "redis" | "rediss" | "valkey" => open_redis(url).await,
        other => Err(invalid(
            url,
            &format!("unknown scheme \"{other}\" (expected memory or redis)"),
        )),
    }
}

fn invalid(url: &str, reason: &str) -> Error {
    Error::InvalidUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    }
}

/// Split a URL's query into `name=value` pairs.
pub(crate) fn query_pairs(url: &str) -> Result<Vec<(&str, &str)>> {
    let Some((_, query)) = url.split_once('?') else {
        return Ok(Vec::new());
    };
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            pair.split_once('=')
                .ok_or_else(|| invalid(url, &format!("query parameter \"{pair}\" has no value")))
        })
        .collect()
}

fn memory_config(url: &str) -> Result<MemoryConfig> {
    let rest = &url["memory://".len()..];
    let host = rest.split('?').next().unwrap_or_default();
    if !host.is_empty() && host != "/" {
        return Err(invalid(url, "a memory cache takes no host or path"));
    }
    let mut config = MemoryConfig::default();
    for (name, value) in query_pairs(url)? {
        let number = |field: &str| {
            value.parse::<u64>().map_err(|_| {
                invalid(
                    url,
                    &format!("{field} must be a non-negative integer, not \"{value}\""),
                )
            })
        };
        match name {
            "max_bytes" => config.max_bytes = number(name)? as usize,
            "channel_capacity" => config.channel_capacity = number(name)? as usize,
            "sweep_interval_ms" => config.sweep_interval_ms = number(name)?,
            other => {
                return Err(invalid(
                    url,
                    &format!(
                        "unknown parameter \"{other}\" (expected max_bytes, channel_capacity or sweep_interval_ms)"
                    ),
                ));
            }
        }
    }
    if config.max_bytes == 0 {
        return Err(invalid(url, "max_bytes must be positive"));
    }
    Ok(config)
}

#[cfg(feature = "redis")]
async fn open_redis(url: &str) -> Result<Arc<dyn Cache>> {
    if url.starts_with("rediss://") {
        return Err(Error::NotSupported {
            scheme: "rediss".into(),
            hint: " (TLS to Redis is not compiled in)",
        });
    }
    Ok(Arc::new(crate::redis::RedisCache::open(url).await?))
}

#[cfg(not(feature = "redis"))]
async fn open_redis(url: &str) -> Result<Arc<dyn Cache>> {
    let scheme = url.split("://").next().unwrap_or_default().to_owned();
    Err(Error::NotSupported {
        scheme,
        hint: " (build with the \"redis\" feature)",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_urls() {
        assert_eq!(memory_config("memory://").unwrap(), MemoryConfig::default());
        let c = memory_config("memory://?max_bytes=1000&sweep_interval_ms=5").unwrap();
        assert_eq!((c.max_bytes, c.sweep_interval_ms), (1000, 5));
        let e = memory_config("memory://?max_bytes=lots")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "invalid cache url \"memory://?max_bytes=lots\": max_bytes must be a non-negative integer, not \"lots\""
        );
        assert!(
            memory_config("memory://?size=1")
                .unwrap_err()
                .to_string()
                .contains("unknown parameter \"size\"")
        );
        assert!(
            memory_config("memory://?max_bytes")
                .unwrap_err()
                .to_string()
                .contains("has no value")
        );
        assert!(memory_config("memory://host").is_err());
        assert!(memory_config("memory://?max_bytes=0").is_err());
    }

    #[tokio::test]
    async fn unknown_and_malformed_urls() {
        let e = open("memcached://x").await.err().unwrap().to_string();
        assert!(e.contains("unknown scheme \"memcached\""), "{e}");
        let e = open("localhost:6379").await.err().unwrap().to_string();
        assert!(e.contains("expected scheme://"), "{e}");
        #[cfg(not(feature = "redis"))]
        {
            let e = open("redis://127.0.0.1").await.err().unwrap().to_string();
            assert_eq!(
                e,
                "cache url scheme \"redis\" is not supported in this build (build with the \"redis\" feature)"
            );
        }
    }
}
