//! Turns a store URL into a store: `sqlite://path/to/file.db` (relative) or
//! `sqlite:///absolute/path.db`, optionally `?synchronous=full|normal|off`; `sqlite::memory:`;
//! `postgres://user@host:port/db` (feature `postgres`; `?schema=name` keeps the store's tables
//! in that schema). A backend left out of this build answers with a clear error.

use std::sync::Arc;

use crate::ItemStore;
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};

/// Settings a URL does not carry.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    pub clock: Arc<dyn Clock>,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            clock: Arc::new(SystemClock),
        }
    }
}

/// Opens the store a URL names, with the system clock.
pub async fn open(url: &str) -> Result<Arc<dyn ItemStore>> {
    open_with(url, OpenOptions::default()).await
}

fn bad_url(url: &str, why: &str) -> Error {
    Error::invalid("store url", format!("{url:?}: {why}"))
}

pub async fn open_with(url: &str, options: OpenOptions) -> Result<Arc<dyn ItemStore>> {
    let Some((scheme, rest)) = url.split_once(':') else {
        return Err(bad_url(
            url,
            "expected sqlite://PATH, sqlite::memory: or postgres://...",
        ));
    };
    match scheme {
        "sqlite" => open_sqlite(url, rest, options).await,
        "postgres" | "postgresql" => open_postgres(url, options).await,
        "dynamodb" => Err(Error::Unsupported(format!(
            "store url {url:?}: the dynamodb backend is not supported in this build"
        ))),
        _ => Err(bad_url(
            url,
            &format!("unknown scheme {scheme:?}; expected sqlite or postgres"),
        )),
    }
}

#[cfg(feature = "sqlite")]
async fn open_sqlite(url: &str, rest: &str, options: OpenOptions) -> Result<Arc<dyn ItemStore>> {
    use crate::sqlite::{SqliteOptions, SqliteStore, Synchronous};
    let (target, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut opts = SqliteOptions {
        clock: options.clock,
        ..SqliteOptions::default()
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("synchronous", v)) => {
                opts.synchronous = match v.to_ascii_lowercase().as_str() {
                    "full" => Synchronous::Full,
                    "normal" => Synchronous::Normal,
                    "off" => Synchronous::Off,
                    _ => {
                        return Err(bad_url(
                            url,
                            &format!("synchronous={v}: expected full, normal or off"),
                        ));
                    }
                }
            }
            _ => {
                return Err(bad_url(
                    url,
                    &format!("unknown parameter {pair:?}; expected synchronous=full|normal|off"),
                ));
            }
        }
    }
    if target == ":memory:" {
        return Ok(Arc::new(SqliteStore::open_in_memory(opts).await?));
    }
    let Some(path) = target.strip_prefix("//") else {
        return Err(bad_url(url, "expected sqlite://PATH or sqlite::memory:"));
    };
    if path.is_empty() {
        return Err(bad_url(url, "no database path"));
    }
    Ok(Arc::new(SqliteStore::open(path, opts).await?))
}

#[cfg(not(feature = "sqlite"))]
async fn open_sqlite(url: &str, _rest: &str, _options: OpenOptions) -> Result<Arc<dyn ItemStore>> {
    Err(Error::Unsupported(format!(
        "store url {url:?}: the sqlite backend is not supported in this build (enable feature `sqlite`)"
    )))
}

#[cfg(feature = "postgres")]
async fn open_postgres(url: &str, options: OpenOptions) -> Result<Arc<dyn ItemStore>> {
    let store = crate::postgres::PostgresStore::connect(
        url,
        crate::postgres::PostgresOptions {
            clock: options.clock,
            ..Default::default()
        },
    )
    .await?;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "postgres"))]
async fn open_postgres(url: &str, _options: OpenOptions) -> Result<Arc<dyn ItemStore>> {
    let _ = url;
    Err(Error::Unsupported("store url postgres://...: the postgres backend is not supported in this build (enable feature `postgres`)".into()))
}
