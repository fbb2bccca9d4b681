//! An execution as a step function: [`Execution::start`] and [`Execution::handle`] take the
//! execution's state and one event (started, task result, timer fired, stop) and return the
//! history events to record and the effects the runtime must carry out (invoke a task, start a
//! timer, finish). Nothing here assumes one process: the whole [`Execution`] is serialisable,
//! so a durable runtime can store it between steps and any node can continue it.
//!
//! Inside, an execution is a set of threads: the top-level machine is thread 0, and each
//! Parallel branch and Map iteration runs as a child thread of the state that started it.
//! States without outside effects (Pass, Choice, Succeed, Fail, zero Waits) run one after
//! another within one step.

mod branches;
pub mod drive;
mod io;
mod redrive;
mod states;

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::definition::{QueryLanguage, StateMachine};
use crate::env::Host;
use crate::error::Failure;
use crate::history::HistoryEvent;

/// The largest input or output AWS accepts: 256 KiB.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// AWS's cap on an execution's history. An execution that reaches it fails (the error name is
/// ours: no recorded case shows AWS's), which also ends a loop of states that never wait.
pub const MAX_HISTORY_EVENTS: u64 = 25_000;

/// Parses an execution's input text as StartExecution does: JSON of at most 256 KiB.
pub fn parse_input(text: &str) -> Result<Value, crate::error::ValidationError> {
    if text.len() > MAX_PAYLOAD_BYTES {
        return Err(crate::error::ValidationError::new(
            "ValidationException",
            format!(
                "execution input is {} bytes, over the limit of {MAX_PAYLOAD_BYTES} bytes",
                text.len()
            ),
        ));
    }
    serde_json::from_str(text).map_err(|e| {
        crate::error::ValidationError::new(
            "InvalidExecutionInput",
            format!(
                "Invalid State Machine Execution Input: '{}'",
                input_error(text, &e)
            ),
        )
    })
}

/// Describes bad input as AWS's JSON parser (Jackson) does, where the case is a common one.
fn input_error(text: &str, e: &serde_json::Error) -> String {
    let trimmed = text.trim_start();
    let Some(first) = trimmed.chars().next() else {
        return "Invalid execution input.".into();
    };
    if first.is_alphabetic() {
        let token: String = trimmed
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !matches!(token.as_str(), "true" | "false" | "null") {
            return format!(
                "Unrecognized token '{token}': was expecting (JSON String, Number, Array, Object or token 'null', 'true' or 'false')"
            );
        }
    }
    if e.to_string().starts_with("key must be a string") {
        // serde_json points at the offending character (1-based line and column).
        let at = text
            .lines()
            .nth(e.line().saturating_sub(1))
            .and_then(|l| l.chars().nth(e.column().saturating_sub(1)));
        if let Some(c) = at {
            return format!(
                "Unexpected character ('{c}' (code {})): was expecting double-quote to start field name",
                c as u32
            );
        }
    }
    e.to_string()
}

/// Identity of an execution, as the context object (`$$.Execution`, `$$.StateMachine`) shows it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ExecutionInfo {
    pub execution_arn: String,
    pub name: String,
    pub state_machine_arn: String,
    pub state_machine_name: String,
    pub role_arn: String,
    pub start_time_ms: i64,
    pub redrive_count: u64,
    /// Express executions have no redrive count in their context object.
    #[serde(default)]
    pub express: bool,
    /// The version and alias the execution was started through, for its ExecutionStarted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_machine_version_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_machine_alias_arn: Option<String>,
}

impl ExecutionInfo {
    /// ARNs in AWS's form for a local account and region.
    pub fn local(state_machine: &str, execution: &str, start_time_ms: i64) -> Self {
        Self::new(
            "local",
            "000000000000",
            state_machine,
            execution,
            start_time_ms,
        )
    }

    /// ARNs in AWS's form for `region` and `account`.
    pub fn new(
        region: &str,
        account: &str,
        state_machine: &str,
        execution: &str,
        start_time_ms: i64,
    ) -> Self {
        Self {
            execution_arn: format!(
                "arn:aws:states:{region}:{account}:execution:{state_machine}:{execution}"
            ),
            name: execution.to_string(),
            state_machine_arn: format!(
                "arn:aws:states:{region}:{account}:stateMachine:{state_machine}"
            ),
            state_machine_name: state_machine.to_string(),
            role_arn: format!("arn:aws:iam::{account}:role/agentry"),
            start_time_ms,
            redrive_count: 0,
            express: false,
            state_machine_version_arn: None,
            state_machine_alias_arn: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Aborted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "RUNNING",
            Status::Succeeded => "SUCCEEDED",
            Status::Failed => "FAILED",
            Status::TimedOut => "TIMED_OUT",
            Status::Aborted => "ABORTED",
        }
    }
}

/// What happened outside the interpreter.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Event {
    TaskSucceeded {
        task: u64,
        output: Value,
    },
    TaskFailed {
        task: u64,
        error: Option<String>,
        cause: Option<String>,
    },
    /// A task's heartbeat arrived: its heartbeat deadline moves forward.
    TaskHeartbeat {
        task: u64,
    },
    /// A worker took an activity task (GetActivityTask): recorded as ActivityStarted.
    ActivityStarted {
        task: u64,
        worker_name: Option<String>,
    },
    TimerFired {
        timer: u64,
    },
    /// StopExecution.
    Stop {
        error: Option<String>,
        cause: Option<String>,
    },
}

/// A task the runtime must invoke; its answer comes back as `TaskSucceeded`/`TaskFailed`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskRequest {
    pub task: u64,
    pub state: String,
    pub resource: String,
    pub input: Value,
    /// (execution, state, attempt): the same for a re-delivery, different for a retry.
    pub idempotency_key: String,
    pub timeout_seconds: Option<u64>,
    pub heartbeat_seconds: Option<u64>,
    /// A task token when the resource ends in `.waitForTaskToken`.
    pub task_token: Option<String>,
    pub credentials: Option<Value>,
}

/// What the runtime must do after a step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Effect {
    Invoke(Box<TaskRequest>),
    /// Deliver `Event::TimerFired { timer }` at `at_ms` (epoch milliseconds).
    StartTimer {
        timer: u64,
        at_ms: i64,
    },
    /// A task the execution no longer waits for (its branch ended, the execution stopped).
    CancelTask {
        task: u64,
    },
    /// The execution reached a terminal status; see [`Execution::status`].
    Finish,
}

/// The result of one step: events to append to the history, then effects to carry out.
#[derive(Clone, Debug, Default)]
pub struct Step {
    pub events: Vec<HistoryEvent>,
    pub effects: Vec<Effect>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Seg {
    state: String,
    /// `Some(i)`: Parallel branch i; `None`: a Map's item processor.
    branch: Option<usize>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
enum Wake {
    /// A Wait state's timer.
    Wait,
    /// A retry's backoff.
    Retry,
    /// A task's TimeoutSeconds or HeartbeatSeconds.
    TaskTimeout { heartbeat: bool },
    /// The execution's TimeoutSeconds.
    Execution,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
enum TStatus {
    Ready,
    Task { task: u64 },
    Timer { timer: u64 },
    Join(Box<Join>),
    Done,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Join {
    map: bool,
    results: Vec<Option<Value>>,
    pending: VecDeque<(usize, Value)>,
    running: Vec<u64>,
    max_concurrency: usize,
    failures: usize,
    tolerated_count: Option<u64>,
    tolerated_percentage: Option<f64>,
    /// The state's effective input (after InputPath), for ResultPath and Output.
    raw_input: Value,
    /// The last MapIterationSucceeded event: the Map's own closing events link to it.
    #[serde(default)]
    last_iteration_event: Option<u64>,
    /// Iterations that failed within the tolerated threshold (their result is the error).
    #[serde(default)]
    failed: std::collections::BTreeSet<usize>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Thread {
    parent: Option<(u64, usize)>,
    machine: Vec<Seg>,
    language: QueryLanguage,
    state: String,
    input: Value,
    vars: Map<String, Value>,
    status: TStatus,
    retries: Vec<u64>,
    /// Total retries of the current state, for `$$.State.RetryCount`.
    retry_count: u64,
    retrying: bool,
    entered_event: u64,
    entered_ms: i64,
    last_event: u64,
    map_item: Option<(usize, Value)>,
    /// The HeartbeatSeconds of the task in flight: each heartbeat moves its deadline this far.
    task_heartbeat: Option<u64>,
    /// The current state is a Task (its context object shows `RetryCount`).
    #[serde(default)]
    in_task: bool,
    /// A Map iteration whose MapIterationStarted event is recorded when it first runs.
    #[serde(default)]
    iteration_pending: bool,
    /// The event the current state's entry links to (EvaluationFailed links there too).
    #[serde(default)]
    entered_prev: u64,
    /// Runs inside a Distributed Map: its events belong to the map run, not this history.
    #[serde(default)]
    silent: bool,
    /// The results of a Map's iterations (a Parallel's branches) that had succeeded when the
    /// state failed, by index, kept for a redrive to run only the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kept_results: Option<Vec<Option<Value>>>,
    /// The thread's state is being entered again by a redrive (and may use `kept_results`).
    #[serde(default)]
    redriving: bool,
}

/// An execution's whole interpreter state.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Execution {
    pub info: ExecutionInfo,
    pub status: Status,
    pub input: Value,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
    /// A context object given by the caller (TestState), used instead of the computed one.
    #[serde(default)]
    pub context_override: Option<Value>,
    /// The name the context object gives the current state, when not its own (TestState).
    #[serde(default)]
    pub context_state_name: Option<String>,
    /// TestState's inspection data of the top-level thread's states (`afterInputPath`,
    /// `afterParameters`, `result`, ...), collected when set to `Some`.
    #[serde(default)]
    pub inspection: Option<std::cell::RefCell<Map<String, Value>>>,
    /// The input exactly as given, for the history (AWS records the text, not a re-encoding).
    #[serde(default)]
    pub input_text: Option<String>,
    /// Variables the top-level machine starts with (TestState).
    #[serde(default)]
    pub initial_variables: Map<String, Value>,
    /// Retries the first state has already had (TestState's `$$.State.RetryCount`).
    #[serde(default)]
    pub initial_retry_count: u64,
    next_event: u64,
    next_id: u64,
    threads: BTreeMap<u64, Thread>,
    timers: BTreeMap<u64, (u64, Wake)>,
    tasks: BTreeMap<u64, (u64, Option<u64>)>,
}

/// Everything a step works with besides the execution itself.
struct Cx<'a> {
    def: &'a StateMachine,
    host: &'a mut dyn Host,
    step: Step,
}

impl Execution {
    pub fn new(info: ExecutionInfo) -> Self {
        Self {
            info,
            status: Status::Running,
            input: json!({}),
            output: None,
            error: None,
            cause: None,
            context_override: None,
            initial_variables: Map::new(),
            context_state_name: None,
            inspection: None,
            input_text: None,
            initial_retry_count: 0,
            next_event: 1,
            next_id: 1,
            threads: BTreeMap::new(),
            timers: BTreeMap::new(),
            tasks: BTreeMap::new(),
        }
    }

    /// Starts the execution with `input` and runs it until it waits on something outside.
    pub fn start(&mut self, def: &StateMachine, input: Value, host: &mut dyn Host) -> Step {
        let mut cx = Cx {
            def,
            host,
            step: Step::default(),
        };
        self.input = input.clone();
        let mut started = json!({
            "input": self.input_text.clone().unwrap_or_else(|| input.to_string()),
            "inputDetails": {"truncated": false},
            "roleArn": self.info.role_arn,
        });
        if let Some(a) = &self.info.state_machine_alias_arn {
            started["stateMachineAliasArn"] = json!(a);
        }
        if let Some(v) = &self.info.state_machine_version_arn {
            started["stateMachineVersionArn"] = json!(v);
        }
        self.emit(&mut cx, 0, "ExecutionStarted", Some(started));
        if let Some(secs) = def.timeout_seconds {
            let at = cx.host.now_ms() + (secs as i64) * 1000;
            let timer = self.new_timer(&mut cx, 0, Wake::Execution, at);
            let _ = timer;
        }
        let language = def.query_language.unwrap_or_default();
        let thread = Thread {
            parent: None,
            machine: Vec::new(),
            language,
            state: def.start_at.clone(),
            input,
            vars: self.initial_variables.clone(),
            status: TStatus::Ready,
            retries: vec![
                self.initial_retry_count;
                def.state(&def.start_at).map_or(0, |s| s.common.retry.len())
            ],
            retry_count: self.initial_retry_count,
            retrying: false,
            entered_event: 0,
            entered_ms: 0,
            // AWS links the first state's entry to no earlier event.
            last_event: 0,
            map_item: None,
            task_heartbeat: None,
            in_task: false,
            iteration_pending: false,
            entered_prev: 0,
            silent: false,
            kept_results: None,
            redriving: false,
        };
        self.threads.insert(0, thread);
        self.run(&mut cx);
        cx.step
    }

    /// Applies one outside event and runs until the execution waits again.
    pub fn handle(&mut self, def: &StateMachine, event: Event, host: &mut dyn Host) -> Step {
        let mut cx = Cx {
            def,
            host,
            step: Step::default(),
        };
        if self.status != Status::Running {
            return cx.step;
        }
        match event {
            Event::TaskSucceeded { task, output } => {
                if let Some((tid, timeout_timer)) = self.tasks.remove(&task) {
                    if let Some(t) = timeout_timer {
                        self.timers.remove(&t);
                    }
                    self.task_done(&mut cx, tid, Ok(output));
                }
            }
            Event::TaskFailed { task, error, cause } => {
                if let Some((tid, timeout_timer)) = self.tasks.remove(&task) {
                    if let Some(t) = timeout_timer {
                        self.timers.remove(&t);
                    }
                    self.task_done(
                        &mut cx,
                        tid,
                        Err(Failure {
                            error,
                            cause,
                            located: false,
                        }),
                    );
                }
            }
            Event::TaskHeartbeat { task } => self.heartbeat(&mut cx, task),
            Event::ActivityStarted { task, worker_name } => {
                if let Some(&(tid, _)) = self.tasks.get(&task) {
                    let mut d = Map::new();
                    if let Some(w) = worker_name {
                        d.insert("workerName".into(), json!(w));
                    }
                    self.emit(&mut cx, tid, "ActivityStarted", Some(Value::Object(d)));
                }
            }
            Event::TimerFired { timer } => {
                if let Some((tid, wake)) = self.timers.remove(&timer) {
                    self.timer_fired(&mut cx, tid, wake);
                }
            }
            Event::Stop { error, cause } => {
                for task in std::mem::take(&mut self.tasks).into_keys() {
                    cx.step.effects.push(Effect::CancelTask { task });
                }
                self.timers.clear();
                let prev = self.next_event - 1;
                let mut d = Map::new();
                if let Some(e) = &error {
                    d.insert("error".into(), json!(e));
                }
                if let Some(c) = &cause {
                    d.insert("cause".into(), json!(c));
                }
                self.emit_after(&mut cx, prev, "ExecutionAborted", Some(Value::Object(d)));
                self.status = Status::Aborted;
                self.error = error;
                self.cause = cause;
                // The top-level thread stays, at the state it was in, for a redrive.
                self.keep_results(0);
                self.threads.retain(|id, _| *id == 0);
                cx.step.effects.push(Effect::Finish);
            }
        }
        self.run(&mut cx);
        cx.step
    }

    /// The context object for a state that can read it; `null` for one that cannot, which
    /// spares building it (it copies the execution's input) on every transition.
    fn context_for(&self, tid: u64, state: &crate::definition::State) -> Value {
        if state.reads_context || self.context_override.is_some() {
            self.context(tid)
        } else {
            Value::Null
        }
    }

    /// The context object `$$` for a thread.
    fn context(&self, tid: u64) -> Value {
        if let Some(c) = &self.context_override {
            return c.clone();
        }
        let t = &self.threads[&tid];
        let mut state = Map::new();
        state.insert(
            "Name".into(),
            json!(self.context_state_name.as_ref().unwrap_or(&t.state)),
        );
        state.insert(
            "EnteredTime".into(),
            json!(crate::time::format_rfc3339_ms(t.entered_ms)),
        );
        let in_task = self.threads.get(&tid).is_some_and(|t| t.in_task);
        if in_task {
            state.insert("RetryCount".into(), json!(t.retry_count));
        }
        let mut ctx = json!({
            "Execution": {
                "Id": self.info.execution_arn,
                "Input": self.input,
                "StartTime": crate::time::format_rfc3339_ms(self.info.start_time_ms),
                "Name": self.info.name,
                "RoleArn": self.info.role_arn,
                "RedriveCount": self.info.redrive_count,
            },
            "StateMachine": {"Id": self.info.state_machine_arn, "Name": self.info.state_machine_name},
            "State": state,
        });
        if self.info.express
            && let Some(e) = ctx["Execution"].as_object_mut()
        {
            e.remove("RedriveCount");
        }
        if let Some((index, value)) = self.map_item_of(tid) {
            ctx["Map"] = json!({"Item": {"Index": index, "Value": value}});
        }
        ctx
    }

    /// The Map item of the nearest enclosing Map iteration.
    fn map_item_of(&self, tid: u64) -> Option<(usize, Value)> {
        let mut cur = Some(tid);
        while let Some(id) = cur {
            let t = self.threads.get(&id)?;
            if let Some(item) = &t.map_item {
                return Some(item.clone());
            }
            cur = t.parent.map(|(p, _)| p);
        }
        None
    }

    fn emit(&mut self, cx: &mut Cx, tid: u64, kind: &str, details: Option<Value>) -> u64 {
        if self.threads.get(&tid).is_some_and(|t| t.silent) {
            return self.threads[&tid].last_event;
        }
        let prev = self.threads.get(&tid).map(|t| t.last_event).unwrap_or(0);
        let id = self.emit_after(cx, prev, kind, details);
        if let Some(t) = self.threads.get_mut(&tid) {
            t.last_event = id;
        }
        id
    }

    fn emit_after(&mut self, cx: &mut Cx, prev: u64, kind: &str, details: Option<Value>) -> u64 {
        let id = self.next_event;
        self.next_event += 1;
        cx.step.events.push(HistoryEvent {
            id,
            previous_event_id: prev,
            timestamp: cx.host.now_ms(),
            kind: kind.to_string(),
            details,
        });
        id
    }

    fn new_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn new_timer(&mut self, cx: &mut Cx, tid: u64, wake: Wake, at_ms: i64) -> u64 {
        let timer = self.new_id();
        self.timers.insert(timer, (tid, wake));
        cx.step.effects.push(Effect::StartTimer { timer, at_ms });
        timer
    }

    /// Runs every ready thread until all wait or the execution ends.
    fn run(&mut self, cx: &mut Cx) {
        loop {
            if self.status != Status::Running {
                return;
            }
            if self.next_event >= MAX_HISTORY_EVENTS {
                self.history_full(cx);
                return;
            }
            let ready = self
                .threads
                .iter()
                .find(|(_, t)| matches!(t.status, TStatus::Ready))
                .map(|(id, _)| *id);
            match ready {
                Some(tid) => self.run_state(cx, tid),
                None => return,
            }
        }
    }

    fn machine_of<'d>(def: &'d StateMachine, path: &[Seg]) -> &'d StateMachine {
        let mut m = def;
        for seg in path {
            let state = &m.states[&seg.state];
            m = match (&state.kind, seg.branch) {
                (crate::definition::Kind::Parallel(p), Some(i)) => &p.branches[i],
                (crate::definition::Kind::Map(map), None) => map
                    .item_processor
                    .as_ref()
                    .expect("map thread without item processor"),
                _ => unreachable!("thread path names a state that has no branches"),
            };
        }
        m
    }

    /// A thread finished its branch with an output or a failure.
    fn thread_done(&mut self, cx: &mut Cx, tid: u64, result: Result<Value, Failure>) {
        let Some(t) = self.threads.get_mut(&tid) else {
            return;
        };
        t.status = TStatus::Done;
        let parent = t.parent;
        match parent {
            None => self.finish_execution(cx, result),
            Some((ptid, slot)) => {
                let last = self.threads.remove(&tid).map_or(0, |t| t.last_event);
                self.child_done(cx, ptid, slot, tid, last, result);
            }
        }
    }

    fn finish_execution(&mut self, cx: &mut Cx, result: Result<Value, Failure>) {
        let prev = self
            .threads
            .get(&0)
            .map(|t| t.last_event)
            .unwrap_or(self.next_event - 1);
        match result {
            Ok(output) => {
                self.emit_after(
                    cx,
                    prev,
                    "ExecutionSucceeded",
                    Some(json!({"output": output.to_string(), "outputDetails": {"truncated": false}})),
                );
                self.status = Status::Succeeded;
                self.output = Some(output);
            }
            Err(f) => {
                let mut d = Map::new();
                if let Some(e) = &f.error {
                    d.insert("error".into(), json!(e));
                }
                if let Some(c) = &f.cause {
                    d.insert("cause".into(), json!(c));
                }
                self.emit_after(cx, prev, "ExecutionFailed", Some(Value::Object(d)));
                self.status = Status::Failed;
                self.error = f.error;
                self.cause = f.cause;
            }
        }
        self.cancel_all(cx);
        cx.step.effects.push(Effect::Finish);
    }

    fn history_full(&mut self, cx: &mut Cx) {
        let prev = self.next_event - 1;
        let error = crate::error::names::RUNTIME.to_string();
        let cause =
            format!("the execution history reached the limit of {MAX_HISTORY_EVENTS} events");
        self.emit_after(
            cx,
            prev,
            "ExecutionFailed",
            Some(json!({"error": error, "cause": cause})),
        );
        self.status = Status::Failed;
        self.error = Some(error);
        self.cause = Some(cause);
        self.cancel_all(cx);
        cx.step.effects.push(Effect::Finish);
    }

    fn cancel_all(&mut self, cx: &mut Cx) {
        self.keep_results(0);
        for task in std::mem::take(&mut self.tasks).into_keys() {
            cx.step.effects.push(Effect::CancelTask { task });
        }
        self.timers.clear();
        self.threads.retain(|id, _| *id == 0);
    }

    /// Removes a thread and everything below it (a branch that no longer matters).
    fn cancel_thread(&mut self, cx: &mut Cx, tid: u64) {
        let children: Vec<u64> = self
            .threads
            .iter()
            .filter(|(_, t)| t.parent.map(|p| p.0) == Some(tid))
            .map(|(id, _)| *id)
            .collect();
        for c in children {
            self.cancel_thread(cx, c);
        }
        let tasks: Vec<u64> = self
            .tasks
            .iter()
            .filter(|(_, (t, _))| *t == tid)
            .map(|(k, _)| *k)
            .collect();
        for task in tasks {
            self.tasks.remove(&task);
            cx.step.effects.push(Effect::CancelTask { task });
        }
        self.timers.retain(|_, (t, _)| *t != tid);
        self.threads.remove(&tid);
    }

    fn timer_fired(&mut self, cx: &mut Cx, tid: u64, wake: Wake) {
        match wake {
            Wake::Execution => {
                let prev = self.next_event - 1;
                self.emit_after(
                    cx,
                    prev,
                    "ExecutionTimedOut",
                    Some(json!({"error": "States.Timeout"})),
                );
                self.status = Status::TimedOut;
                self.error = Some(crate::error::names::TIMEOUT.into());
                self.cancel_all(cx);
                cx.step.effects.push(Effect::Finish);
            }
            Wake::Wait => self.wait_done(cx, tid),
            Wake::Retry => {
                if let Some(t) = self.threads.get_mut(&tid) {
                    t.status = TStatus::Ready;
                    t.retrying = true;
                }
            }
            Wake::TaskTimeout { heartbeat } => {
                let Some(t) = self.threads.get(&tid) else {
                    return;
                };
                let TStatus::Task { task } = t.status else {
                    return;
                };
                self.tasks.remove(&task);
                cx.step.effects.push(Effect::CancelTask { task });
                let kind = if heartbeat {
                    "States.HeartbeatTimeout"
                } else {
                    "States.Timeout"
                };
                let activity = self
                    .state_of(cx, tid)
                    .and_then(|s| match &s.kind {
                        crate::definition::Kind::Task(t) => t.resource.as_str(),
                        _ => None,
                    })
                    .is_some_and(states::is_activity);
                let event = if activity {
                    "ActivityTimedOut"
                } else {
                    "TaskTimedOut"
                };
                self.emit(cx, tid, event, Some(json!({"error": kind})));
                self.task_done(
                    cx,
                    tid,
                    Err(Failure {
                        error: Some(kind.into()),
                        cause: None,
                        located: false,
                    }),
                );
            }
        }
    }

    fn heartbeat(&mut self, cx: &mut Cx, task: u64) {
        let Some(&(tid, Some(old))) = self.tasks.get(&task) else {
            return;
        };
        let Some((_, Wake::TaskTimeout { heartbeat: true })) = self.timers.get(&old) else {
            return;
        };
        let Some(secs) = self.threads.get(&tid).and_then(|t| t.task_heartbeat) else {
            return;
        };
        self.timers.remove(&old);
        let at = cx.host.now_ms() + secs as i64 * 1000;
        let timer = self.new_timer(cx, tid, Wake::TaskTimeout { heartbeat: true }, at);
        self.tasks.insert(task, (tid, Some(timer)));
    }
}

/// The error output object a Catch passes on: `{"Error": ..., "Cause": ...}`.
fn error_output(f: &Failure) -> Value {
    let mut m = Map::new();
    m.insert(
        "Error".into(),
        f.error.clone().map(Value::String).unwrap_or(Value::Null),
    );
    m.insert(
        "Cause".into(),
        f.cause.clone().map(Value::String).unwrap_or(Value::Null),
    );
    if f.cause.is_none() {
        m.remove("Cause");
    }
    if f.error.is_none() {
        m.remove("Error");
    }
    Value::Object(m)
}

/// Does an `ErrorEquals` list match this error? `States.ALL` matches everything but the
/// terminal errors; `States.TaskFailed` everything a task raises but a timeout.
fn error_matches(list: &[String], error: &str, in_task: bool) -> bool {
    use crate::error::names::*;
    list.iter().any(|e| {
        e == error
            || (e == ALL && error != RUNTIME && error != DATA_LIMIT_EXCEEDED)
            || (in_task
                && e == TASK_FAILED
                && error != TIMEOUT
                && error != RUNTIME
                && error != DATA_LIMIT_EXCEEDED
                && !error.starts_with("States."))
    })
}

#[cfg(test)]
mod tests;
