//! DynamoDB's limits and rules, checked before any backend is asked, so every backend rejects
//! the same input with the same message; and the encodings of sort values and cursors.

use std::collections::HashSet;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::item::{Attributes, Key, Query, SortRange, TableSpec, Write};

/// Largest item (keys plus attributes as JSON), as DynamoDB's 400 KB.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;
/// Most writes in one transaction, as DynamoDB's TransactWriteItems.
pub const MAX_TRANSACTION_WRITES: usize = 100;
pub const MAX_PARTITION_KEY_BYTES: usize = 2048;
pub const MAX_SORT_KEY_BYTES: usize = 1024;
pub const MAX_INDEXES: usize = 20;
pub const DEFAULT_QUERY_LIMIT: u32 = 100;
pub const MAX_QUERY_LIMIT: u32 = 1000;
/// How long changes stay in a stream, as DynamoDB Streams' 24 hours.
pub const STREAM_RETENTION_SECONDS: i64 = 24 * 3600;

/// Table and index names: 3 to 255 characters of `[A-Za-z0-9_.-]`.
pub fn check_name(field: &str, name: &str) -> Result<()> {
    if name.len() < 3 || name.len() > 255 {
        return Err(Error::invalid(
            field,
            format!("{name:?} must be 3 to 255 characters long"),
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(Error::invalid(
            field,
            format!("{name:?} contains {c:?}; only letters, digits, '_', '.' and '-' are allowed"),
        ));
    }
    Ok(())
}

pub fn check_spec(spec: &TableSpec) -> Result<()> {
    check_name("table name", &spec.name)?;
    if let Some(ttl) = &spec.ttl_attribute {
        check_attribute_name("ttl_attribute", ttl)?;
    }
    if spec.indexes.len() > MAX_INDEXES {
        return Err(Error::invalid(
            "indexes",
            format!(
                "table {:?} declares {} indexes; at most {MAX_INDEXES}",
                spec.name,
                spec.indexes.len()
            ),
        ));
    }
    let mut seen = HashSet::new();
    for index in &spec.indexes {
        check_name("index name", &index.name)?;
        if !seen.insert(&index.name) {
            return Err(Error::invalid(
                "index name",
                format!(
                    "{:?} is declared twice in table {:?}",
                    index.name, spec.name
                ),
            ));
        }
        check_attribute_name("partition_attribute", &index.partition_attribute)?;
        check_attribute_name("sort_attribute", &index.sort_attribute)?;
    }
    Ok(())
}

fn check_attribute_name(field: &str, name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 255 {
        return Err(Error::invalid(
            field,
            format!("{name:?} must be 1 to 255 bytes long"),
        ));
    }
    Ok(())
}

pub fn check_key(table: &str, key: &Key) -> Result<()> {
    for (field, value, max) in [
        ("partition key", &key.pk, MAX_PARTITION_KEY_BYTES),
        ("sort key", &key.sk, MAX_SORT_KEY_BYTES),
    ] {
        if value.is_empty() {
            return Err(Error::invalid(
                field,
                format!("empty in table {table:?}; keys must be non-empty"),
            ));
        }
        if value.len() > max {
            return Err(Error::invalid(
                field,
                format!("{} bytes in table {table:?}; at most {max}", value.len()),
            ));
        }
        if value.contains('\0') {
            return Err(Error::invalid(
                field,
                format!("{value:?} in table {table:?} contains a NUL character"),
            ));
        }
    }
    Ok(())
}

/// Checks a transaction's shape before it reaches a backend, and returns each put's
/// attributes as the JSON text the backends store (`None` for other writes): serialized once,
/// here, on the caller's thread rather than in a backend's writer.
/// An item's size, counted against [`MAX_ITEM_BYTES`], is its keys plus its attributes as JSON.
pub fn check_transaction(writes: &[Write]) -> Result<Vec<Option<String>>> {
    if writes.is_empty() {
        return Err(Error::invalid("transaction", "no writes"));
    }
    if writes.len() > MAX_TRANSACTION_WRITES {
        return Err(Error::invalid(
            "transaction",
            format!("{} writes; at most {MAX_TRANSACTION_WRITES}", writes.len()),
        ));
    }
    let mut seen = HashSet::new();
    let mut texts = Vec::with_capacity(writes.len());
    for (i, w) in writes.iter().enumerate() {
        check_name("table name", w.table())?;
        check_key(w.table(), w.key())?;
        if !seen.insert((w.table(), w.key())) {
            return Err(Error::invalid(
                "transaction",
                format!(
                    "write {i} touches item (pk {:?}, sk {:?}) in table {:?} again; one write per item",
                    w.key().pk,
                    w.key().sk,
                    w.table()
                ),
            ));
        }
        if let Write::Put {
            key, attributes, ..
        } = w
        {
            let json = serde_json::to_string(attributes)
                .map_err(|e| Error::invalid("attributes", e.to_string()))?;
            let size = key.pk.len() + key.sk.len() + json.len();
            if size > MAX_ITEM_BYTES {
                return Err(Error::invalid(
                    "item",
                    format!(
                        "item (pk {:?}, sk {:?}) in table {:?} is {size} bytes; at most {MAX_ITEM_BYTES}",
                        key.pk,
                        key.sk,
                        w.table()
                    ),
                ));
            }
            texts.push(Some(json));
        } else {
            texts.push(None);
        }
    }
    Ok(texts)
}

/// Checks a query against its table and returns the page size to use.
pub fn check_query(query: &Query, spec: &TableSpec) -> Result<u32> {
    if query.partition.is_empty()
        || query.partition.len() > MAX_PARTITION_KEY_BYTES
        || query.partition.contains('\0')
    {
        return Err(Error::invalid(
            "partition",
            format!(
                "query of table {:?} needs a partition of 1 to {MAX_PARTITION_KEY_BYTES} bytes without NUL characters",
                spec.name
            ),
        ));
    }
    if let Some(index) = &query.index
        && spec.index(index).is_none()
    {
        return Err(Error::NotFound {
            what: format!("index {index:?} of table {:?}", spec.name),
        });
    }
    if let Some(SortRange::Between(a, b)) = &query.range
        && a > b
    {
        return Err(Error::invalid(
            "range",
            format!("lower bound {a:?} is above upper bound {b:?}"),
        ));
    }
    match query.limit {
        None => Ok(DEFAULT_QUERY_LIMIT),
        Some(0) => Err(Error::invalid("limit", "must be at least 1")),
        Some(n) if n > MAX_QUERY_LIMIT => Err(Error::invalid(
            "limit",
            format!("{n}; at most {MAX_QUERY_LIMIT}"),
        )),
        Some(n) => Ok(n),
    }
}

/// The expiry (epoch seconds) an item's TTL attribute sets, if the table has one and the
/// attribute holds a number; anything else means the item never expires, as in DynamoDB.
pub fn expires_at(spec: &TableSpec, attributes: &Attributes) -> Option<i64> {
    let value = attributes.get(spec.ttl_attribute.as_deref()?)?;
    value.as_i64().or_else(|| value.as_f64().map(|f| f as i64))
}

/// Encodes an index sort attribute so that byte order is the value's order: strings as they
/// are, integers as 20 digits after shifting by 2^63 (so negative numbers sort first). Use it
/// to build [`SortRange`] bounds for indexes whose sort attribute holds integers.
pub fn sort_value(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => n
            .as_i64()
            .map(|i| format!("{:020}", (i as u64) ^ (1 << 63))),
        _ => None,
    }
}

/// One entry of an item in an index: (index name, index partition, index sort).
pub type IndexEntry = (String, String, String);

/// The index entries an item has (sparse: an item lacking an index's attributes has none).
pub fn index_entries(spec: &TableSpec, attributes: &Attributes) -> Vec<IndexEntry> {
    spec.indexes
        .iter()
        .filter_map(|ix| {
            let partition = attributes
                .get(&ix.partition_attribute)?
                .as_str()
                .filter(|s| !s.is_empty())?;
            let sort = sort_value(attributes.get(&ix.sort_attribute)?)?;
            Some((ix.name.clone(), partition.to_owned(), sort))
        })
        .collect()
}

/// Index key values obey the limits of item keys (as DynamoDB's index keys do); a write that
/// would break them is refused rather than left out of the index silently.
pub fn check_index_entries(
    spec: &TableSpec,
    table: &str,
    key: &Key,
    entries: &[IndexEntry],
) -> Result<()> {
    for (name, ipk, isk) in entries {
        let ix = spec
            .index(name)
            .expect("entries come from the table's indexes");
        for (attribute, value, max) in [
            (&ix.partition_attribute, ipk, MAX_PARTITION_KEY_BYTES),
            (&ix.sort_attribute, isk, MAX_SORT_KEY_BYTES),
        ] {
            let problem = if value.len() > max {
                format!("is {} bytes; at most {max}", value.len())
            } else if value.contains('\0') {
                "contains a NUL character".to_owned()
            } else {
                continue;
            };
            return Err(Error::invalid(
                "index key",
                format!(
                    "attribute {attribute:?} of item (pk {:?}, sk {:?}) in table {table:?}, a key of index {name:?}, {problem}",
                    key.pk, key.sk
                ),
            ));
        }
    }
    Ok(())
}

/// The smallest string above every string starting with `prefix`, or `None` if there is none.
/// Byte order of UTF-8 is code point order, so incrementing the last character works.
pub fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = last as u32 + 1;
        if (0xD800..=0xDFFF).contains(&next) {
            next = 0xE000;
        }
        if let Some(c) = char::from_u32(next) {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// Where a page ended: the last item's index sort value (index queries only) and key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cursor {
    pub isk: Option<String>,
    pub pk: String,
    pub sk: String,
}

impl Cursor {
    /// Opaque to callers: hex of a small JSON document.
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        json.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn decode(s: &str) -> Result<Self> {
        let bad = || Error::invalid("cursor", "not a cursor this store returned");
        if !s.len().is_multiple_of(2) || !s.is_ascii() {
            return Err(bad());
        }
        let bytes = (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16))
            .collect::<std::result::Result<Vec<u8>, _>>()
            .map_err(|_| bad())?;
        serde_json::from_slice(&bytes).map_err(|_| bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn integers_sort_numerically_as_strings() {
        let enc = |i: i64| sort_value(&json!(i)).unwrap();
        assert!(enc(-5) < enc(-1));
        assert!(enc(-1) < enc(0));
        assert!(enc(9) < enc(10));
        assert!(enc(10) < enc(i64::MAX));
    }

    #[test]
    fn prefix_bound_is_tight() {
        assert_eq!(prefix_upper_bound("ab").as_deref(), Some("ac"));
        assert_eq!(prefix_upper_bound("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_upper_bound("\u{10FFFF}"), None);
        assert_eq!(prefix_upper_bound("\u{D7FF}").as_deref(), Some("\u{E000}"));
    }

    #[test]
    fn cursor_roundtrip_and_garbage() {
        let c = Cursor {
            isk: Some("x".into()),
            pk: "p\"".into(),
            sk: "s".into(),
        };
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        assert!(matches!(
            Cursor::decode("zz"),
            Err(Error::InvalidInput { .. })
        ));
    }

    #[test]
    fn names_follow_dynamodb() {
        assert!(check_name("table name", "Users").is_ok());
        assert!(check_name("table name", "ab").is_err());
        assert!(check_name("table name", "bad name").is_err());
    }
}
