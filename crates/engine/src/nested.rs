//! Nested executions: a Task state with `Resource` `arn:aws:states:::states:startExecution`
//! starts an execution of another state machine of the same account, in each of AWS's
//! integration patterns:
//!
//! - request-response: the task's output is `{ExecutionArn, StartDate}` once the child starts;
//! - `.sync`: the task ends when the child does, with DescribeExecution's fields as its output
//!   (`Input` and `Output` as JSON text); `.sync:2` gives them parsed. A child that does not
//!   succeed fails the task with `States.TaskFailed`, that object as JSON text in the cause;
//! - `.waitForTaskToken`: the child is started and the task waits for its token, which the
//!   definition passes in the child's input (`$$.Task.Token`).
//!
//! The child is named by the task's `Name`, or else after the task's idempotency key, so a
//! re-delivered task finds the child it started rather than starting another. A `.sync` child
//! records its parent's execution and task; the step that ends it hands the parent its result
//! through the outbox (committed with that step), and a parent that stops or stops waiting
//! (task timeout, its branch cancelled) stops its `.sync` children the same way. An
//! `AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID` field in the child's input (AWS's way to link
//! the two, usually `$$.Execution.Id`) stays in the input and, when it names this parent,
//! links the child to it for request-response and callback starts too.

use agentry_asl::{Event, TaskRequest};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::Error;
use crate::record::Record;
use crate::resources::TaskError;
use crate::step::Work;
use crate::tables;
use crate::{Engine, executions};

pub(crate) const START_EXECUTION: &str = "arn:aws:states:::states:startExecution";
pub(crate) const STARTED_BY: &str = "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID";

/// How a parent waits for a child.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Pattern {
    RequestResponse,
    /// `.sync`: Input and Output as JSON text.
    Sync,
    /// `.sync:2`: Input and Output parsed.
    Sync2,
    WaitForTaskToken,
}

impl Pattern {
    pub fn of(resource: &str) -> Option<Pattern> {
        match resource.strip_prefix(START_EXECUTION)? {
            "" => Some(Pattern::RequestResponse),
            ".sync" => Some(Pattern::Sync),
            ".sync:2" => Some(Pattern::Sync2),
            ".waitForTaskToken" => Some(Pattern::WaitForTaskToken),
            _ => None,
        }
    }

    fn waits_for_child(self) -> bool {
        matches!(self, Pattern::Sync | Pattern::Sync2)
    }
}

/// The execution and task that started an execution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct ParentLink {
    pub execution: String,
    pub task: u64,
    pub pattern: Pattern,
}

/// The child a nested task starts, as far as its request tells: `(machine arn, name)`.
fn child_of(request: &TaskRequest) -> Option<(String, String)> {
    let machine = request.input.get("StateMachineArn")?.as_str()?.to_string();
    let name = match request.input.get("Name").and_then(Value::as_str) {
        Some(n) => n.to_string(),
        None => derived_name(&request.idempotency_key),
    };
    Some((machine, name))
}

/// A child's name when the task gives none: from the task's idempotency key, so every
/// delivery of one attempt names the same child (and a retry another).
fn derived_name(key: &str) -> String {
    let fnv = |seed: u64| {
        let mut h = seed;
        for b in key.bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
        h
    };
    format!(
        "{:016x}{:016x}",
        fnv(0xcbf29ce484222325),
        fnv(0x84222325cbf29ce4)
    )
}

/// The ARN of the `.sync` child a task of `parent` starts, for stopping it with the parent.
pub(crate) fn sync_child_arn(parent: &str, request: &TaskRequest) -> Option<String> {
    if !Pattern::of(&request.resource)?.waits_for_child() {
        return None;
    }
    let (machine, name) = child_of(request)?;
    let (_, _, machine, _) = tables::parse_machine_arn(&machine).ok()?;
    let (region, account, _, _) = tables::parse_execution_arn(parent).ok()?;
    Some(format!(
        "arn:aws:states:{region}:{account}:execution:{machine}:{name}"
    ))
}

/// The output a `.sync` task ends with (DescribeExecution's fields, AWS's capitalisation), and
/// whether the child succeeded.
pub(crate) fn sync_result(record: &Record, pattern: Pattern) -> Event {
    let d = executions::describe(record);
    let parsed = |text: &str| serde_json::from_str(text).unwrap_or_else(|_| json!(text));
    let (input, output) = if pattern == Pattern::Sync2 {
        (parsed(&d.input), d.output.as_deref().map(parsed))
    } else {
        (json!(d.input), d.output.map(Value::String))
    };
    let mut out = json!({
        "ExecutionArn": d.execution_arn,
        "StateMachineArn": d.state_machine_arn,
        "Name": d.name,
        "Status": d.status,
        "StartDate": d.start_date,
        "Input": input,
        "InputDetails": {"Included": true},
        "RedriveCount": d.redrive_count,
    });
    if let Some(t) = d.stop_date {
        out["StopDate"] = json!(t);
    }
    if let Some(o) = output {
        out["Output"] = o;
        out["OutputDetails"] = json!({"Included": true});
    }
    if let Some(e) = &d.error {
        out["Error"] = json!(e);
    }
    if let Some(c) = &d.cause {
        out["Cause"] = json!(c);
    }
    let task = record.parent.as_ref().map_or(0, |p| p.task);
    if d.status == "SUCCEEDED" {
        Event::TaskSucceeded { task, output: out }
    } else {
        Event::TaskFailed {
            task,
            error: Some(agentry_asl::error::names::TASK_FAILED.into()),
            cause: Some(out.to_string()),
        }
    }
}

impl Engine {
    /// Runs a nested-execution task of `parent`: starts the child. `Ok(Some(output))` ends the
    /// task now (request-response); `Ok(None)` leaves it waiting (for the child, or a token).
    pub(crate) async fn start_nested(
        &self,
        parent: &str,
        request: &TaskRequest,
    ) -> Result<Option<Value>, TaskError> {
        let invalid = |cause: String| TaskError::new("States.Runtime", cause);
        let Some(pattern) = Pattern::of(&request.resource) else {
            return Err(invalid(format!(
                "resource \"{}\" is not a startExecution integration",
                request.resource
            )));
        };
        let Some((machine, name)) = child_of(request) else {
            return Err(invalid(
                "the field 'StateMachineArn' is required but was missing".into(),
            ));
        };
        let input = match request.input.get("Input") {
            None | Some(Value::Null) => "{}".to_string(),
            Some(Value::String(text)) => text.clone(),
            Some(v) => v.to_string(),
        };
        let started_by = serde_json::from_str::<Value>(&input).ok().and_then(|v| {
            v.get(STARTED_BY)
                .and_then(Value::as_str)
                .map(str::to_string)
        });
        let link =
            (pattern.waits_for_child() || started_by.as_deref() == Some(parent)).then(|| {
                ParentLink {
                    execution: parent.to_string(),
                    task: request.task,
                    pattern,
                }
            });
        let engine = self
            .for_account(&tables::account_of(parent))
            .map_err(|e| invalid(e.to_string()))?;
        // A parent that has ended (stopped before this task ran) starts nothing.
        match self.load(parent).await {
            Ok(p) if p.status() == agentry_asl::Status::Running => {}
            Ok(_) | Err(Error::ExecutionDoesNotExist(_)) => {
                return Err(TaskError::new(
                    "States.TaskFailed",
                    "the parent execution is no longer running",
                ));
            }
            Err(e) => return Err(TaskError::new("States.TaskFailed", e.to_string())),
        }
        let started = match engine
            .start_execution_as(&machine, Some(&name), &input, link.clone())
            .await
        {
            Ok(s) => (s.execution_arn, s.start_date),
            Err(Error::ExecutionAlreadyExists(arn)) => {
                // Ours, from an earlier delivery of this task, that has ended already?
                let existing = engine
                    .load(&arn)
                    .await
                    .map_err(|e| TaskError::new("States.TaskFailed", e.to_string()))?;
                let ours = existing
                    .parent
                    .as_ref()
                    .is_some_and(|p| p.execution == parent && p.task == request.task);
                if !ours {
                    return Err(TaskError::new(
                        "StepFunctions.ExecutionAlreadyExistsException",
                        format!("Execution Already Exists: '{arn}'"),
                    ));
                }
                (arn, existing.execution.info.start_time_ms)
            }
            Err(e) => {
                let error = match &e {
                    Error::StateMachineDoesNotExist(_) => {
                        "StepFunctions.StateMachineDoesNotExistException".to_string()
                    }
                    e if e.is_retryable() => "States.TaskFailed".to_string(),
                    e => format!("StepFunctions.{}Exception", e.aws_name()),
                };
                return Err(TaskError::new(error, e.to_string()));
            }
        };
        Ok(match pattern {
            Pattern::RequestResponse => Some(json!({
                "ExecutionArn": started.0,
                "StartDate": started.1,
            })),
            _ => None,
        })
    }

    /// Hands a parent the end of its `.sync` child.
    pub(crate) fn parent_notice(record: &Record) -> Option<(String, Work)> {
        let link = record.parent.as_ref()?;
        if !link.pattern.waits_for_child() {
            return None;
        }
        Some((
            link.execution.clone(),
            Work::Event(sync_result(record, link.pattern)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_and_child_names() {
        assert_eq!(
            Pattern::of("arn:aws:states:::states:startExecution.sync:2"),
            Some(Pattern::Sync2)
        );
        assert_eq!(
            Pattern::of("arn:aws:states:::states:startExecution.bogus"),
            None
        );
        assert_eq!(Pattern::of("arn:aws:states:::lambda:invoke"), None);
        let a = derived_name("arn:x:3:0");
        assert_eq!(a, derived_name("arn:x:3:0"));
        assert_ne!(a, derived_name("arn:x:3:1"));
        assert!(tables::check_name(&a).is_ok());
    }

    /// A task delivered twice (a node died after starting the child) finds the child it
    /// started, running or ended, instead of starting another.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_redelivered_task_starts_one_child() {
        let dir = tempfile::tempdir().unwrap();
        let url = |f: &str| format!("sqlite://{}", dir.path().join(f).display());
        let store = agentry_storage::open(&url("s.db")).await.unwrap();
        let queue = agentry_queue::open(&url("q.db")).await.unwrap();
        let engine = Engine::open(
            store,
            queue,
            crate::ResourceTable::new(),
            crate::EngineConfig::default(),
        )
        .await
        .unwrap();
        let waits =
            json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 300, "End": true}}});
        let child = engine
            .create_state_machine("child", &waits.to_string())
            .await
            .unwrap();
        let parent_machine = engine
            .create_state_machine("parent", &waits.to_string())
            .await
            .unwrap();
        let parent = engine
            .start_execution(&parent_machine, None, "{}")
            .await
            .unwrap()
            .execution_arn;
        let request = TaskRequest {
            task: 7,
            state: "Call".into(),
            resource: format!("{START_EXECUTION}.sync"),
            input: json!({"StateMachineArn": child, "Input": {"n": 1}}),
            idempotency_key: format!("{parent}:5:0"),
            timeout_seconds: None,
            heartbeat_seconds: None,
            task_token: None,
            credentials: None,
        };
        assert_eq!(engine.start_nested(&parent, &request).await, Ok(None));
        assert_eq!(engine.start_nested(&parent, &request).await, Ok(None));
        let children = engine
            .list_executions(&child, None, None, None)
            .await
            .unwrap();
        assert_eq!(children.items.len(), 1);
        let kid = children.items[0].execution_arn.clone();
        assert_eq!(Some(kid.clone()), sync_child_arn(&parent, &request));
        // Ended, and delivered once more: still the one child, no error.
        engine.stop_execution(&kid, None, None).await.unwrap();
        assert_eq!(engine.start_nested(&parent, &request).await, Ok(None));
        assert_eq!(
            engine
                .list_executions(&child, None, None, None)
                .await
                .unwrap()
                .items
                .len(),
            1
        );
        // Another task of the same name is not this one's: it fails rather than adopt it.
        let named = TaskRequest {
            task: 8,
            input: json!({"StateMachineArn": child, "Name": kid.rsplit(':').next().unwrap()}),
            ..request.clone()
        };
        let err = engine.start_nested(&parent, &named).await.unwrap_err();
        assert_eq!(err.error, "StepFunctions.ExecutionAlreadyExistsException");
    }
}
