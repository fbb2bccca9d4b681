//! What the registry remembers between calls: results by idempotency key (so a retried call
//! does not repeat a side effect) and approval requests waiting for a human. In memory for
//! tests and single runs, or on an [`ItemStore`] so it survives restarts.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use agentry_storage::{Attributes, ItemStore, ItemStoreExt, Key, Query, TableSpec};
use async_trait::async_trait;
use serde_json::Value;

use crate::error::{Error, Result};

/// The namespace of remembered results.
pub const RESULTS: &str = "result";
/// The namespace of approval requests.
pub const APPROVALS: &str = "approval";
/// The namespace of tools registered at run time (by tenants, through the API).
pub const TOOLS: &str = "tool";
/// The namespace of the tenant each account's executions call tools as.
pub const ACCOUNTS: &str = "account";

/// Values by namespace and key.
#[async_trait]
pub trait Memory: Send + Sync {
    async fn get(&self, ns: &str, key: &str) -> Result<Option<Value>>;
    async fn put(&self, ns: &str, key: &str, value: Value) -> Result<()>;
    async fn delete(&self, ns: &str, key: &str) -> Result<()>;
    /// Every entry of a namespace, by key.
    async fn list(&self, ns: &str) -> Result<Vec<(String, Value)>>;
}

/// In-process memory, lost when the process ends.
#[derive(Default)]
pub struct MemoryStore {
    map: Mutex<BTreeMap<(String, String), Value>>,
}

#[async_trait]
impl Memory for MemoryStore {
    async fn get(&self, ns: &str, key: &str) -> Result<Option<Value>> {
        Ok(self
            .map
            .lock()
            .unwrap()
            .get(&(ns.to_owned(), key.to_owned()))
            .cloned())
    }

    async fn put(&self, ns: &str, key: &str, value: Value) -> Result<()> {
        self.map
            .lock()
            .unwrap()
            .insert((ns.to_owned(), key.to_owned()), value);
        Ok(())
    }

    async fn delete(&self, ns: &str, key: &str) -> Result<()> {
        self.map
            .lock()
            .unwrap()
            .remove(&(ns.to_owned(), key.to_owned()));
        Ok(())
    }

    async fn list(&self, ns: &str) -> Result<Vec<(String, Value)>> {
        Ok(self
            .map
            .lock()
            .unwrap()
            .iter()
            .filter(|((n, _), _)| n == ns)
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect())
    }
}

/// Memory on an item store: table `ToolMemory`, partition = namespace, sort key = key.
pub struct ItemMemory {
    store: Arc<dyn ItemStore>,
}

const TABLE: &str = "ToolMemory";

impl ItemMemory {
    /// Creates the table if needed.
    pub async fn new(store: Arc<dyn ItemStore>) -> Result<Self> {
        store
            .create_table(&TableSpec::new(TABLE))
            .await
            .map_err(unavailable)?;
        Ok(Self { store })
    }
}

fn unavailable(e: agentry_storage::Error) -> Error {
    Error::Unavailable(e.to_string())
}

#[async_trait]
impl Memory for ItemMemory {
    async fn get(&self, ns: &str, key: &str) -> Result<Option<Value>> {
        let item = self
            .store
            .get(TABLE, &Key::new(ns, key))
            .await
            .map_err(unavailable)?;
        Ok(item.and_then(|mut i| i.attributes.remove("value")))
    }

    async fn put(&self, ns: &str, key: &str, value: Value) -> Result<()> {
        let mut attrs = Attributes::new();
        attrs.insert("value".into(), value);
        self.store
            .put(TABLE, Key::new(ns, key), attrs)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn delete(&self, ns: &str, key: &str) -> Result<()> {
        self.store
            .delete(TABLE, Key::new(ns, key))
            .await
            .map_err(unavailable)
    }

    async fn list(&self, ns: &str) -> Result<Vec<(String, Value)>> {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let page = self
                .store
                .query(&Query::partition(TABLE, ns).after(cursor))
                .await
                .map_err(unavailable)?;
            for mut i in page.items {
                if let Some(v) = i.attributes.remove("value") {
                    out.push((i.key.sk, v));
                }
            }
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(out),
            }
        }
    }
}
