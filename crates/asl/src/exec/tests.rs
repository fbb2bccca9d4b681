use serde_json::json;

use super::*;
use crate::env::FixedHost;

fn machine(v: Value) -> StateMachine {
    StateMachine::from_value(&v).unwrap()
}

/// Runs an execution, answering tasks with `answer` and firing timers in time order.
pub(crate) fn drive(def: &StateMachine, input: Value, mut answer: impl FnMut(&TaskRequest) -> Event) -> (Execution, Vec<HistoryEvent>) {
    let mut host = FixedHost::new(1_700_000_000_000, 9);
    let mut ex = Execution::new(ExecutionInfo::local("m", "e", host.now_ms));
    let mut step = ex.start(def, input, &mut host);
    let mut history = Vec::new();
    let mut timers: Vec<(i64, u64)> = Vec::new();
    let mut queue: VecDeque<Event> = VecDeque::new();
    loop {
        history.extend(step.events.drain(..));
        for e in step.effects.drain(..) {
            match e {
                Effect::Invoke(req) => queue.push_back(answer(&req)),
                Effect::StartTimer { timer, at_ms } => timers.push((at_ms, timer)),
                Effect::CancelTask { .. } | Effect::Finish => {}
            }
        }
        if ex.status != Status::Running {
            return (ex, history);
        }
        let ev = match queue.pop_front() {
            Some(ev) => ev,
            None => {
                timers.sort();
                assert!(!timers.is_empty(), "execution waits on nothing");
                let (at, timer) = timers.remove(0);
                host.now_ms = host.now_ms.max(at);
                Event::TimerFired { timer }
            }
        };
        step = ex.handle(def, ev, &mut host);
    }
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
        ["ExecutionStarted", "PassStateEntered", "PassStateExited", "PassStateEntered", "PassStateExited", "ExecutionSucceeded"]
    );
    assert!(history.windows(2).all(|w| w[1].id == w[0].id + 1 && w[1].previous_event_id == w[0].id));
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
        Event::TaskFailed { task: req.task, error: Some("Boom".into()), cause: Some("bad".into()) }
    });
    assert_eq!(attempts.len(), 3, "one try and two retries");
    let unique: std::collections::BTreeSet<_> = attempts.iter().collect();
    assert_eq!(unique.len(), 3, "each attempt has its own idempotency key");
    assert_eq!(ex.status, Status::Succeeded);
    assert_eq!(ex.output, Some(json!({"a": 1, "err": {"Error": "Boom", "Cause": "bad"}})));
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
    let Some(Effect::Invoke(req)) = step.effects.first().cloned() else { panic!("no task") };
    let stored = serde_json::to_string(&ex).unwrap();
    let mut resumed: Execution = serde_json::from_str(&stored).unwrap();
    resumed.handle(&def, Event::TaskSucceeded { task: req.task, output: json!({"r": 2}) }, &mut host);
    assert_eq!(resumed.status, Status::Succeeded);
    assert_eq!(resumed.output, Some(json!({"r": 2})));
}
