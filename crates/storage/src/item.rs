//! The vocabulary of the contract: tables, keys, items, writes, queries and changes.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// JSON object holding an item's attributes.
pub type Attributes = Map<String, Value>;

/// A table's definition. Created once; a table is never altered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    /// 3 to 255 characters of `[A-Za-z0-9_.-]`, as DynamoDB.
    pub name: String,
    /// Attribute holding the expiry time in epoch seconds (an integer). An item whose expiry
    /// is at or before the store's clock is invisible and later purged.
    #[serde(default)]
    pub ttl_attribute: Option<String>,
    /// Secondary indexes; at most 20.
    #[serde(default)]
    pub indexes: Vec<IndexSpec>,
    /// Record every committed write in the table's change stream.
    #[serde(default)]
    pub stream: bool,
}

impl TableSpec {
    pub fn new(name: impl Into<String>) -> Self {
        TableSpec {
            name: name.into(),
            ttl_attribute: None,
            indexes: Vec::new(),
            stream: false,
        }
    }

    pub fn with_ttl(mut self, attribute: impl Into<String>) -> Self {
        self.ttl_attribute = Some(attribute.into());
        self
    }

    pub fn with_index(
        mut self,
        name: impl Into<String>,
        partition_attribute: impl Into<String>,
        sort_attribute: impl Into<String>,
    ) -> Self {
        self.indexes.push(IndexSpec {
            name: name.into(),
            partition_attribute: partition_attribute.into(),
            sort_attribute: sort_attribute.into(),
        });
        self
    }

    pub fn with_stream(mut self) -> Self {
        self.stream = true;
        self
    }

    pub fn index(&self, name: &str) -> Option<&IndexSpec> {
        self.indexes.iter().find(|i| i.name == name)
    }
}

/// A secondary index, like a DynamoDB global secondary index projecting all attributes. An
/// item is in the index only while its partition attribute is a non-empty string and its sort
/// attribute a string or an integer (a sparse index); other items are left out silently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexSpec {
    pub name: String,
    pub partition_attribute: String,
    pub sort_attribute: String,
}

/// An item's primary key. Both parts are non-empty strings (partition key at most 2048 bytes,
/// sort key at most 1024, as DynamoDB).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Key {
            pk: pk.into(),
            sk: sk.into(),
        }
    }
}

/// A stored item as read back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub key: Key,
    pub attributes: Attributes,
    /// 1 when the item is created, +1 on every put; a deleted (or expired) and re-created item
    /// starts again at 1.
    pub version: u64,
}

/// What must hold for a write to take effect. An expired item counts as absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Condition {
    #[default]
    None,
    /// The item does not exist.
    Absent,
    /// The item exists, whatever its version.
    Exists,
    /// The item exists at exactly this version.
    Version(u64),
}

/// One write of a transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Create or replace the item's attributes.
    Put {
        table: String,
        key: Key,
        attributes: Attributes,
        condition: Condition,
    },
    /// Remove the item (deleting an absent item is not an error unless the condition says so).
    Delete {
        table: String,
        key: Key,
        condition: Condition,
    },
    /// Write nothing; fail the transaction unless the condition holds.
    Check {
        table: String,
        key: Key,
        condition: Condition,
    },
}

impl Write {
    pub fn put(table: impl Into<String>, key: Key, attributes: Attributes) -> Self {
        Write::Put {
            table: table.into(),
            key,
            attributes,
            condition: Condition::None,
        }
    }

    pub fn delete(table: impl Into<String>, key: Key) -> Self {
        Write::Delete {
            table: table.into(),
            key,
            condition: Condition::None,
        }
    }

    pub fn check(table: impl Into<String>, key: Key, condition: Condition) -> Self {
        Write::Check {
            table: table.into(),
            key,
            condition,
        }
    }

    /// The same write with a condition.
    pub fn when(mut self, c: Condition) -> Self {
        match &mut self {
            Write::Put { condition, .. }
            | Write::Delete { condition, .. }
            | Write::Check { condition, .. } => *condition = c,
        }
        self
    }

    pub fn table(&self) -> &str {
        match self {
            Write::Put { table, .. } | Write::Delete { table, .. } | Write::Check { table, .. } => {
                table
            }
        }
    }

    pub fn key(&self) -> &Key {
        match self {
            Write::Put { key, .. } | Write::Delete { key, .. } | Write::Check { key, .. } => key,
        }
    }

    pub fn condition(&self) -> Condition {
        match self {
            Write::Put { condition, .. }
            | Write::Delete { condition, .. }
            | Write::Check { condition, .. } => *condition,
        }
    }
}

/// Which sort keys a query selects. Bounds are compared as UTF-8 byte strings (for index sort
/// attributes holding integers, encode bounds with [`crate::sort_value`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortRange {
    /// `from <= sk <= to`.
    Between(String, String),
    /// `sk >= from`.
    From(String),
    /// `sk <= to`.
    To(String),
    /// `sk` starts with the prefix (DynamoDB's `begins_with`).
    Prefix(String),
}

/// A query within one partition of a table or of one of its indexes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Query {
    pub table: String,
    /// Query this index instead of the table; `partition` then is the index partition value.
    pub index: Option<String>,
    pub partition: String,
    pub range: Option<SortRange>,
    /// Largest sort key first.
    pub descending: bool,
    /// At most this many items per page (1..=1000; default 100).
    pub limit: Option<u32>,
    /// The `cursor` of the previous page, to continue after it.
    pub cursor: Option<String>,
}

impl Query {
    pub fn partition(table: impl Into<String>, partition: impl Into<String>) -> Self {
        Query {
            table: table.into(),
            partition: partition.into(),
            ..Default::default()
        }
    }

    pub fn index(
        table: impl Into<String>,
        index: impl Into<String>,
        partition: impl Into<String>,
    ) -> Self {
        Query {
            table: table.into(),
            index: Some(index.into()),
            partition: partition.into(),
            ..Default::default()
        }
    }

    pub fn range(mut self, range: SortRange) -> Self {
        self.range = Some(range);
        self
    }

    pub fn prefix(self, prefix: impl Into<String>) -> Self {
        self.range(SortRange::Prefix(prefix.into()))
    }

    pub fn descending(mut self) -> Self {
        self.descending = true;
        self
    }

    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    pub fn after(mut self, cursor: Option<String>) -> Self {
        self.cursor = cursor;
        self
    }
}

/// One page of a query.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub items: Vec<Item>,
    /// Present when more items may follow; pass it as [`Query::cursor`]. A page may hold fewer
    /// items than the limit and still have a cursor, and the page after a cursor may be empty.
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Insert,
    Modify,
    Remove,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Insert => "insert",
            ChangeKind::Modify => "modify",
            ChangeKind::Remove => "remove",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "insert" => Some(ChangeKind::Insert),
            "modify" => Some(ChangeKind::Modify),
            "remove" => Some(ChangeKind::Remove),
            _ => None,
        }
    }
}

/// One committed write in a partition's change stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Position in the partition's stream, increasing with each committed write. Consumers
    /// must not assume positions are consecutive (DynamoDB Streams' are not).
    pub sequence: u64,
    pub kind: ChangeKind,
    pub key: Key,
    /// The item before the write (absent for an insert).
    pub old: Option<Item>,
    /// The item after the write (absent for a remove).
    pub new: Option<Item>,
    /// Commit time in epoch seconds by the store's clock.
    pub at: i64,
}
