//! The TestState API: run one state with an input, an optional mocked task result, variables
//! and a context object, and report what it did (status, output, error, next state) without
//! running the rest of the machine.

use std::collections::VecDeque;

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::definition::{StateMachine, parse_text};
use crate::env::Host;
use crate::error::ValidationError;
use crate::exec::{Effect, Event, Execution, ExecutionInfo, Status};

/// A TestState request, fields as AWS names them.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// One state's definition, or a whole machine when `state_name` is set.
    pub definition: Value,
    pub state_name: Option<String>,
    /// Input as JSON text (AWS default `{}`).
    pub input: Option<String>,
    /// `INFO` (default), `DEBUG` or `TRACE`.
    pub inspection_level: Option<String>,
    /// `{"result": "<json text>"}` or `{"errorOutput": {"error": ..., "cause": ...}}`.
    pub mock: Option<Value>,
    /// Variables as JSON text.
    pub variables: Option<String>,
    /// A context object as JSON text.
    pub context: Option<String>,
    pub reveal_secrets: bool,
    /// `{"retrierRetryCount": n, "mapIterationFailureCount": n, ...}`: the situation to test in.
    pub state_configuration: Option<Value>,
    /// The execution identity shown in the context object (a local one when `None`).
    pub info: Option<ExecutionInfo>,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    /// `SUCCEEDED`, `FAILED`, `RETRIABLE` or `CAUGHT_ERROR`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inspection_data: Option<Value>,
}

fn invalid(msg: impl Into<String>) -> ValidationError {
    ValidationError::new("ValidationException", msg)
}

/// Picks the state under test out of the request.
fn state_under_test(req: &Request) -> Result<(String, Value), ValidationError> {
    if req.state_name.as_deref() == Some("") {
        return Err(ValidationError::new(
            "ParamValidationError",
            "Parameter validation failed:\nInvalid length for parameter stateName, value: 0, valid min length: 1",
        ));
    }
    match &req.state_name {
        Some(name) => find_state(&req.definition, name)
            .map(|s| (name.clone(), s.clone()))
            .ok_or_else(|| invalid("State not found in definition")),
        // AWS names a lone state under test "StateName" (its context object shows it).
        None => Ok(("StateName".to_string(), req.definition.clone())),
    }
}

/// Finds a state by name in a machine, its Parallel branches and Map item processors.
fn find_state<'a>(machine: &'a Value, name: &str) -> Option<&'a Value> {
    let states = machine.get("States")?.as_object()?;
    if let Some(s) = states.get(name) {
        return Some(s);
    }
    states.values().find_map(|s| {
        let nested = s
            .get("Branches")
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        let processor = s.get("ItemProcessor").or_else(|| s.get("Iterator"));
        nested.chain(processor).find_map(|m| find_state(m, name))
    })
}

const CONTEXT_FIELDS: &[&str] = &["Execution", "State", "StateMachine", "Task", "Map"];
const EXECUTION_FIELDS: &[&str] = &[
    "Id",
    "Input",
    "Name",
    "RoleArn",
    "StartTime",
    "RedriveCount",
    "RedriveTime",
];

fn check_context(ctx: &Value, state: &Value) -> Result<(), ValidationError> {
    let bad = |m: String| invalid(format!("Invalid Context object provided: {m}"));
    let obj = ctx
        .as_object()
        .ok_or_else(|| bad("the context object must be a JSON object".into()))?;
    for (k, v) in obj {
        if !CONTEXT_FIELDS.contains(&k.as_str()) {
            return Err(bad(format!("Field '{k}' is not allowed")));
        }
        if k == "Execution"
            && let Some(e) = v.as_object()
        {
            for (ek, ev) in e {
                if !EXECUTION_FIELDS.contains(&ek.as_str()) {
                    return Err(bad(format!("Field '{ek}' is not allowed")));
                }
                if matches!(ek.as_str(), "Id" | "Name" | "RoleArn" | "StartTime") && !ev.is_string()
                {
                    return Err(bad(format!("Execution.{ek} must be a string")));
                }
            }
        }
    }
    if obj.contains_key("Task") {
        let resource = state
            .get("Resource")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let pattern = resource.contains(".sync") || resource.ends_with(".waitForTaskToken");
        if state.get("Type").and_then(Value::as_str) != Some("Task") || !pattern {
            return Err(bad(
                "Context object contains 'Task' when state is not a Task state with a '.sync' or '.waitForTaskToken' service integration pattern".into(),
            ));
        }
    }
    Ok(())
}

/// The mocked outcome of the state's work.
enum Mock {
    Result(Value),
    Error {
        error: Option<String>,
        cause: Option<String>,
    },
}

fn parse_mock(mock: &Value, ty: &str, state: &Value) -> Result<Mock, ValidationError> {
    let result = mock.get("result");
    let error = mock.get("errorOutput");
    if result.is_some() && error.is_some() {
        return Err(invalid(
            "A test mock should have only one of the following fields: [result, errorOutput].",
        ));
    }
    if matches!(ty, "Pass" | "Fail" | "Succeed" | "Wait" | "Choice") {
        return Err(invalid(format!(
            "State type '{ty}' is not supported when a mock is specified"
        )));
    }
    if let Some(e) = error {
        return Ok(Mock::Error {
            error: e.get("error").and_then(Value::as_str).map(str::to_string),
            cause: e.get("cause").and_then(Value::as_str).map(str::to_string),
        });
    }
    let text = result.and_then(Value::as_str).unwrap_or("null");
    let v: Value =
        serde_json::from_str(text).map_err(|_| invalid("Mocked result must be valid JSON"))?;
    match ty {
        "Map" if state.get("ResultWriter").is_some() && !v.is_object() => {
            Err(invalid("Mocked result must be a JSON object."))
        }
        "Map" if !v.is_array() => Err(invalid("Mocked result must be an array.")),
        "Parallel" => {
            let branches = state
                .get("Branches")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            match v.as_array() {
                None => Err(invalid("Mocked result must be an array.")),
                Some(a) if a.len() != branches => Err(invalid(
                    "Mocked result must contain the same number of items as number of Parallel branches.",
                )),
                Some(_) => Ok(Mock::Result(v)),
            }
        }
        "Task" => {
            let mode = mock
                .get("fieldValidationMode")
                .and_then(Value::as_str)
                .unwrap_or("STRICT");
            let resource = state
                .get("Resource")
                .and_then(Value::as_str)
                .unwrap_or_default();
            crate::mock_shapes::validate_mock_result(resource, &v, mode).map_err(invalid)?;
            Ok(Mock::Result(v))
        }
        _ => Ok(Mock::Result(v)),
    }
}

/// Names a state can move to: Next, Default, Choices' and Catchers' Next.
fn targets(state: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut push = |v: Option<&Value>| {
        if let Some(s) = v.and_then(Value::as_str) {
            out.push(s.to_string());
        }
    };
    push(state.get("Next"));
    push(state.get("Default"));
    for c in state
        .get("Choices")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        push(c.get("Next"));
    }
    for c in state
        .get("Catch")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        push(c.get("Next"));
    }
    out
}

/// Runs one state as the TestState API does.
pub fn run(req: &Request, host: &mut dyn Host) -> Result<Response, ValidationError> {
    let (name, mut state) = state_under_test(req)?;
    let ty = state
        .get("Type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut mock = req
        .mock
        .as_ref()
        .map(|m| parse_mock(m, &ty, &state))
        .transpose()?;
    let config = req.state_configuration.clone().unwrap_or(Value::Null);
    if let Some(failures) = config
        .get("mapIterationFailureCount")
        .and_then(Value::as_u64)
    {
        let items = match &mock {
            None => {
                return Err(invalid(
                    "TestState does not support MapIterationFailureCount when a mock is not specified.",
                ));
            }
            // A mocked error is the Map's outcome whatever its iterations did.
            Some(Mock::Error { .. }) => Value::Null,
            Some(Mock::Result(items)) => items.clone(),
        };
        let total = items.as_array().map_or(0, Vec::len) as f64;
        let count = state.get("ToleratedFailureCount").and_then(Value::as_f64);
        let pct = state
            .get("ToleratedFailurePercentage")
            .and_then(Value::as_f64);
        let over_count = count.map(|c| failures as f64 > c);
        let over_pct = pct.map(|p| total > 0.0 && failures as f64 * 100.0 / total > p);
        let exceeded = match (over_count, over_pct) {
            // Without a tolerance the simulated failures do not decide the outcome.
            (None, None) => false,
            (Some(a), None) | (None, Some(a)) => a,
            (Some(a), Some(b)) => a && b,
        };
        if exceeded && items.is_array() {
            mock = Some(Mock::Error {
                error: Some(crate::error::names::EXCEED_TOLERATED_FAILURE_THRESHOLD.into()),
                cause: Some("The specified tolerated failure threshold was exceeded".into()),
            });
        }
    }
    if matches!(ty.as_str(), "Map" | "Parallel") && mock.is_none() {
        return Err(ValidationError::new(
            "InvalidDefinition",
            "TestState API does not support Map or Parallel states. Supported state types include: [Task, Wait, Pass, Succeed, Fail, Choice]",
        ));
    }
    let context = match &req.context {
        Some(text) => {
            let c: Value = serde_json::from_str(text)
                .map_err(|_| invalid("Invalid Context object provided: not valid JSON"))?;
            check_context(&c, &state)?;
            Some(c)
        }
        None => None,
    };
    let input = match &req.input {
        Some(text) => crate::exec::parse_input(text)?,
        None => json!({}),
    };
    let variables: Map<String, Value> = match &req.variables {
        Some(text) => match parse_text(text) {
            Ok(Value::Object(m)) => m,
            _ => return Err(invalid("variables must be a JSON object")),
        },
        None => Map::new(),
    };
    // The state is validated as part of a machine in which every state it names exists.
    let mut check = json!({"StartAt": name, "States": {}});
    for t in targets(&state) {
        check["States"][t] = json!({"Type": "Succeed"});
    }
    check["States"][&name] = state.clone();
    if let Some(ql) = req
        .state_name
        .as_ref()
        .and(req.definition.get("QueryLanguage"))
    {
        check["QueryLanguage"] = ql.clone();
    }
    crate::validate::validate(&check, crate::validate::MachineType::Standard)?;
    // The work of a mocked Map or Parallel is its mock: run it as a Task with the same
    // input and output processing, after checking the Map's items as AWS does.
    if matches!(ty.as_str(), "Map" | "Parallel") {
        let obj = state.as_object_mut().expect("state is an object");
        obj.insert("Type".into(), json!("Task"));
        obj.insert("Resource".into(), json!("arn:aws:states:::mock"));
        for k in [
            "Branches",
            "ItemProcessor",
            "Iterator",
            "ItemSelector",
            "MaxConcurrency",
            "ToleratedFailureCount",
            "ToleratedFailurePercentage",
            "ItemReader",
            "ItemBatcher",
            "ResultWriter",
            "Label",
            "MaxConcurrencyPath",
            "ToleratedFailureCountPath",
            "ToleratedFailurePercentagePath",
            "Items",
        ] {
            obj.remove(k);
        }
        if let Some(p) = obj.remove("ItemsPath")
            && let Some(p) = p.as_str()
        {
            let eff_input = match obj.get("InputPath") {
                Some(Value::String(ip)) => {
                    let scope = crate::Scope {
                        input: &input,
                        context: &json!({}),
                        vars: &variables,
                    };
                    crate::jsonpath::read(ip, &scope)
                        .ok()
                        .flatten()
                        .unwrap_or(Value::Null)
                }
                _ => input.clone(),
            };
            let ctx = context.clone().unwrap_or(json!({}));
            let scope = crate::Scope {
                input: &eff_input,
                context: &ctx,
                vars: &variables,
            };
            let items = crate::jsonpath::read(p, &scope).ok().flatten();
            if !items.as_ref().is_some_and(Value::is_array) {
                let shown = p
                    .strip_prefix('$')
                    .filter(|r| r.starts_with('$'))
                    .unwrap_or(p);
                return Ok(Response {
                    status: "FAILED".into(),
                    error: Some("States.Runtime".into()),
                    cause: Some(format!("Reference path \"{shown}\" must point to array.")),
                    ..Default::default()
                });
            }
        }
    }
    let mut states = Map::new();
    for t in targets(&state) {
        if t != name {
            states.insert(t, json!({"Type": "Succeed"}));
        }
    }
    states.insert(name.clone(), state);
    let mut machine_json = json!({"StartAt": name, "States": states});
    if let Some(ql) = req
        .state_name
        .as_ref()
        .and(req.definition.get("QueryLanguage"))
    {
        machine_json["QueryLanguage"] = ql.clone();
    }
    let def = StateMachine::from_value(&machine_json)?;
    let info = req.info.clone().unwrap_or_else(|| {
        let mut info = ExecutionInfo::local("TestStateMachine", "test", host.now_ms());
        info.express = true;
        info.execution_arn = info.execution_arn.replace(":execution:", ":express:");
        info
    });
    let mut ex = Execution::new(info);
    ex.initial_retry_count = config
        .get("retrierRetryCount")
        .or_else(|| {
            context
                .as_ref()
                .and_then(|c| c.pointer("/State/RetryCount"))
        })
        .and_then(Value::as_u64)
        .unwrap_or(0);
    ex.context_override = context;
    // AWS's TestState context object calls the state under test "StateName".
    ex.context_state_name = Some("StateName".into());
    ex.initial_variables = variables;
    let mut seen = Map::new();
    seen.insert("input".into(), Value::String(input.to_string()));
    ex.inspection = Some(std::cell::RefCell::new(seen));
    let mut response = drive(&mut ex, &def, input, mock.as_ref(), host);
    response.inspection_data = ex.inspection.take().map(|c| Value::Object(c.into_inner()));
    Ok(response)
}

/// Runs the one-state machine until the state under test is done.
fn drive(
    ex: &mut Execution,
    def: &StateMachine,
    input: Value,
    mock: Option<&Mock>,
    host: &mut dyn Host,
) -> Response {
    let mut step = ex.start(def, input, host);
    let mut history = Vec::new();
    let mut pending: VecDeque<Event> = VecDeque::new();
    loop {
        history.append(&mut step.events);
        let mut timers = Vec::new();
        for e in step.effects.drain(..) {
            match e {
                Effect::Invoke(task) => pending.push_back(match mock {
                    Some(Mock::Result(v)) => Event::TaskSucceeded {
                        task: task.task,
                        output: v.clone(),
                    },
                    Some(Mock::Error { error, cause }) => Event::TaskFailed {
                        task: task.task,
                        error: error.clone(),
                        cause: cause.clone(),
                    },
                    None => Event::TaskFailed {
                        task: task.task,
                        error: Some("States.TaskFailed".into()),
                        cause: Some(format!(
                            "no handler for resource \"{}\" in this runtime",
                            task.resource
                        )),
                    },
                }),
                Effect::StartTimer { timer, .. } => timers.push(timer),
                Effect::CancelTask { .. } | Effect::Finish => {}
            }
        }
        // Entering a second state means the state under test is done.
        let entered: Vec<&crate::history::HistoryEvent> = history
            .iter()
            .filter(|e| e.kind.ends_with("StateEntered"))
            .collect();
        let failed = history.iter().rev().find(|e| {
            matches!(
                e.kind.as_str(),
                "TaskFailed"
                    | "EvaluationFailed"
                    | "TaskTimedOut"
                    | "MapStateFailed"
                    | "ParallelStateFailed"
            )
        });
        if entered.len() > 1 {
            let next = entered[1]
                .details
                .as_ref()
                .and_then(|d| d.get("name"))
                .and_then(Value::as_str)
                .map(str::to_string);
            let exited = history
                .iter()
                .rev()
                .find(|e| e.kind.ends_with("StateExited"));
            // History details carry output as JSON text, as AWS's API does.
            let output = exited
                .and_then(|e| e.details.as_ref())
                .and_then(|d| d.get("output"))
                .and_then(Value::as_str)
                .map(str::to_string);
            let (error, cause) = failed.map(failure_of).unwrap_or_default();
            let caught = failed.is_some();
            return Response {
                status: if caught { "CAUGHT_ERROR" } else { "SUCCEEDED" }.into(),
                output,
                error,
                cause,
                next_state: next,
                inspection_data: None,
            };
        }
        match ex.status {
            Status::Running => {}
            Status::Succeeded => {
                return Response {
                    status: "SUCCEEDED".into(),
                    output: ex.output.as_ref().map(Value::to_string),
                    ..Default::default()
                };
            }
            _ => {
                return Response {
                    status: "FAILED".into(),
                    error: ex.error.clone(),
                    cause: ex.cause.clone(),
                    ..Default::default()
                };
            }
        }
        if let Some(ev) = pending.pop_front() {
            step = ex.handle(def, ev, host);
            continue;
        }
        if let Some(f) = failed {
            // The state failed and a Retrier will try it again.
            let (error, cause) = failure_of(f);
            return Response {
                status: "RETRIABLE".into(),
                error,
                cause,
                ..Default::default()
            };
        }
        let Some(timer) = timers.first().copied() else {
            return Response {
                status: "FAILED".into(),
                error: Some("States.Runtime".into()),
                cause: Some("the state waits on nothing".into()),
                ..Default::default()
            };
        };
        step = ex.handle(def, Event::TimerFired { timer }, host);
    }
}

fn failure_of(e: &crate::history::HistoryEvent) -> (Option<String>, Option<String>) {
    let d = e.details.as_ref();
    let get = |k: &str| {
        d.and_then(|d| d.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    (get("error"), get("cause"))
}
