//! The execution API, as Step Functions has it: StartExecution (idempotent by name),
//! DescribeExecution, ListExecutions, GetExecutionHistory, StopExecution, and the answers to
//! task tokens (SendTaskSuccess, SendTaskFailure, SendTaskHeartbeat).

use std::time::Duration;

use agentry_asl::{Event, Execution, ExecutionInfo, Status};
use agentry_storage::{Query, SortRange};
use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::record::{Dispatch, Record, Stored, value_text};
use crate::step::{Plan, Work};
use crate::tables::{self, EXECUTIONS};
use crate::{Engine, now_ms};

/// StartExecution's answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Started {
    pub execution_arn: String,
    pub start_date: i64,
}

/// DescribeExecution's answer (dates in epoch milliseconds).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionDescription {
    pub execution_arn: String,
    pub state_machine_arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_machine_version_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_machine_alias_arn: Option<String>,
    pub name: String,
    pub status: String,
    pub start_date: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_date: Option<i64>,
    pub input: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// Times redriven (RedriveExecution), and when last.
    pub redrive_count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redrive_date: Option<i64>,
    /// `REDRIVABLE` or `NOT_REDRIVABLE`, and why not.
    pub redrive_status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redrive_status_reason: Option<String>,
}

/// How long after it ended an execution may be redriven, as on AWS: 14 days.
pub const REDRIVE_PERIOD_MS: i64 = 14 * 24 * 3600 * 1000;

/// Why an execution cannot be redriven (AWS's `redriveStatusReason`), or `None`.
fn redrive_blocker(record: &Record, now: i64) -> Option<&'static str> {
    if let Some(reason) = record.execution.redrive_blocker() {
        return Some(reason);
    }
    if !record.started {
        return Some("Execution is RUNNING and cannot be redriven");
    }
    if record
        .stop_ms
        .is_some_and(|stop| now - stop > REDRIVE_PERIOD_MS)
    {
        return Some("Execution redrivable period exceeded");
    }
    None
}

impl ExecutionDescription {
    /// The output parsed, for callers that want JSON.
    pub fn output_json(&self) -> Option<Value> {
        self.output
            .as_deref()
            .and_then(|o| serde_json::from_str(o).ok())
    }
}

/// One page of a listing or history; `next_token` continues it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub items: Vec<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

pub(crate) fn describe(record: &Record) -> ExecutionDescription {
    let ex = &record.execution;
    let machine_arn = record.execution.info.state_machine_arn.clone();
    ExecutionDescription {
        execution_arn: ex.info.execution_arn.clone(),
        state_machine_version_arn: record.version.map(|v| format!("{machine_arn}:{v}")),
        state_machine_alias_arn: record.alias.as_ref().map(|a| format!("{machine_arn}:{a}")),
        state_machine_arn: machine_arn,
        name: ex.info.name.clone(),
        status: ex.status.as_str().to_string(),
        start_date: ex.info.start_time_ms,
        stop_date: record.stop_ms,
        input: record.input_text().to_string(),
        output: value_text(&ex.output),
        error: ex.error.clone(),
        cause: ex.cause.clone(),
        redrive_count: ex.info.redrive_count,
        redrive_date: record.redrive_ms,
        redrive_status: match redrive_blocker(record, now_ms()) {
            None => "REDRIVABLE",
            Some(_) => "NOT_REDRIVABLE",
        }
        .to_string(),
        redrive_status_reason: redrive_blocker(record, now_ms()).map(str::to_string),
    }
}

/// An answer the execution did not take: its task ended between the token lookup and now.
fn answered(applied: Option<Record>, token: &str) -> Result<()> {
    match applied {
        Some(_) => Ok(()),
        None => Err(Error::TaskTimedOut(format!(
            "the task of token {token:?} is no longer waiting"
        ))),
    }
}

/// History items read from the store at most at a time while filling a page (each holds one
/// event or more, so a page of `n` events needs at most `n + 1` items to know if more follow).
const HISTORY_ITEMS_PER_READ: usize = 100;

/// The event id a GetExecutionHistory token names.
fn history_token(token: &str) -> Result<u64> {
    token
        .strip_prefix('h')
        .and_then(|id| id.parse().ok())
        .filter(|id| *id <= tables::MAX_EVENT_ID)
        .ok_or_else(|| Error::InvalidPaginationToken(format!("not a history token: {token:?}")))
}

/// The events a history item holds, in order: several (`events`), or one (`event`, as items
/// written before events were packed hold).
fn stored_events(mut item: agentry_storage::Item) -> Vec<Value> {
    match item.attributes.remove("events") {
        Some(Value::Array(events)) => events,
        _ => item.attributes.remove("event").into_iter().collect(),
    }
}

impl Engine {
    /// StartExecution. A name already used by a running execution with the same input answers
    /// with that execution; with other input, or when that execution has ended,
    /// `ExecutionAlreadyExists`. Without a name, a random one is given.
    pub async fn start_execution(
        &self,
        machine_arn: &str,
        name: Option<&str>,
        input: &str,
    ) -> Result<Started> {
        self.start_execution_as(machine_arn, name, input, None)
            .await
    }

    /// StartExecution of a nested execution, linked to the task that started it.
    pub(crate) async fn start_execution_as(
        &self,
        machine_arn: &str,
        name: Option<&str>,
        input: &str,
        parent: Option<crate::nested::ParentLink>,
    ) -> Result<Started> {
        let (machine, revision, version, alias, kind) = self.resolve_machine(machine_arn).await?;
        let name = match name {
            Some(n) => tables::check_name(n)?,
            None => uuid::Uuid::new_v4().to_string(),
        };
        let input_value =
            agentry_asl::exec::parse_input(input).map_err(|e| Error::InvalidExecutionInput {
                code: e.code.to_string(),
                message: e.message.to_string(),
            })?;
        if kind == "EXPRESS" {
            return self
                .start_express(&machine, revision, Some(&name), input, parent)
                .await;
        }
        let now = now_ms();
        let info = ExecutionInfo::new(
            &self.scope.region,
            &self.scope.account,
            &machine,
            &name,
            now,
        );
        let machine_arn = self.scope.state_machine_arn(&machine);
        let mut info = info;
        info.state_machine_version_arn = version.map(|v| format!("{machine_arn}:{v}"));
        info.state_machine_alias_arn = alias.as_ref().map(|a| format!("{machine_arn}:{a}"));
        let arn = info.execution_arn.clone();
        let mut record = Record {
            execution: Execution::new(info),
            machine_name: machine,
            revision,
            version,
            alias,
            started: false,
            tokens: Default::default(),
            timers: Default::default(),
            stop_ms: None,
            redrive_ms: None,
            redrive_token: None,
            parent,
            children: Default::default(),
        };
        record.execution.input_text = Some(input.to_string());
        let _ = input_value;
        // Usually the start and its first states commit with the record in one transaction; a
        // start with more events than that holds is created first and started through the queue.
        let (plan, deferred) = match self.plan(record.clone(), &[Work::Start]).await? {
            Some(plan) if crate::step::fits_one_transaction(&plan) => (plan, None),
            started => (
                Plan {
                    record,
                    events: Vec::new(),
                    outbox: vec![Dispatch::Work(Work::Start)],
                },
                started,
            ),
        };
        let deferred_start = plan.events.is_empty()
            && plan
                .outbox
                .iter()
                .any(|d| matches!(d, Dispatch::Work(Work::Start)));
        match self.commit(None, plan).await? {
            Some(_) => {
                if deferred_start {
                    // Start it here rather than wait for the queue; the queued start, which
                    // covers a crash right now, then finds nothing to do.
                    self.start_created(&arn, deferred).await?;
                }
                Ok(Started {
                    execution_arn: arn,
                    start_date: now,
                })
            }
            None => {
                let existing = self.load(&arn).await?;
                if existing.input_text() == input && existing.status() == Status::Running {
                    Ok(Started {
                        execution_arn: arn,
                        start_date: existing.execution.info.start_time_ms,
                    })
                } else {
                    Err(Error::ExecutionAlreadyExists(arn))
                }
            }
        }
    }

    /// Applies the start of an execution just created unstarted, committing `planned` (the
    /// start as planned before the execution was created) when the record is still the one
    /// created, rather than running the interpreter again.
    async fn start_created(&self, arn: &str, planned: Option<Plan>) -> Result<()> {
        let Some(planned) = planned else {
            self.advance(arn, &Work::Start).await?;
            return Ok(());
        };
        let lock = self.inner.execution_lock(arn);
        let turn = lock.lock().await;
        let item = self
            .inner
            .store
            .get(EXECUTIONS, &tables::execution(arn))
            .await;
        // Anything but the record as created (the queued start taken by another node, say)
        // goes the usual way.
        let committed = match item {
            Ok(Some(item)) if matches!(Record::stored(&item), Ok(Stored::Inline(r)) if !r.started) => {
                self.commit(Some(&item), planned).await?.is_some()
            }
            _ => false,
        };
        drop(turn);
        self.inner.release_lock(arn, lock);
        if !committed {
            self.advance(arn, &Work::Start).await?;
        }
        Ok(())
    }

    pub(crate) async fn load(&self, arn: &str) -> Result<Record> {
        for _ in 0..100 {
            let item = self
                .inner
                .store
                .get(EXECUTIONS, &tables::execution(arn))
                .await?
                .ok_or_else(|| Error::ExecutionDoesNotExist(arn.to_string()))?;
            // A long record's parts may be replaced between the two reads: read again.
            if let Some(record) = self.record_of(&item).await? {
                return Ok(record);
            }
        }
        Err(Error::Contended(arn.to_string()))
    }

    /// DescribeExecution.
    pub async fn describe_execution(&self, arn: &str) -> Result<ExecutionDescription> {
        self.scope.execution(arn)?;
        let record = self.load(arn).await?;
        let mut d = describe(&record);
        if d.redrive_status == "REDRIVABLE" {
            let machine_arn = self.scope.state_machine_arn(&record.machine_name);
            if let Err(Error::StateMachineDeleting(_) | Error::StateMachineDoesNotExist(_)) = self
                .machine_head(&record.machine_name, &machine_arn, true)
                .await
            {
                d.redrive_status = "NOT_REDRIVABLE".into();
                d.redrive_status_reason = Some("State machine is in DELETING status".into());
            }
        }
        Ok(d)
    }

    /// ListExecutions of a state machine, newest first, optionally only those of one status
    /// (`RUNNING`, `SUCCEEDED`, `FAILED`, `TIMED_OUT`, `ABORTED`); given a version or alias
    /// ARN, only the executions started through it. `max_results` 1 to 1000 (default 100).
    pub async fn list_executions(
        &self,
        machine_arn: &str,
        status: Option<&str>,
        max_results: Option<u32>,
        next_token: Option<String>,
    ) -> Result<Page<ExecutionDescription>> {
        let (name, qualifier) = self.scope.machine(machine_arn)?;
        let arn = self.scope.state_machine_arn(&name);
        // A version or alias ARN lists the executions started through it.
        match &qualifier {
            tables::Qualifier::Latest => {}
            tables::Qualifier::Version(_) => {
                self.describe_state_machine(machine_arn).await?;
            }
            tables::Qualifier::Alias(_) => {
                self.describe_state_machine_alias(machine_arn).await?;
            }
        }
        if self.describe_state_machine(&arn).await?.kind == "EXPRESS" {
            return Err(Error::StateMachineTypeNotSupported(
                "This operation is not supported by this type of state machine".into(),
            ));
        }
        let q = match status {
            Some(s) => Query::index(EXECUTIONS, tables::BY_MACHINE_STATUS, format!("{arn}#{s}")),
            None => Query::index(EXECUTIONS, tables::BY_MACHINE, arn),
        };
        let q = q
            .descending()
            .limit(max_results.unwrap_or(100).clamp(1, 1000))
            .after(next_token);
        let page = self.inner.store.query(&q).await.map_err(|e| match e {
            agentry_storage::Error::InvalidInput { message, .. } => {
                Error::InvalidPaginationToken(message)
            }
            e => e.into(),
        })?;
        let mut items = Vec::with_capacity(page.items.len());
        for item in &page.items {
            let record = match self.record_of(item).await? {
                Some(r) => r,
                None => self.load(&item.key.pk).await?,
            };
            let through = match &qualifier {
                tables::Qualifier::Latest => true,
                tables::Qualifier::Version(v) => record.version == Some(*v),
                tables::Qualifier::Alias(a) => record.alias.as_deref() == Some(a.as_str()),
            };
            if through {
                items.push(describe(&record));
            }
        }
        // Filtered pages may hold fewer than `max_results`; the token goes on all the same.
        Ok(Page {
            items,
            next_token: page.cursor,
        })
    }

    /// GetExecutionHistory: events as AWS prints them, oldest first unless `reverse`.
    /// `max_results` 1 to 1000 (default 100).
    pub async fn get_execution_history(
        &self,
        arn: &str,
        max_results: Option<u32>,
        reverse: bool,
        next_token: Option<String>,
    ) -> Result<Page<Value>> {
        self.scope.execution(arn)?;
        self.load(arn).await?;
        let limit = max_results.unwrap_or(100).clamp(1, 1000) as usize;
        // The token names the last event given: the next page goes on just after it (just
        // before it, in reverse).
        let given = next_token.as_deref().map(history_token).transpose()?;
        let store = &self.inner.store;
        let range = if reverse {
            // Items are keyed by their first event: those at or below the token's event.
            let top = given.map_or(tables::MAX_EVENT_ID, |id| id.saturating_sub(1));
            SortRange::Between(tables::event(arn, 0).sk, tables::event(arn, top).sk)
        } else {
            // From the item holding the event after the token's.
            let mut from = tables::event(arn, 0).sk;
            if let Some(id) = given {
                let holder = Query::partition(EXECUTIONS, arn)
                    .range(SortRange::Between(
                        from.clone(),
                        tables::event(arn, id + 1).sk,
                    ))
                    .descending()
                    .limit(1);
                if let Some(item) = store.query(&holder).await?.items.into_iter().next() {
                    from = item.key.sk;
                }
            }
            SortRange::Between(from, tables::event(arn, tables::MAX_EVENT_ID).sk)
        };
        let mut items: Vec<Value> = Vec::new();
        // The id of the last event taken (or the token's): events go strictly on from it.
        let mut last = given;
        let mut cursor = None;
        loop {
            let mut q = Query::partition(EXECUTIONS, arn)
                .range(range.clone())
                .limit((limit + 1 - items.len().min(limit)).min(HISTORY_ITEMS_PER_READ) as u32)
                .after(cursor);
            if reverse {
                q = q.descending();
            }
            let page = store.query(&q).await.map_err(|e| match e {
                agentry_storage::Error::InvalidInput { message, .. } => {
                    Error::InvalidPaginationToken(message)
                }
                e => e.into(),
            })?;
            for item in page.items {
                let mut events = stored_events(item);
                if reverse {
                    events.reverse();
                }
                for e in events {
                    let id = e.get("id").and_then(Value::as_u64).unwrap_or(0);
                    let next = match last {
                        None => true,
                        Some(l) if reverse => id < l,
                        Some(l) => id > l,
                    };
                    if next {
                        last = Some(id);
                        items.push(e);
                    }
                }
            }
            cursor = page.cursor;
            if items.len() > limit || cursor.is_none() {
                break;
            }
        }
        let next_token = (items.len() > limit).then(|| {
            items.truncate(limit);
            let id = items[limit - 1].get("id").and_then(Value::as_u64);
            format!("h{}", id.unwrap_or(0))
        });
        Ok(Page { items, next_token })
    }

    /// Every history event, oldest first (for small histories and tests).
    pub async fn history(&self, arn: &str) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .get_execution_history(arn, Some(1000), false, token)
                .await?;
            out.extend(page.items);
            match page.next_token {
                Some(t) => token = Some(t),
                None => return Ok(out),
            }
        }
    }

    /// StopExecution: the execution ends ABORTED (if still running); returns the stop date.
    pub async fn stop_execution(
        &self,
        arn: &str,
        error: Option<&str>,
        cause: Option<&str>,
    ) -> Result<i64> {
        self.scope.execution(arn)?;
        let event = Event::Stop {
            error: error.map(str::to_string),
            cause: cause.map(str::to_string),
        };
        self.advance(arn, &Work::Event(event)).await?;
        let record = self.load(arn).await?;
        Ok(record.stop_ms.unwrap_or_else(now_ms))
    }

    /// RedriveExecution: a FAILED, TIMED_OUT or ABORTED execution (ended within the last 14
    /// days, its machine not being deleted) runs again from the top-level state that did not
    /// finish, with that state's input; see [`agentry_asl::Execution::redrive`]. Returns the
    /// redrive date. A repeated call with the same `client_token` answers with the same date.
    pub async fn redrive_execution(&self, arn: &str, client_token: Option<&str>) -> Result<i64> {
        self.scope.execution(arn)?;
        let record = self.load(arn).await?;
        if let (Some(token), Some(date)) = (client_token, record.redrive_ms)
            && record.redrive_token.as_deref() == Some(token)
        {
            return Ok(date);
        }
        let not_redrivable = |reason: &str| {
            Error::ExecutionNotRedrivable(format!("Execution {arn} cannot be redriven: {reason}"))
        };
        if let Some(reason) = redrive_blocker(&record, now_ms()) {
            return Err(not_redrivable(reason));
        }
        let machine_arn = self.scope.state_machine_arn(&record.machine_name);
        match self
            .machine_head(&record.machine_name, &machine_arn, true)
            .await
        {
            Ok(_) => {}
            Err(Error::StateMachineDeleting(_) | Error::StateMachineDoesNotExist(_)) => {
                return Err(not_redrivable("State machine is in DELETING status"));
            }
            Err(e) => return Err(e),
        }
        let work = Work::Redrive {
            client_token: client_token.map(str::to_string),
        };
        match self.advance(arn, &work).await? {
            Some(record) => Ok(record.redrive_ms.unwrap_or_else(now_ms)),
            // Redriven by a concurrent call meanwhile.
            None => Err(not_redrivable(
                "Execution is RUNNING and cannot be redriven",
            )),
        }
    }

    /// Finds the open task a token names.
    async fn token_task(&self, token: &str) -> Result<(String, u64)> {
        let item = self
            .inner
            .store
            .get(EXECUTIONS, &tables::token(token))
            .await?
            .ok_or_else(|| Error::InvalidToken(format!("task token {token:?} is not known")))?;
        let a = &item.attributes;
        if a.get("closed").and_then(Value::as_bool) == Some(true) {
            return Err(Error::TaskTimedOut(format!(
                "the task of token {token:?} is no longer waiting"
            )));
        }
        let arn = a
            .get("execution")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if !self.scope.owns_execution(&arn) {
            return Err(Error::InvalidToken(format!(
                "task token {token:?} is not known"
            )));
        }
        let task = a.get("task").and_then(Value::as_u64).unwrap_or_default();
        Ok((arn, task))
    }

    /// SendTaskSuccess: the waiting task succeeds with `output` (JSON text).
    pub async fn send_task_success(&self, token: &str, output: &str) -> Result<()> {
        let output: Value = serde_json::from_str(output)
            .map_err(|e| Error::InvalidOutput(format!("task output is not JSON: {e}")))?;
        let (arn, task) = self.token_task(token).await?;
        let applied = self
            .advance(&arn, &Work::Event(Event::TaskSucceeded { task, output }))
            .await?;
        answered(applied, token)
    }

    /// SendTaskFailure: the waiting task fails with `error` and `cause`.
    pub async fn send_task_failure(
        &self,
        token: &str,
        error: Option<&str>,
        cause: Option<&str>,
    ) -> Result<()> {
        let (arn, task) = self.token_task(token).await?;
        let event = Event::TaskFailed {
            task,
            error: error.map(str::to_string),
            cause: cause.map(str::to_string),
        };
        let applied = self.advance(&arn, &Work::Event(event)).await?;
        answered(applied, token)
    }

    /// SendTaskHeartbeat: the task's HeartbeatSeconds deadline starts again.
    pub async fn send_task_heartbeat(&self, token: &str) -> Result<()> {
        let (arn, task) = self.token_task(token).await?;
        // A task without HeartbeatSeconds takes heartbeats without a step to record.
        self.advance(&arn, &Work::Event(Event::TaskHeartbeat { task }))
            .await?;
        Ok(())
    }

    /// Waits until the execution has ended (on any node), or `timeout` passes; returns its
    /// description either way.
    pub async fn wait_for_execution(
        &self,
        arn: &str,
        timeout: Duration,
    ) -> Result<ExecutionDescription> {
        let deadline = tokio::time::Instant::now() + timeout;
        let watch = self.watch_execution(arn);
        loop {
            let changed = watch.committed();
            let d = self.describe_execution(arn).await?;
            if d.status != "RUNNING" || tokio::time::Instant::now() >= deadline {
                return Ok(d);
            }
            // Steps committed here wake the wait at once; steps of other nodes within 50 ms.
            tokio::select! {
                _ = changed => {}
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(stop_ms: i64) -> Record {
        let def = agentry_asl::StateMachine::from_value(&serde_json::json!({"StartAt": "F",
            "States": {"F": {"Type": "Fail", "Error": "E"}}}))
        .unwrap();
        let mut ex = Execution::new(ExecutionInfo::local("m", "e", 0));
        ex.start(
            &def,
            serde_json::json!({}),
            &mut agentry_asl::FixedHost::new(0, 1),
        );
        assert_eq!(ex.status, Status::Failed);
        Record {
            execution: ex,
            machine_name: "m".into(),
            revision: 1,
            version: None,
            alias: None,
            started: true,
            tokens: Default::default(),
            timers: Default::default(),
            stop_ms: Some(stop_ms),
            redrive_ms: None,
            redrive_token: None,
            parent: None,
            children: Default::default(),
        }
    }

    #[test]
    fn executions_are_redrivable_for_fourteen_days_after_they_end() {
        let stopped = 1_000_000;
        let record = failed(stopped);
        assert_eq!(redrive_blocker(&record, stopped + REDRIVE_PERIOD_MS), None);
        assert_eq!(
            redrive_blocker(&record, stopped + REDRIVE_PERIOD_MS + 1),
            Some("Execution redrivable period exceeded")
        );
        let d = describe(&record);
        assert_eq!(d.redrive_status, "NOT_REDRIVABLE");
        assert_eq!(
            d.redrive_status_reason.as_deref(),
            Some("Execution redrivable period exceeded")
        );
    }
}
