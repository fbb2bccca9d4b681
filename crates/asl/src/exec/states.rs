//! Running one state of a thread: entering it, its work, leaving it, and what happens when it
//! fails (Retry, then Catch, then the thread fails).

use std::collections::VecDeque;

use serde_json::{Map, Value, json};

use super::io::{Finished, Io};
use super::{Cx, Effect, Execution, TStatus, TaskRequest, Wake, error_matches, error_output};
use crate::choice;
use crate::definition::{Kind, QueryLanguage, State};
use crate::error::{Failure, names};
use crate::{jsonata, jsonpath, time};

/// How a state's work ended for now.
pub(super) enum Flow {
    /// Leave the state with this output (to `Next`, or ending the thread when `None`).
    Leave {
        finished: Finished,
        next: Option<String>,
    },
    /// The thread waits on a task, timer or branches.
    Wait,
    /// A Succeed state (or End) ended the thread's branch with this output.
    Succeed(Finished),
}

impl Execution {
    pub(super) fn state_of<'d>(&self, cx: &Cx<'d>, tid: u64) -> Option<&'d State> {
        let t = &self.threads[&tid];
        Self::machine_of(cx.def, &t.machine).state(&t.state)
    }

    pub(super) fn run_state(&mut self, cx: &mut Cx, tid: u64) {
        let Some(state) = self.state_of(cx, tid) else {
            let name = self.threads[&tid].state.clone();
            self.thread_done(
                cx,
                tid,
                Err(Failure::new(
                    names::RUNTIME,
                    format!("state \"{name}\" does not exist"),
                )),
            );
            return;
        };
        let t = self.threads.get_mut(&tid).expect("ready thread exists");
        let pending = std::mem::take(&mut t.iteration_pending);
        let parent = t.parent;
        let silent = self.threads[&tid].silent;
        if pending
            && !silent
            && let Some((ptid, slot)) = parent
            && let Some(name) = self.threads.get(&ptid).map(|p| p.state.clone())
        {
            let prev = self.threads[&ptid].last_event;
            let id = self.emit_after(
                cx,
                prev,
                "MapIterationStarted",
                Some(json!({"index": slot, "name": name})),
            );
            self.threads.get_mut(&tid).unwrap().last_event = id;
        }
        let t = self.threads.get_mut(&tid).expect("ready thread exists");
        t.in_task = matches!(state.kind, Kind::Task(_));
        let retrying = std::mem::replace(&mut t.retrying, false);
        t.status = TStatus::Ready;
        if !retrying {
            t.entered_prev = t.last_event;
            // The first state's input is recorded as the execution's input text.
            let first = tid == 0 && t.entered_event == 0;
            let input_text = match (&self.input_text, first) {
                (Some(text), true) => text.clone(),
                _ => t.input.to_string(),
            };
            let details =
                json!({"input": input_text, "inputDetails": {"truncated": false}, "name": t.state});
            t.entered_ms = cx.host.now_ms();
            let id = self.emit(
                cx,
                tid,
                &format!("{}StateEntered", state.kind.type_name()),
                Some(details),
            );
            self.threads.get_mut(&tid).unwrap().entered_event = id;
        }
        let flow = self.work(cx, tid, state);
        // Results kept for a redrive serve only the state's first entry after it.
        if let Some(t) = self.threads.get_mut(&tid)
            && !std::mem::replace(&mut t.redriving, false)
            && !matches!(t.status, TStatus::Join(_))
        {
            t.kept_results = None;
        }
        self.after(cx, tid, state, flow);
    }

    pub(super) fn io<'s>(&'s self, tid: u64, state: &'s State, context: &'s Value) -> Io<'s> {
        let t = &self.threads[&tid];
        Io {
            lang: state.language(t.language),
            common: &state.common,
            input: &t.input,
            context,
            vars: &t.vars,
            inspect: if tid == 0 {
                self.inspection.as_ref()
            } else {
                None
            },
        }
    }

    fn work(&mut self, cx: &mut Cx, tid: u64, state: &State) -> Result<Flow, Failure> {
        let context = self.context_for(tid, state);
        let next = state.common.next.clone();
        match &state.kind {
            Kind::Pass(pass) => {
                let io = self.io(tid, state, &context);
                let result = match io.lang {
                    QueryLanguage::JsonPath => {
                        let eff = io.effective_input()?;
                        Some(match &pass.result {
                            Some(r) => r.clone(),
                            None => io.parameters(&eff, cx.host)?,
                        })
                    }
                    QueryLanguage::Jsonata => None,
                };
                Ok(Flow::Leave {
                    finished: io.finish(result, cx.host)?,
                    next,
                })
            }
            Kind::Succeed => {
                let io = self.io(tid, state, &context);
                Ok(Flow::Succeed(io.finish(None, cx.host)?))
            }
            Kind::Fail(fail) => Err(self.fail_state(cx, tid, state, fail, &context)?),
            Kind::Choice(c) => {
                let io = self.io(tid, state, &context);
                let eff = io.effective_input()?;
                for rule in &c.choices {
                    let matched = match io.lang {
                        QueryLanguage::JsonPath => choice::evaluate(rule, &io.scope(&eff))?,
                        QueryLanguage::Jsonata => {
                            let cond = rule.get("Condition").cloned().unwrap_or(Value::Null);
                            match jsonata::eval_template(
                                &cond,
                                "Condition",
                                &io.states(&[]),
                                io.vars,
                                cx.host,
                            )? {
                                Value::Bool(b) => b,
                                other => {
                                    return Err(Failure::query_evaluation(format!(
                                        "The Condition field evaluated to a non-boolean value: {other}"
                                    )));
                                }
                            }
                        }
                    };
                    if matched {
                        let rule_common = crate::definition::Common {
                            assign: rule.get("Assign").cloned(),
                            output: rule.get("Output").cloned(),
                            input_path: state.common.input_path.clone(),
                            output_path: state.common.output_path.clone(),
                            ..Default::default()
                        };
                        let rio = Io {
                            common: &rule_common,
                            ..io
                        };
                        let next = rule.get("Next").and_then(Value::as_str).map(str::to_string);
                        return Ok(Flow::Leave {
                            finished: rio.finish(None, cx.host)?,
                            next,
                        });
                    }
                }
                match &c.default {
                    Some(d) => Ok(Flow::Leave {
                        finished: io.finish(None, cx.host)?,
                        next: Some(d.clone()),
                    }),
                    None => Err(Failure::new(names::NO_CHOICE_MATCHED, "No Matches!")),
                }
            }
            Kind::Wait(w) => {
                let io = self.io(tid, state, &context);
                let eff = io.effective_input()?;
                let now = cx.host.now_ms();
                let due = self.wait_due(cx, w, &io, &eff, now)?;
                // AWS keeps delays in 32-bit seconds.
                if (due - now) / 1000 > i64::from(i32::MAX) {
                    return Err(Failure::runtime("Wait state delay is too long."));
                }
                if due <= now {
                    return Ok(Flow::Leave {
                        finished: io.finish(None, cx.host)?,
                        next,
                    });
                }
                let timer = self.new_timer(cx, tid, Wake::Wait, due);
                self.threads.get_mut(&tid).unwrap().status = TStatus::Timer { timer };
                Ok(Flow::Wait)
            }
            Kind::Task(task) => self.start_task(cx, tid, state, task, &context),
            Kind::Parallel(p) => {
                let io = self.io(tid, state, &context);
                let eff = io.effective_input()?;
                let branch_input = io.parameters(&eff, cx.host)?;
                let n = p.branches.len();
                self.emit(cx, tid, "ParallelStateStarted", None);
                let pending: VecDeque<(usize, Value)> =
                    (0..n).map(|i| (i, branch_input.clone())).collect();
                self.join(cx, tid, state, false, pending, 0, None, None, eff);
                Ok(Flow::Wait)
            }
            Kind::Map(map) => self.start_map(cx, tid, state, map, &context),
        }
    }

    fn fail_state(
        &mut self,
        cx: &mut Cx,
        tid: u64,
        state: &State,
        fail: &crate::definition::Fail,
        context: &Value,
    ) -> Result<Failure, Failure> {
        let io = self.io(tid, state, context);
        let field = |v: &Option<Value>,
                     path: &Option<String>,
                     name: &str,
                     host: &mut dyn crate::Host|
         -> Result<Option<String>, Failure> {
            if let Some(p) = path {
                return match jsonpath::eval_expression(p, name, &io.scope(io.input), host)? {
                    Value::String(s) => Ok(Some(s)),
                    other => Ok(Some(other.to_string())),
                };
            }
            match v {
                None => Ok(None),
                Some(v) if io.lang == QueryLanguage::Jsonata => {
                    match jsonata::eval_template(
                        v,
                        name.trim_end_matches("Path"),
                        &io.states(&[]),
                        io.vars,
                        host,
                    )? {
                        Value::String(s) => Ok(Some(s)),
                        Value::Null => Ok(None),
                        other => Ok(Some(other.to_string())),
                    }
                }
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Ok(Some(other.to_string())),
            }
        };
        let error = field(&fail.error, &fail.error_path, "ErrorPath", cx.host)?;
        let cause = field(&fail.cause, &fail.cause_path, "CausePath", cx.host)?;
        // A Fail state's failure is never caught or retried inside the state.
        Ok(Failure {
            error,
            cause,
            located: false,
        })
    }

    fn wait_due(
        &self,
        cx: &mut Cx,
        w: &crate::definition::Wait,
        io: &Io,
        eff: &Value,
        now: i64,
    ) -> Result<i64, Failure> {
        let jsonata = io.lang == QueryLanguage::Jsonata;
        let eval = |v: &Value, field: &str, host: &mut dyn crate::Host| -> Result<Value, Failure> {
            if jsonata {
                jsonata::eval_template(v, field, &io.states(&[]), io.vars, host)
            } else {
                Ok(v.clone())
            }
        };
        if let Some(s) = &w.seconds {
            let v = eval(s, "Seconds", cx.host)?;
            let secs = v
                .as_i64()
                .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64));
            return match secs {
                Some(s) if s >= 0 => Ok(now + s * 1000),
                _ => Err(Failure::query_evaluation(format!(
                    "The Seconds field must be a non-negative integer, but was: {v}"
                ))),
            };
        }
        if let Some(p) = &w.seconds_path {
            let v = jsonpath::read(p, &io.scope(eff))?.ok_or_else(|| {
                Failure::runtime(format!(
                    "The SecondsPath parameter does not reference an input value: {p}"
                ))
            })?;
            let secs = match &v {
                Value::Number(n) if n.is_i64() || n.is_u64() => n.as_i64(),
                _ => None,
            };
            return match secs {
                Some(s) if s < 0 => Err(Failure::runtime(format!(
                    "The SecondsPath parameter references a negative value: {p} == {v}"
                ))),
                Some(s) => Ok(now + s * 1000),
                None => Err(Failure::runtime(format!(
                    "The SecondsPath parameter cannot be parsed as a long value: {p} == {v}"
                ))),
            };
        }
        if let Some(ts) = &w.timestamp {
            let v = eval(ts, "Timestamp", cx.host)?;
            let text = v
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string());
            return time::parse_rfc3339_ms(&text).ok_or_else(|| {
                Failure::query_evaluation(format!(
                    "The Timestamp field cannot be parsed as an ISO-8601 extended offset date-time format string: {text}"
                ))
            });
        }
        if let Some(p) = &w.timestamp_path {
            let v = jsonpath::read(p, &io.scope(eff))?.ok_or_else(|| {
                Failure::runtime(format!(
                    "The TimestampPath parameter does not reference an input value: {p}"
                ))
            })?;
            let text = v
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string());
            return time::parse_rfc3339_ms(&text).ok_or_else(|| {
                Failure::runtime(format!(
                    "The TimestampPath parameter does not reference a valid ISO-8601 extended offset date-time format string: {p} == {text}"
                ))
            });
        }
        Ok(now)
    }

    pub(super) fn wait_done(&mut self, cx: &mut Cx, tid: u64) {
        let Some(state) = self.state_of(cx, tid) else {
            return;
        };
        let context = self.context_for(tid, state);
        let next = state.common.next.clone();
        let io = self.io(tid, state, &context);
        let flow = io
            .finish(None, cx.host)
            .map(|finished| Flow::Leave { finished, next });
        self.threads.get_mut(&tid).unwrap().status = TStatus::Ready;
        self.after(cx, tid, state, flow);
    }

    fn start_task(
        &mut self,
        cx: &mut Cx,
        tid: u64,
        state: &State,
        task: &crate::definition::Task,
        context: &Value,
    ) -> Result<Flow, Failure> {
        let resource = task.resource.as_str().unwrap_or_default().to_string();
        let activity = is_activity(&resource);
        // An activity's worker answers with a task token as a callback task does.
        let token = (activity || resource.ends_with(".waitForTaskToken")).then(|| cx.host.uuid());
        let mut context = context.clone();
        if let Some(tok) = &token {
            context["Task"] = json!({"Token": tok});
        }
        let io = self.io(tid, state, &context);
        let eff = io.effective_input()?;
        let input = io.parameters(&eff, cx.host)?;
        let number = |v: &Option<Value>,
                      path: &Option<String>,
                      field: &str,
                      host: &mut dyn crate::Host|
         -> Result<Option<u64>, Failure> {
            if let Some(p) = path {
                let v = jsonpath::read(p, &io.scope(&eff))?.ok_or_else(|| {
                    Failure::runtime(format!(
                        "Invalid path '{p}' : No results for path: {}",
                        choice::bracketed(p)
                    ))
                })?;
                return v.as_u64().map(Some).ok_or_else(|| {
                    Failure::runtime(format!("The {field}Path field refers to value \"{v}\" which is not a valid integer: {p}"))
                });
            }
            match v {
                None => Ok(None),
                Some(v) => {
                    let v = if io.lang == QueryLanguage::Jsonata {
                        jsonata::eval_template(v, field, &io.states(&[]), io.vars, host)?
                    } else {
                        v.clone()
                    };
                    v.as_u64().map(Some).ok_or_else(|| {
                        Failure::query_evaluation(format!(
                            "The {field} field must be a positive integer, but was: {v}"
                        ))
                    })
                }
            }
        };
        let timeout = number(
            &task.timeout_seconds,
            &task.timeout_seconds_path,
            "TimeoutSeconds",
            cx.host,
        )?;
        let heartbeat = number(
            &task.heartbeat_seconds,
            &task.heartbeat_seconds_path,
            "HeartbeatSeconds",
            cx.host,
        )?;
        let credentials = task.credentials.clone();
        let (attempt, entered) = {
            let t = &self.threads[&tid];
            (t.retry_count, t.entered_event)
        };
        let task_id = self.new_id();
        if activity {
            // AWS records ActivityScheduled, and ActivityStarted once a worker takes the task.
            let mut sched = Map::new();
            sched.insert("resource".into(), json!(resource));
            sched.insert("input".into(), json!(input.to_string()));
            sched.insert("inputDetails".into(), json!({"truncated": false}));
            if let Some(t) = timeout {
                sched.insert("timeoutInSeconds".into(), json!(t));
            }
            if let Some(h) = heartbeat {
                sched.insert("heartbeatInSeconds".into(), json!(h));
            }
            self.emit(cx, tid, "ActivityScheduled", Some(Value::Object(sched)));
        }
        let mut sched = Map::new();
        sched.insert("resourceType".into(), json!(resource_type(&resource)));
        sched.insert("resource".into(), json!(resource_name(&resource)));
        // The region the execution runs in, as its ARN names it.
        let region = self
            .info
            .execution_arn
            .split(':')
            .nth(3)
            .unwrap_or_default();
        sched.insert("region".into(), json!(region));
        sched.insert("parameters".into(), json!(input.to_string()));
        if let Some(t) = timeout {
            sched.insert("timeoutInSeconds".into(), json!(t));
        }
        if let Some(h) = heartbeat {
            sched.insert("heartbeatInSeconds".into(), json!(h));
        }
        if !activity {
            self.emit(cx, tid, "TaskScheduled", Some(Value::Object(sched)));
            self.emit(
                cx,
                tid,
                "TaskStarted",
                Some(json!({"resourceType": resource_type(&resource), "resource": resource_name(&resource)})),
            );
        }
        let now = cx.host.now_ms();
        let deadline = match (timeout, heartbeat) {
            (Some(t), Some(h)) if h < t => Some((h, true)),
            (Some(t), _) => Some((t, false)),
            (None, Some(h)) => Some((h, true)),
            (None, None) => None,
        };
        let timer = deadline.map(|(secs, hb)| {
            self.new_timer(
                cx,
                tid,
                Wake::TaskTimeout { heartbeat: hb },
                now + secs as i64 * 1000,
            )
        });
        self.tasks.insert(task_id, (tid, timer));
        let t = self.threads.get_mut(&tid).unwrap();
        t.status = TStatus::Task { task: task_id };
        t.task_heartbeat = heartbeat;
        cx.step.effects.push(Effect::Invoke(Box::new(TaskRequest {
            task: task_id,
            state: t.state.clone(),
            resource,
            input,
            idempotency_key: format!("{}:{entered}:{attempt}", self.info.execution_arn),
            timeout_seconds: timeout,
            heartbeat_seconds: heartbeat,
            task_token: token,
            credentials,
        })));
        Ok(Flow::Wait)
    }

    pub(super) fn task_done(&mut self, cx: &mut Cx, tid: u64, result: Result<Value, Failure>) {
        let Some(state) = self.state_of(cx, tid) else {
            return;
        };
        let Kind::Task(task) = &state.kind else {
            return;
        };
        let resource = task.resource.as_str().unwrap_or_default();
        let activity = is_activity(resource);
        self.threads.get_mut(&tid).unwrap().status = TStatus::Ready;
        let flow = match result {
            Ok(output) => {
                let mut d = Map::new();
                if !activity {
                    d.insert("resourceType".into(), json!(resource_type(resource)));
                    d.insert("resource".into(), json!(resource_name(resource)));
                }
                d.insert("output".into(), json!(output.to_string()));
                d.insert("outputDetails".into(), json!({"truncated": false}));
                let kind = if activity {
                    "ActivitySucceeded"
                } else {
                    "TaskSucceeded"
                };
                self.emit(cx, tid, kind, Some(Value::Object(d)));
                let context = self.context_for(tid, state);
                let io = self.io(tid, state, &context);
                let next = state.common.next.clone();
                io.finish(Some(output), cx.host)
                    .map(|finished| Flow::Leave { finished, next })
            }
            Err(f) => {
                let mut d = Map::new();
                if !activity {
                    d.insert("resourceType".into(), json!(resource_type(resource)));
                    d.insert("resource".into(), json!(resource_name(resource)));
                }
                if let Some(e) = &f.error {
                    d.insert("error".into(), json!(e));
                }
                if let Some(c) = &f.cause {
                    d.insert("cause".into(), json!(c));
                }
                if !matches!(
                    f.error.as_deref(),
                    Some("States.Timeout" | "States.HeartbeatTimeout")
                ) {
                    let kind = if activity {
                        "ActivityFailed"
                    } else {
                        "TaskFailed"
                    };
                    self.emit(cx, tid, kind, Some(Value::Object(d)));
                }
                Err(f)
            }
        };
        self.after(cx, tid, state, flow);
    }

    /// Leaves the state, waits, or handles its failure.
    pub(super) fn after(
        &mut self,
        cx: &mut Cx,
        tid: u64,
        state: &State,
        flow: Result<Flow, Failure>,
    ) {
        match flow {
            Ok(Flow::Wait) => {}
            Ok(Flow::Succeed(finished)) => {
                self.exit(cx, tid, state, &finished);
                self.thread_done(cx, tid, Ok(finished.output));
            }
            Ok(Flow::Leave { finished, next }) => {
                let text = finished.output.to_string();
                if text.len() > super::MAX_PAYLOAD_BYTES {
                    let name = &self.threads[&tid].state;
                    let f = Failure::new(
                        names::DATA_LIMIT_EXCEEDED,
                        format!(
                            "The state/task '{name}' returned a result with a size exceeding the maximum number of bytes service limit."
                        ),
                    );
                    self.failed(cx, tid, state, f);
                    return;
                }
                self.exit_with(cx, tid, state, &finished, text);
                match next {
                    Some(n) if !state.common.end => self.transition(tid, n, finished.output),
                    _ => self.thread_done(cx, tid, Ok(finished.output)),
                }
            }
            Err(f) => self.failed(cx, tid, state, f),
        }
    }

    fn exit(&mut self, cx: &mut Cx, tid: u64, state: &State, finished: &Finished) {
        self.exit_with(cx, tid, state, finished, finished.output.to_string());
    }

    /// Records the state's exit, its output given as the JSON text already made of it.
    fn exit_with(
        &mut self,
        cx: &mut Cx,
        tid: u64,
        state: &State,
        finished: &Finished,
        output_text: String,
    ) {
        let t = self.threads.get_mut(&tid).unwrap();
        let mut d = Map::new();
        d.insert("name".into(), json!(t.state));
        d.insert("output".into(), Value::String(output_text));
        d.insert("outputDetails".into(), json!({"truncated": false}));
        // An empty Assign is not recorded, as on AWS.
        if let Some(assigned) = finished.assigned.as_ref().filter(|a| !a.is_empty()) {
            let text: Map<String, Value> = assigned
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.to_string())))
                .collect();
            d.insert("assignedVariables".into(), Value::Object(text));
            d.insert(
                "assignedVariablesDetails".into(),
                json!({"truncated": false}),
            );
            for (k, v) in assigned {
                t.vars.insert(k.clone(), v.clone());
            }
        }
        self.emit(
            cx,
            tid,
            &format!("{}StateExited", state.kind.type_name()),
            Some(Value::Object(d)),
        );
    }

    fn transition(&mut self, tid: u64, next: String, output: Value) {
        let t = self.threads.get_mut(&tid).unwrap();
        t.state = next;
        t.input = output;
        t.retries.clear();
        t.retry_count = 0;
        t.status = TStatus::Ready;
    }

    /// A state failed: Retry, else Catch, else the thread fails.
    pub(super) fn failed(&mut self, cx: &mut Cx, tid: u64, state: &State, f: Failure) {
        // A Map or Parallel that fails on its own fields (a States.Runtime error before any
        // branch ran) records no MapStateFailed / ParallelStateFailed, as on AWS.
        let record = f.error.as_deref() != Some(names::RUNTIME);
        let f = self.locate(cx, tid, state, f);
        self.settle(cx, tid, state, f, record);
    }

    /// A Map's iteration or a Parallel's branch failed the state.
    pub(super) fn branch_failed(&mut self, cx: &mut Cx, tid: u64, state: &State, f: Failure) {
        self.settle(cx, tid, state, f, true);
    }

    /// Prefixes a located failure with the state and entry event; JSONata evaluation failures
    /// are also recorded as an EvaluationFailed event, as AWS does.
    fn locate(&mut self, cx: &mut Cx, tid: u64, state: &State, mut f: Failure) -> Failure {
        if !f.located {
            return f;
        }
        let t = &self.threads[&tid];
        let cause = f.cause.take().unwrap_or_default();
        let location = cause
            .split_once("specified for the field '")
            .and_then(|(_, rest)| rest.split_once('\''))
            .map(|(field, _)| field.to_string())
            .or_else(|| {
                cause
                    .starts_with("The Timestamp field")
                    .then(|| "Timestamp".to_string())
            });
        f.cause = Some(format!(
            "An error occurred while executing the state '{}' (entered at the event id #{}). {cause}",
            t.state, t.entered_event
        ));
        f.located = false;
        if f.error.as_deref() == Some(names::QUERY_EVALUATION_ERROR) {
            let mut d = Map::new();
            d.insert("cause".into(), json!(f.cause));
            d.insert("error".into(), json!(f.error));
            if let Some(l) = location {
                d.insert("location".into(), json!(l));
            }
            d.insert("state".into(), json!(t.state));
            // A Wait state's evaluation follows its entry; other states' evaluation is linked
            // to what preceded the entry.
            let prev = if matches!(state.kind, Kind::Wait(_)) {
                t.entered_event
            } else {
                t.entered_prev
            };
            let id = self.emit_after(cx, prev, "EvaluationFailed", Some(Value::Object(d)));
            self.threads.get_mut(&tid).unwrap().last_event = id;
        }
        f
    }

    /// Retry, else Catch, else the thread fails (the failure already located). A Map or
    /// Parallel state records its failure only once no Retrier takes it, as AWS does.
    fn settle(&mut self, cx: &mut Cx, tid: u64, state: &State, f: Failure, record: bool) {
        let in_task = matches!(state.kind, Kind::Task(_));
        let error = f.error_name().to_string();
        for (i, r) in state.common.retry.iter().enumerate() {
            if !error_matches(&r.error_equals, &error, in_task) {
                continue;
            }
            let t = self.threads.get_mut(&tid).unwrap();
            if t.retries.len() < state.common.retry.len() {
                t.retries.resize(state.common.retry.len(), 0);
            }
            let count = t.retries[i];
            if count >= r.attempts() {
                break;
            }
            t.retries[i] += 1;
            t.retry_count += 1;
            let mut delay = r.interval() * r.backoff().powi(count as i32);
            if let Some(max) = r.max_delay_seconds {
                delay = delay.min(max);
            }
            if r.jitter_strategy.as_deref() == Some("FULL") {
                delay *= cx.host.random();
            }
            let at = cx.host.now_ms() + (delay * 1000.0) as i64;
            let timer = self.new_timer(cx, tid, Wake::Retry, at);
            self.threads.get_mut(&tid).unwrap().status = TStatus::Timer { timer };
            return;
        }
        match &state.kind {
            _ if !record => {}
            Kind::Map(_) => {
                if self.is_distributed(cx, tid) {
                    self.emit(cx, tid, "MapRunFailed", None);
                }
                self.emit(cx, tid, "MapStateFailed", None);
            }
            Kind::Parallel(_) => {
                self.emit(cx, tid, "ParallelStateFailed", None);
            }
            _ => {}
        }
        for c in &state.common.catch {
            if !error_matches(&c.error_equals, &error, in_task) {
                continue;
            }
            let context = self.context_for(tid, state);
            let io = self.io(tid, state, &context);
            match io.caught(c, error_output(&f), cx.host) {
                Ok(finished) => {
                    self.exit(cx, tid, state, &finished);
                    self.transition(tid, c.next.clone(), finished.output);
                }
                Err(e) => self.thread_done(cx, tid, Err(e)),
            }
            return;
        }
        self.thread_done(cx, tid, Err(f));
    }
}

/// Whether a Task's resource is an activity (`arn:aws:states:REGION:ACCOUNT:activity:NAME`).
pub(crate) fn is_activity(resource: &str) -> bool {
    resource_type(resource) == "activity"
}

/// `arn:aws:states:::lambda:invoke` → `lambda`; an activity ARN → `activity`.
fn resource_type(resource: &str) -> String {
    let parts: Vec<&str> = resource.split(':').collect();
    if parts.get(2) == Some(&"states") && parts.get(5) == Some(&"activity") {
        return "activity".into();
    }
    if parts.get(2) == Some(&"lambda") {
        return "lambda".into();
    }
    parts.get(5).map(|s| s.to_string()).unwrap_or_default()
}

/// `arn:aws:states:::lambda:invoke` → `invoke`; other ARNs stay whole.
fn resource_name(resource: &str) -> String {
    let parts: Vec<&str> = resource.split(':').collect();
    if parts.get(2) == Some(&"states") && parts.get(3) == Some(&"") {
        return parts[6..].join(":");
    }
    resource.to_string()
}
