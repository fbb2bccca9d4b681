//! The stored execution record: the interpreter state `asl` hands back after each step, plus
//! what the engine needs beside it (which revision runs, the open task tokens, dates), and the
//! attributes the list indexes read.

use std::collections::BTreeMap;

use agentry_asl::{Execution, Status, TaskRequest};
use agentry_storage::{Attributes, Item};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::tables;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Record {
    pub execution: Execution,
    pub machine_name: String,
    pub revision: u64,
    /// The published version the execution was started through, if any.
    pub version: Option<u64>,
    /// The alias it was started through, if any.
    #[serde(default)]
    pub alias: Option<String>,
    /// `Execution::start` has been applied (a start too large for one transaction is created
    /// first and started by a queued message).
    pub started: bool,
    /// Open task tokens by task: closed when the task ends or is cancelled.
    #[serde(default)]
    pub tokens: BTreeMap<u64, String>,
    /// Timers handed out and not yet fired, by timer: their items are removed when the
    /// execution ends (a timer the interpreter dropped earlier fires harmlessly).
    #[serde(default)]
    pub timers: BTreeMap<u64, i64>,
    pub stop_ms: Option<i64>,
    /// When the execution was last redriven, and the client token that asked for it.
    #[serde(default)]
    pub redrive_ms: Option<i64>,
    #[serde(default)]
    pub redrive_token: Option<String>,
    /// The execution (and task) that started this one as a nested execution.
    #[serde(default)]
    pub parent: Option<crate::nested::ParentLink>,
    /// The `.sync` children of open tasks, by task: stopped when the task stops waiting.
    #[serde(default)]
    pub children: BTreeMap<u64, String>,
}

/// A record whose JSON is longer than this is stored in parts beside the record item (an
/// item holds 400 KB; a string attribute's JSON escaping can double its text).
const INLINE_BYTES: usize = 128 * 1024;
/// Text per part, for the same reason.
const PART_BYTES: usize = 128 * 1024;

/// Counts the bytes written to it.
pub(crate) struct ByteCount(pub usize);

impl std::io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Where a stored record's interpreter state is.
pub(crate) enum Stored {
    Inline(Box<Record>),
    /// In `parts` items under `exec#part#TAG#`.
    Parts {
        tag: String,
        parts: usize,
    },
}

impl Record {
    pub fn stored(item: &Item) -> Result<Stored> {
        let corrupt = |why: String| Error::Corrupt(format!("execution {}: {why}", item.key.pk));
        if let Some(v) = item.attributes.get("record") {
            // Read from the stored value in place: cloning a record's JSON cost more than
            // reading it.
            return Record::deserialize(v)
                .map(|r| Stored::Inline(Box::new(r)))
                .map_err(|e| corrupt(e.to_string()));
        }
        let tag = item.attributes.get("record_tag").and_then(Value::as_str);
        let parts = item.attributes.get("record_parts").and_then(Value::as_u64);
        match (tag, parts) {
            (Some(tag), Some(parts)) => Ok(Stored::Parts {
                tag: tag.to_string(),
                parts: parts as usize,
            }),
            _ => Err(corrupt("no record".into())),
        }
    }

    /// Reassembles a record from its parts' items, in key order.
    pub fn from_parts(arn: &str, parts: &[Item]) -> Result<Self> {
        let mut text = String::new();
        for p in parts {
            text.push_str(
                p.attributes
                    .get("text")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
            );
        }
        serde_json::from_str(&text)
            .map_err(|e| Error::Corrupt(format!("execution {arn}: record parts: {e}")))
    }

    /// The keys of a stored record's parts, for deleting them.
    pub fn part_keys(item: &Item) -> Vec<agentry_storage::Key> {
        match Record::stored(item) {
            Ok(Stored::Parts { tag, parts }) => (0..parts)
                .map(|i| tables::record_part(&item.key.pk, &tag, i))
                .collect(),
            _ => Vec::new(),
        }
    }

    pub fn arn(&self) -> &str {
        &self.execution.info.execution_arn
    }

    /// The input exactly as given: StartExecution's idempotency compares it.
    pub fn input_text(&self) -> &str {
        self.execution.input_text.as_deref().unwrap_or_default()
    }

    pub fn status(&self) -> Status {
        self.execution.status
    }

    /// The record item's attributes, and the part items when the record is too long for it.
    pub fn to_items(&self) -> Result<(Attributes, Vec<(agentry_storage::Key, Attributes)>)> {
        let machine_arn = &self.execution.info.state_machine_arn;
        let status = self.status().as_str();
        let listed = format!(
            "{:016}#{}",
            self.execution.info.start_time_ms.max(0),
            self.execution.info.name
        );
        let mut attrs = crate::obj(json!({
            "machine_arn": machine_arn,
            "machine_status": format!("{machine_arn}#{status}"),
            "listed": listed,
            "status": status,
        }));
        let mut counter = ByteCount(0);
        serde_json::to_writer(&mut counter, self).map_err(|e| Error::Corrupt(e.to_string()))?;
        if counter.0 <= INLINE_BYTES {
            let value = serde_json::to_value(self).map_err(|e| Error::Corrupt(e.to_string()))?;
            attrs.insert("record".into(), value);
            return Ok((attrs, Vec::new()));
        }
        let text = serde_json::to_string(self).map_err(|e| Error::Corrupt(e.to_string()))?;
        // A fresh tag per write: the parts of the record being replaced stay readable until
        // the transaction that writes these deletes them.
        let tag = uuid::Uuid::new_v4().simple().to_string();
        let mut parts = Vec::new();
        let mut rest = text.as_str();
        while !rest.is_empty() {
            let mut end = rest.len().min(PART_BYTES);
            while !rest.is_char_boundary(end) {
                end -= 1;
            }
            let key = tables::record_part(self.arn(), &tag, parts.len());
            parts.push((key, crate::obj(json!({"text": &rest[..end]}))));
            rest = &rest[end..];
        }
        attrs.insert("record_tag".into(), json!(tag));
        attrs.insert("record_parts".into(), json!(parts.len()));
        Ok((attrs, parts))
    }
}

/// Work a committed step still has to hand out, kept in the outbox until it is.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Dispatch {
    /// Store the token before the task that carries it is invoked.
    OpenToken {
        token: String,
        task: u64,
    },
    CloseToken {
        token: String,
        task: u64,
    },
    Timer {
        timer: u64,
        at_ms: i64,
    },
    DeleteTimer {
        timer: u64,
        at_ms: i64,
    },
    Invoke(Box<TaskRequest>),
    /// Advance the execution through the queue (a start too large for one transaction).
    Work(crate::step::Work),
    /// Advance another execution: a parent's task its child ended, a child its parent stops.
    Notify {
        execution: String,
        work: crate::step::Work,
    },
}

/// A message on the work queue: advance this execution.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct WorkMessage {
    pub execution: String,
    pub work: crate::step::Work,
}

/// A message on the task queue: invoke this task.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct TaskMessage {
    pub execution: String,
    pub request: TaskRequest,
}

pub(crate) fn value_text(v: &Option<Value>) -> Option<String> {
    v.as_ref().map(Value::to_string)
}
