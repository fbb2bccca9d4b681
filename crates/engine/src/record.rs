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
    /// The input exactly as given: StartExecution's idempotency compares it.
    pub input_text: String,
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
}

impl Record {
    pub fn from_item(item: &Item) -> Result<Self> {
        let v = item
            .attributes
            .get("record")
            .ok_or_else(|| Error::Corrupt(format!("execution {}: no record", item.key.pk)))?;
        serde_json::from_value(v.clone())
            .map_err(|e| Error::Corrupt(format!("execution {}: {e}", item.key.pk)))
    }

    pub fn arn(&self) -> &str {
        &self.execution.info.execution_arn
    }

    pub fn status(&self) -> Status {
        self.execution.status
    }

    pub fn to_attributes(&self) -> Attributes {
        let machine_arn = tables::state_machine_arn(&self.machine_name);
        let status = self.status().as_str();
        let listed = format!(
            "{:016}#{}",
            self.execution.info.start_time_ms.max(0),
            self.execution.info.name
        );
        crate::obj(json!({
            "record": self,
            "machine_arn": machine_arn,
            "machine_status": format!("{machine_arn}#{status}"),
            "listed": listed,
            "status": status,
        }))
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
