//! What a write does to an item, decided the same way by every SQL backend: conditions checked
//! against the stored row, the new version, TTL and index entries, and the change record. The
//! backends only read the row and carry out the [`Effect`].

use serde_json::Value;

use crate::error::{Error, ItemRef, Result};
use crate::item::{Attributes, ChangeKind, Condition, Item, Key, TableSpec, Write};
use crate::rules::{self, IndexEntry};

/// An item row as stored, expired or not.
#[derive(Debug, Clone)]
pub struct Stored {
    pub version: u64,
    pub attributes: Attributes,
    pub expires_at: Option<i64>,
}

impl Stored {
    pub fn live(&self, now: i64) -> bool {
        self.expires_at.is_none_or(|t| t > now)
    }

    pub fn into_item(self, key: Key) -> Item {
        Item {
            key,
            attributes: self.attributes,
            version: self.version,
        }
    }
}

/// The row change a write makes.
#[derive(Debug)]
pub enum Effect<'a> {
    /// Insert or replace the row.
    Upsert {
        version: u64,
        /// As [`rules::check_transaction`] serialized them.
        attributes_json: &'a str,
        expires_at: Option<i64>,
        indexes: Vec<IndexEntry>,
    },
    /// Remove the row if any (an expired row is removed too).
    Remove,
    /// A condition check: nothing to write.
    Nothing,
}

/// A write's outcome: the row change and, for a table with a stream and a visible change, the
/// change to record (its sequence is assigned by the backend).
#[derive(Debug)]
pub struct Planned<'a> {
    pub effect: Effect<'a>,
    pub change: Option<(ChangeKind, Option<Item>, Option<Item>)>,
}

impl Planned<'_> {
    /// What `transact` returns for this write: the version after a put.
    pub fn version(&self) -> Option<u64> {
        match &self.effect {
            Effect::Upsert { version, .. } => Some(*version),
            _ => None,
        }
    }
}

/// Decides the effect of write `index` of a transaction given the stored row; `json` is the
/// put's attributes as [`rules::check_transaction`] serialized them.
pub fn plan<'a>(
    index: usize,
    write: &Write,
    json: Option<&'a str>,
    spec: &TableSpec,
    stored: Option<Stored>,
    now: i64,
) -> Result<Planned<'a>> {
    let key = write.key();
    let live = stored.filter(|s| s.live(now));
    check_condition(index, write, live.as_ref())?;
    let old = live.map(|s| s.into_item(key.clone()));
    match write {
        Write::Check { .. } => Ok(Planned {
            effect: Effect::Nothing,
            change: None,
        }),
        Write::Delete { .. } => {
            let change = match (&old, spec.stream) {
                (Some(_), true) => Some((ChangeKind::Remove, old, None)),
                _ => None,
            };
            Ok(Planned {
                effect: Effect::Remove,
                change,
            })
        }
        Write::Put { attributes, .. } => {
            let version = old.as_ref().map_or(1, |o| o.version + 1);
            let expires_at = rules::expires_at(spec, attributes);
            let indexes = rules::index_entries(spec, attributes);
            rules::check_index_entries(spec, write.table(), key, &indexes)?;
            let attributes_json = json.ok_or_else(|| {
                Error::invalid("attributes", "a put reached the backend unchecked")
            })?;
            let change = spec.stream.then(|| {
                let kind = if old.is_some() {
                    ChangeKind::Modify
                } else {
                    ChangeKind::Insert
                };
                let new = Item {
                    key: key.clone(),
                    attributes: attributes.clone(),
                    version,
                };
                (kind, old, Some(new))
            });
            Ok(Planned {
                effect: Effect::Upsert {
                    version,
                    attributes_json,
                    expires_at,
                    indexes,
                },
                change,
            })
        }
    }
}

fn check_condition(index: usize, write: &Write, live: Option<&Stored>) -> Result<()> {
    let reason = match (write.condition(), live) {
        (Condition::None, _) | (Condition::Absent, None) | (Condition::Exists, Some(_)) => {
            return Ok(());
        }
        (Condition::Version(v), Some(s)) if s.version == v => return Ok(()),
        (Condition::Absent, Some(s)) => format!("expected no item, found version {}", s.version),
        (Condition::Exists, None) => "expected the item to exist, found none".to_owned(),
        (Condition::Version(v), Some(s)) => {
            format!("expected version {v}, found version {}", s.version)
        }
        (Condition::Version(v), None) => format!("expected version {v}, found no item"),
    };
    Err(Error::ConditionFailed {
        index,
        item: ItemRef {
            table: write.table().to_owned(),
            pk: write.key().pk.clone(),
            sk: write.key().sk.clone(),
        },
        reason,
    })
}

/// A stored change image: `{"version": n, "attributes": {...}}`.
pub fn image_json(item: &Option<Item>) -> Option<String> {
    item.as_ref()
        .map(|i| serde_json::json!({"version": i.version, "attributes": i.attributes}).to_string())
}

pub fn image_from_json(key: &Key, json: Option<&str>) -> Result<Option<Item>> {
    let Some(json) = json else { return Ok(None) };
    let v: Value = serde_json::from_str(json)
        .map_err(|e| Error::Corrupt(format!("change image of {key:?}: {e}")))?;
    let version = v.get("version").and_then(Value::as_u64);
    let attributes = v.get("attributes").and_then(Value::as_object).cloned();
    match (version, attributes) {
        (Some(version), Some(attributes)) => Ok(Some(Item {
            key: key.clone(),
            attributes,
            version,
        })),
        _ => Err(Error::Corrupt(format!(
            "change image of {key:?} lacks version or attributes"
        ))),
    }
}

pub fn attributes_from_json(key: &Key, json: &str) -> Result<Attributes> {
    match serde_json::from_str(json) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(Error::Corrupt(format!(
            "attributes of {key:?} are not an object"
        ))),
        Err(e) => Err(Error::Corrupt(format!("attributes of {key:?}: {e}"))),
    }
}
