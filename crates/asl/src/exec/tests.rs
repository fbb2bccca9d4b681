use serde_json::json;

use super::*;
use crate::env::FixedHost;

fn machine(v: Value) -> StateMachine {
    StateMachine::from_value(&v).unwrap()
}

/// A virtual-clock runtime that answers tasks with a closure.
struct Scripted<F: FnMut(&TaskRequest) -> Event>(FixedHost, F);

impl<F: FnMut(&TaskRequest) -> Event> Host for Scripted<F> {
    fn now_ms(&self) -> i64 {
        self.0.now_ms
    }
    fn random(&mut self) -> f64 {
        self.0.random()
    }
    fn uuid(&mut self) -> String {
        self.0.uuid()
    }
}

impl<F: FnMut(&TaskRequest) -> Event> drive::Runtime for Scripted<F> {
    fn sleep_until(&mut self, at_ms: i64) {
        self.0.now_ms = at_ms;
    }
    fn invoke(&mut self, req: &TaskRequest) -> Event {
        (self.1)(req)
    }
    fn on_event(&mut self, _event: &HistoryEvent) {}
}

/// Runs an execution to its end, answering tasks with `answer`; returns it and its history.
fn drive(
    def: &StateMachine,
    input: Value,
    answer: impl FnMut(&TaskRequest) -> Event,
) -> (Execution, Vec<HistoryEvent>) {
    let history = std::cell::RefCell::new(Vec::new());
    struct Recording<'h, R>(R, &'h std::cell::RefCell<Vec<HistoryEvent>>);
    impl<R: Host> Host for Recording<'_, R> {
        fn now_ms(&self) -> i64 {
            self.0.now_ms()
        }
        fn random(&mut self) -> f64 {
            self.0.random()
        }
        fn uuid(&mut self) -> String {
            self.0.uuid()
        }
    }
    impl<R: drive::Runtime> drive::Runtime for Recording<'_, R> {
        fn sleep_until(&mut self, at_ms: i64) {
            self.0.sleep_until(at_ms)
        }
        fn invoke(&mut self, req: &TaskRequest) -> Event {
            self.0.invoke(req)
        }
        fn on_event(&mut self, e: &HistoryEvent) {
            self.1.borrow_mut().push(e.clone());
        }
    }
    let mut rt = Recording(
        Scripted(FixedHost::new(1_700_000_000_000, 9), answer),
        &history,
    );
    let ex = drive::run_to_end(
        def,
        ExecutionInfo::local("m", "e", 1_700_000_000_000),
        input,
        &mut rt,
    );
    (ex, history.into_inner())
}

#[test]
fn pass_chain_reaches_the_end_with_history() {
    let def = machine(json!({"StartAt": "A", "States": {
        "A": {"Type": "Pass", "Result": {"x": 1}, "Next": "B"},
        "B": {"Type": "Pass", "End": true}}}));
    let (ex, history) = drive(&def, json!({}), |_| unreachable!());
    assert_eq!(ex.status, Status::Succeeded);
    assert_eq!(ex.output, Some(json!({"x": 1})));
    let kinds: Vec<&str> = history.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "ExecutionStarted",
            "PassStateEntered",
            "PassStateExited",
            "PassStateEntered",
            "PassStateExited",
            "ExecutionSucceeded"
        ]
    );
    assert!(history.windows(2).all(|w| w[1].id == w[0].id + 1));
    // As on AWS: the first state's entry links to no earlier event, the rest form a chain.
    assert_eq!(history[1].previous_event_id, 0);
    assert!(
        history
            .windows(2)
            .skip(1)
            .all(|w| w[1].previous_event_id == w[0].id)
    );
}

#[test]
fn task_retries_then_catches() {
    let def = machine(json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
              "Retry": [{"ErrorEquals": ["Boom"], "MaxAttempts": 2, "IntervalSeconds": 1}],
              "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.err", "Next": "Caught"}], "End": true},
        "Caught": {"Type": "Pass", "End": true}}}));
    let mut attempts = Vec::new();
    let (ex, _) = drive(&def, json!({"a": 1}), |req| {
        attempts.push(req.idempotency_key.clone());
        Event::TaskFailed {
            task: req.task,
            error: Some("Boom".into()),
            cause: Some("bad".into()),
        }
    });
    assert_eq!(attempts.len(), 3, "one try and two retries");
    let unique: std::collections::BTreeSet<_> = attempts.iter().collect();
    assert_eq!(unique.len(), 3, "each attempt has its own idempotency key");
    assert_eq!(ex.status, Status::Succeeded);
    assert_eq!(
        ex.output,
        Some(json!({"a": 1, "err": {"Error": "Boom", "Cause": "bad"}}))
    );
}

#[test]
fn map_runs_every_item_and_keeps_order() {
    let def = machine(json!({"StartAt": "M", "States": {
        "M": {"Type": "Map", "MaxConcurrency": 2, "ItemProcessor": {"StartAt": "T", "States": {
            "T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": true}}}, "End": true}}}));
    let (ex, _) = drive(&def, json!([1, 2, 3, 4, 5]), |req| Event::TaskSucceeded {
        task: req.task,
        output: json!(req.input.as_i64().unwrap() * 10),
    });
    assert_eq!(ex.status, Status::Succeeded);
    assert_eq!(ex.output, Some(json!([10, 20, 30, 40, 50])));
}

#[test]
fn parallel_branch_failure_fails_the_execution() {
    let def = machine(json!({"StartAt": "P", "States": {
        "P": {"Type": "Parallel", "End": true, "Branches": [
            {"StartAt": "ok", "States": {"ok": {"Type": "Pass", "End": true}}},
            {"StartAt": "bad", "States": {"bad": {"Type": "Fail", "Error": "E", "Cause": "C"}}}]}}}));
    let (ex, _) = drive(&def, json!({}), |_| unreachable!());
    assert_eq!(ex.status, Status::Failed);
    assert_eq!(ex.error.as_deref(), Some("E"));
    assert_eq!(ex.cause.as_deref(), Some("C"));
}

#[test]
fn wait_sets_a_timer_and_execution_timeout_wins() {
    let def = machine(json!({"TimeoutSeconds": 5, "StartAt": "W", "States": {
        "W": {"Type": "Wait", "Seconds": 60, "End": true}}}));
    let (ex, history) = drive(&def, json!({}), |_| unreachable!());
    assert_eq!(ex.status, Status::TimedOut);
    assert_eq!(history.last().unwrap().kind, "ExecutionTimedOut");
}

#[test]
fn execution_state_survives_serialisation_between_steps() {
    let def = machine(json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Next": "Done"},
        "Done": {"Type": "Pass", "End": true}}}));
    let mut host = FixedHost::new(0, 1);
    let mut ex = Execution::new(ExecutionInfo::local("m", "e", 0));
    let step = ex.start(&def, json!({"q": 1}), &mut host);
    let Some(Effect::Invoke(req)) = step
        .effects
        .iter()
        .find(|e| matches!(e, Effect::Invoke(_)))
        .cloned()
    else {
        panic!("no task")
    };
    let stored = serde_json::to_string(&ex).unwrap();
    let mut resumed: Execution = serde_json::from_str(&stored).unwrap();
    resumed.handle(
        &def,
        Event::TaskSucceeded {
            task: req.task,
            output: json!({"r": 2}),
        },
        &mut host,
    );
    assert_eq!(resumed.status, Status::Succeeded);
    assert_eq!(resumed.output, Some(json!({"r": 2})));
}

#[test]
fn bad_input_is_described_as_aws_does() {
    let msg = |t: &str| parse_input(t).unwrap_err().message;
    assert_eq!(
        msg(""),
        "Invalid State Machine Execution Input: 'Invalid execution input.'"
    );
    assert_eq!(
        msg("not some json"),
        "Invalid State Machine Execution Input: 'Unrecognized token 'not': was expecting (JSON String, Number, Array, Object or token 'null', 'true' or 'false')'"
    );
    assert_eq!(
        msg("{'not': 'json'"),
        "Invalid State Machine Execution Input: 'Unexpected character (''' (code 39)): was expecting double-quote to start field name'"
    );
    assert_eq!(parse_input("[1, 2]").unwrap(), json!([1, 2]));
    let big = format!("\"{}\"", "x".repeat(MAX_PAYLOAD_BYTES));
    assert_eq!(parse_input(&big).unwrap_err().code, "ValidationException");
}

#[test]
fn a_loop_that_never_waits_fails_at_the_history_limit() {
    use crate::exec::{Execution, ExecutionInfo, MAX_HISTORY_EVENTS, Status};
    let def = crate::StateMachine::from_value(&serde_json::json!({"StartAt": "A", "States": {
        "A": {"Type": "Pass", "Next": "B"},
        "B": {"Type": "Choice", "Choices": [{"Variable": "$.stop", "IsPresent": true, "Next": "End"}], "Default": "A"},
        "End": {"Type": "Succeed"}
    }}))
    .unwrap();
    let mut ex = Execution::new(ExecutionInfo::local("loop", "x", 0));
    let step = ex.start(
        &def,
        serde_json::json!({}),
        &mut crate::FixedHost::new(0, 1),
    );
    assert_eq!(ex.status, Status::Failed);
    let last = step.events.last().unwrap();
    assert_eq!(
        (last.kind.as_str(), last.id),
        ("ExecutionFailed", MAX_HISTORY_EVENTS)
    );
    assert_eq!(ex.error.as_deref(), Some("States.Runtime"));
}

#[test]
fn redrive_runs_again_from_the_state_that_failed() {
    let def = machine(json!({"StartAt": "A", "States": {
        "A": {"Type": "Pass", "Result": 1, "ResultPath": "$.a", "Next": "T"},
        "T": {"Type": "Task", "Resource": "arn:aws:lambda:local:000000000000:function:f",
              "Parameters": {"count.$": "$$.Execution.RedriveCount", "a.$": "$.a"}, "Next": "B"},
        "B": {"Type": "Pass", "End": true}}}));
    let mut host = FixedHost::new(1_000, 7);
    let mut ex = Execution::new(ExecutionInfo::local("m", "e", 1_000));
    let step = ex.start(&def, json!({}), &mut host);
    let task = match &step.effects[..] {
        [Effect::Invoke(req)] => {
            assert_eq!(req.input, json!({"count": 0, "a": 1}));
            req.task
        }
        other => panic!("{other:?}"),
    };
    let step = ex.handle(
        &def,
        Event::TaskFailed {
            task,
            error: Some("Boom".into()),
            cause: None,
        },
        &mut host,
    );
    assert_eq!(ex.status, Status::Failed);
    assert!(step.effects.contains(&Effect::Finish));
    assert_eq!(ex.redrive_blocker(), None);
    let failed_id = step.events.last().unwrap().id;

    let step = ex.redrive(&def, &mut host);
    assert_eq!(ex.status, Status::Running);
    assert_eq!(ex.error, None);
    let kinds: Vec<&str> = step.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "ExecutionRedriven",
            "TaskStateEntered",
            "TaskScheduled",
            "TaskStarted"
        ]
    );
    assert_eq!(step.events[0].previous_event_id, failed_id);
    assert_eq!(step.events[0].details, Some(json!({"redriveCount": 1})));
    assert_eq!(step.events[1].previous_event_id, step.events[0].id);
    let task = match &step.effects[..] {
        [Effect::Invoke(req)] => {
            // The state's input as it was: Pass "A" is not run again.
            assert_eq!(req.input, json!({"count": 1, "a": 1}));
            req.task
        }
        other => panic!("{other:?}"),
    };
    ex.handle(
        &def,
        Event::TaskSucceeded {
            task,
            output: json!("ok"),
        },
        &mut host,
    );
    assert_eq!(ex.status, Status::Succeeded);
    assert_eq!(ex.output, Some(json!("ok")));
    assert_eq!(
        ex.redrive_blocker(),
        Some("Execution is SUCCEEDED and cannot be redriven")
    );
    assert!(ex.redrive(&def, &mut host).events.is_empty());
}

#[test]
fn a_stopped_execution_redrives_from_where_it_stood() {
    let def = machine(json!({"StartAt": "W", "States": {
        "W": {"Type": "Wait", "Seconds": 10, "Next": "P"},
        "P": {"Type": "Pass", "End": true}}}));
    let mut host = FixedHost::new(1_000, 7);
    let mut ex = Execution::new(ExecutionInfo::local("m", "e", 1_000));
    ex.start(&def, json!({"x": 1}), &mut host);
    assert_eq!(
        ex.redrive_blocker(),
        Some("Execution is RUNNING and cannot be redriven")
    );
    ex.handle(
        &def,
        Event::Stop {
            error: None,
            cause: None,
        },
        &mut host,
    );
    assert_eq!(ex.status, Status::Aborted);
    let step = ex.redrive(&def, &mut host);
    let kinds: Vec<&str> = step.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["ExecutionRedriven", "WaitStateEntered"]);
    let timer = match &step.effects[..] {
        [Effect::StartTimer { timer, .. }] => *timer,
        other => panic!("{other:?}"),
    };
    ex.handle(&def, Event::TimerFired { timer }, &mut host);
    assert_eq!(ex.status, Status::Succeeded);
    assert_eq!(ex.output, Some(json!({"x": 1})));
}

#[test]
fn redriving_a_failed_map_runs_only_the_iterations_that_did_not_succeed() {
    let def = machine(json!({"StartAt": "Each", "States": {"Each": {"Type": "Map",
        "ItemProcessor": {"StartAt": "T", "States": {"T": {"Type": "Task",
            "Resource": "arn:aws:lambda:local:000000000000:function:f", "End": true}}},
        "End": true}}}));
    let mut host = FixedHost::new(1_000, 7);
    let mut ex = Execution::new(ExecutionInfo::local("m", "e", 1_000));
    let step = ex.start(&def, json!([10, 20, 30, 40]), &mut host);
    let reqs: Vec<TaskRequest> = step
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::Invoke(r) => Some((**r).clone()),
            _ => None,
        })
        .collect();
    assert_eq!(reqs.len(), 4);
    // Items 10, 20 and 40 succeed; 30 fails and fails the Map (40 finishes first).
    for r in [&reqs[0], &reqs[1], &reqs[3]] {
        ex.handle(
            &def,
            Event::TaskSucceeded {
                task: r.task,
                output: json!({"done": r.input}),
            },
            &mut host,
        );
    }
    ex.handle(
        &def,
        Event::TaskFailed {
            task: reqs[2].task,
            error: Some("Boom".into()),
            cause: None,
        },
        &mut host,
    );
    assert_eq!(ex.status, Status::Failed);
    let step = ex.redrive(&def, &mut host);
    let again: Vec<TaskRequest> = step
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::Invoke(r) => Some((**r).clone()),
            _ => None,
        })
        .collect();
    assert_eq!(again.len(), 1, "only the failed iteration runs again");
    assert_eq!(again[0].input, json!(30));
    let started = step
        .events
        .iter()
        .filter(|e| e.kind == "MapIterationStarted")
        .count();
    assert_eq!(started, 1);
    ex.handle(
        &def,
        Event::TaskSucceeded {
            task: again[0].task,
            output: json!({"done": 30}),
        },
        &mut host,
    );
    assert_eq!(ex.status, Status::Succeeded);
    assert_eq!(
        ex.output,
        Some(json!([{"done": 10}, {"done": 20}, {"done": 30}, {"done": 40}]))
    );
}

#[test]
fn a_retried_map_runs_every_iteration_again() {
    // Kept results serve a redrive only: a Retry of the Map runs it whole, as AWS does.
    let def = machine(json!({"StartAt": "Each", "States": {"Each": {"Type": "Map",
        "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 1}],
        "ItemProcessor": {"StartAt": "T", "States": {"T": {"Type": "Task",
            "Resource": "arn:aws:lambda:local:000000000000:function:f", "End": true}}},
        "End": true}}}));
    let mut calls = Vec::new();
    let (ex, _) = drive(&def, json!([1, 2]), |req| {
        calls.push(req.input.clone());
        if req.input == json!(2) && calls.len() == 2 {
            Event::TaskFailed {
                task: req.task,
                error: Some("Boom".into()),
                cause: None,
            }
        } else {
            Event::TaskSucceeded {
                task: req.task,
                output: req.input.clone(),
            }
        }
    });
    assert_eq!(ex.status, Status::Succeeded);
    assert_eq!(calls, vec![json!(1), json!(2), json!(1), json!(2)]);
}

#[test]
fn redriving_a_stopped_parallel_runs_only_the_unfinished_branch() {
    let task = |name: &str| {
        json!({"StartAt": name, "States": {name: {"Type": "Task",
            "Resource": "arn:aws:lambda:local:000000000000:function:f", "End": true}}})
    };
    let def = machine(
        json!({"StartAt": "Both", "States": {"Both": {"Type": "Parallel",
        "Branches": [task("A"), task("B")], "End": true}}}),
    );
    let mut host = FixedHost::new(1_000, 7);
    let mut ex = Execution::new(ExecutionInfo::local("m", "e", 1_000));
    let step = ex.start(&def, json!({"x": 1}), &mut host);
    let reqs: Vec<TaskRequest> = step
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::Invoke(r) => Some((**r).clone()),
            _ => None,
        })
        .collect();
    assert_eq!(reqs.len(), 2);
    ex.handle(
        &def,
        Event::TaskSucceeded {
            task: reqs[0].task,
            output: json!("a"),
        },
        &mut host,
    );
    ex.handle(
        &def,
        Event::Stop {
            error: None,
            cause: None,
        },
        &mut host,
    );
    assert_eq!(ex.status, Status::Aborted);
    let step = ex.redrive(&def, &mut host);
    let again: Vec<&TaskRequest> = step
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::Invoke(r) => Some(&**r),
            _ => None,
        })
        .collect();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].state, "B");
    let task = again[0].task;
    ex.handle(
        &def,
        Event::TaskSucceeded {
            task,
            output: json!("b"),
        },
        &mut host,
    );
    assert_eq!(ex.status, Status::Succeeded);
    assert_eq!(ex.output, Some(json!(["a", "b"])));
}
