//! Running an execution to its end in one place, for the CLI, tests and benchmarks: the caller
//! supplies the clock (real or virtual), the way to wait for a timer, and task answers.

use super::{Effect, Event, Execution, ExecutionInfo, Status, TaskRequest};
use crate::definition::StateMachine;
use crate::env::Host;
use crate::history::HistoryEvent;

/// What a local run needs from its caller.
pub trait Runtime: Host {
    /// Blocks (or, for a virtual clock, advances) until `at_ms`.
    fn sleep_until(&mut self, at_ms: i64);
    /// Answers a task: `TaskSucceeded` or `TaskFailed` for `req.task`.
    fn invoke(&mut self, req: &TaskRequest) -> Event;
    /// Sees every history event as it is recorded.
    fn on_event(&mut self, _event: &HistoryEvent) {}
}

/// Runs `def` with `input` until the execution ends; timers fire in time order.
pub fn run_to_end(
    def: &StateMachine,
    info: ExecutionInfo,
    input: serde_json::Value,
    rt: &mut dyn Runtime,
) -> Execution {
    run_to_end_with_text(def, info, input, None, rt)
}

/// As [`run_to_end`], recording the input as the caller wrote it (`input_text`) in the history.
pub fn run_to_end_with_text(
    def: &StateMachine,
    info: ExecutionInfo,
    input: serde_json::Value,
    input_text: Option<&str>,
    rt: &mut dyn Runtime,
) -> Execution {
    let mut ex = Execution::new(info);
    ex.input_text = input_text.map(str::to_string);
    let mut step = ex.start(def, input, rt);
    let mut timers: Vec<(i64, u64)> = Vec::new();
    let mut ready: std::collections::VecDeque<Event> = Default::default();
    loop {
        for e in &step.events {
            rt.on_event(e);
        }
        for effect in std::mem::take(&mut step.effects) {
            match effect {
                Effect::Invoke(req) => {
                    let answer = rt.invoke(&req);
                    ready.push_back(answer);
                }
                Effect::StartTimer { timer, at_ms } => timers.push((at_ms, timer)),
                Effect::CancelTask { .. } | Effect::Finish => {}
            }
        }
        if ex.status != Status::Running {
            return ex;
        }
        let event = match ready.pop_front() {
            Some(e) => e,
            None => {
                if timers.is_empty() {
                    // Nothing can wake the execution: only possible if a task never answers.
                    return ex;
                }
                timers.sort_unstable();
                let (at, timer) = timers.remove(0);
                if at > rt.now_ms() {
                    rt.sleep_until(at);
                }
                Event::TimerFired { timer }
            }
        };
        step = ex.handle(def, event, rt);
    }
}

/// A virtual-clock [`Runtime`]: timers fire at once by moving the clock, and every task fails
/// with `States.TaskFailed` naming its resource (no resources are wired in).
pub struct Virtual(pub crate::env::FixedHost);

impl Host for Virtual {
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

impl Runtime for Virtual {
    fn sleep_until(&mut self, at_ms: i64) {
        self.0.now_ms = at_ms;
    }
    fn invoke(&mut self, req: &TaskRequest) -> Event {
        Event::TaskFailed {
            task: req.task,
            error: Some(crate::error::names::TASK_FAILED.into()),
            cause: Some(format!(
                "no handler for resource \"{}\" in this runtime",
                req.resource
            )),
        }
    }
}
