//! A queue backend from a URL, as configured in `agentry.toml`:
//!
//! - `sqlite://data/queue.db` (relative path), `sqlite:///var/lib/agentry/queue.db`
//!   (absolute); `?synchronous=full|normal|off` (default `full`)
//! - `redis://host:port/db` (and `rediss://`), `?prefix=name` to keep several deployments
//!   on one server apart (default `agentry`); feature `redis`

use std::sync::Arc;

use crate::sqlite::{SqliteOptions, SqliteQueue, Synchronous};
use crate::{Clock, Error, Queue, Result, SystemClock};

/// Opens the backend `url` names, with the wall clock.
pub async fn open(url: &str) -> Result<Arc<dyn Queue>> {
    open_with_clock(url, Arc::new(SystemClock)).await
}

/// Opens the backend `url` names, reading time from `clock`.
pub async fn open_with_clock(url: &str, clock: Arc<dyn Clock>) -> Result<Arc<dyn Queue>> {
    let invalid = |reason: &str| Error::InvalidUrl {
        url: redact(url),
        reason: reason.to_owned(),
    };
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| invalid("expected scheme://..."))?;
    let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
    let params: Vec<(&str, &str)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.split_once('=')
                .ok_or_else(|| invalid(&format!("query parameter \"{p}\" has no value")))
        })
        .collect::<Result<_>>()?;
    match scheme {
        "sqlite" => {
            if location.is_empty() {
                return Err(invalid("no database path after sqlite://"));
            }
            let mut options = SqliteOptions::new(location);
            for (k, v) in params {
                match k {
                    "synchronous" => {
                        options.synchronous = Synchronous::parse(v).ok_or_else(|| {
                            invalid(&format!(
                                "synchronous \"{v}\" is not one of full, normal, off"
                            ))
                        })?;
                    }
                    _ => return Err(invalid(&format!("unknown query parameter \"{k}\""))),
                }
            }
            Ok(Arc::new(SqliteQueue::open_with(options, clock).await?))
        }
        "redis" | "rediss" => open_redis(url, scheme, location, &params, clock).await,
        "sqs" => Err(Error::NotSupported("sqs".into())),
        other => Err(invalid(&format!(
            "unknown queue backend \"{other}\" (expected sqlite, redis)"
        ))),
    }
}

#[cfg(feature = "redis")]
async fn open_redis(
    url: &str,
    scheme: &str,
    location: &str,
    params: &[(&str, &str)],
    clock: Arc<dyn Clock>,
) -> Result<Arc<dyn Queue>> {
    let mut prefix = "agentry".to_owned();
    for (k, v) in params {
        match *k {
            "prefix" if !v.is_empty() => prefix = (*v).to_owned(),
            _ => {
                return Err(Error::InvalidUrl {
                    url: redact(url),
                    reason: format!("unknown or empty query parameter \"{k}\""),
                });
            }
        }
    }
    let server = format!("{scheme}://{location}");
    Ok(Arc::new(
        crate::redis::RedisQueue::connect(&server, &prefix, clock).await?,
    ))
}

#[cfg(not(feature = "redis"))]
async fn open_redis(
    _: &str,
    _: &str,
    _: &str,
    _: &[(&str, &str)],
    _: Arc<dyn Clock>,
) -> Result<Arc<dyn Queue>> {
    Err(Error::NotSupported("redis".into()))
}

/// The URL with any password replaced, fit for errors and logs.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            format!("{scheme}://{user}:***@{host}{}", &rest[authority_end..])
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn malformed_urls_say_what_is_wrong() {
        let e = open("queue.db").await.err().unwrap();
        assert!(e.to_string().contains("expected scheme"), "{e}");
        let e = open("mq://x").await.err().unwrap();
        assert!(
            e.to_string().contains("unknown queue backend \"mq\""),
            "{e}"
        );
        let e = open("sqlite://").await.err().unwrap();
        assert!(e.to_string().contains("no database path"), "{e}");
        let e = open("sqlite://x.db?synchronous=sometimes")
            .await
            .err()
            .unwrap();
        assert!(e.to_string().contains("synchronous \"sometimes\""), "{e}");
        let e = open("sqs://queue").await.err().unwrap();
        assert_eq!(
            e.to_string(),
            "queue backend \"sqs\" is not supported in this build"
        );
    }

    #[test]
    fn passwords_stay_out_of_errors() {
        assert_eq!(
            redact("redis://:hunter2@host:6379/0"),
            "redis://:***@host:6379/0"
        );
        assert_eq!(
            redact("rediss://me:hunter2@host?prefix=a"),
            "rediss://me:***@host?prefix=a"
        );
        assert_eq!(redact("redis://host:6379"), "redis://host:6379");
        assert_eq!(redact("sqlite://data/q.db"), "sqlite://data/q.db");
    }

    #[cfg(not(feature = "redis"))]
    #[tokio::test]
    async fn redis_left_out_of_the_build_says_so() {
        let e = open("redis://127.0.0.1:6379").await.err().unwrap();
        assert_eq!(
            e.to_string(),
            "queue backend \"redis\" is not supported in this build"
        );
    }
}
