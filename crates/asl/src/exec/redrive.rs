//! RedriveExecution: a FAILED, TIMED_OUT or ABORTED execution runs again from where it
//! stopped.

use serde_json::json;

use super::{Cx, Execution, MAX_HISTORY_EVENTS, Status, Step, TStatus, Wake};
use crate::definition::StateMachine;
use crate::env::Host;

impl Execution {
    /// Why the execution cannot be redriven, in AWS's words (`redriveStatusReason`); `None`
    /// when it can.
    pub fn redrive_blocker(&self) -> Option<&'static str> {
        match self.status {
            Status::Running => Some("Execution is RUNNING and cannot be redriven"),
            Status::Succeeded => Some("Execution is SUCCEEDED and cannot be redriven"),
            _ if self.next_event + 2 >= MAX_HISTORY_EVENTS => {
                Some("Execution history event limit exceeded")
            }
            _ if !self.threads.contains_key(&0) => {
                Some("Execution was started before the launch of RedriveExecution")
            }
            _ => None,
        }
    }

    /// RedriveExecution: a FAILED, TIMED_OUT or ABORTED execution runs again from the
    /// top-level state that did not finish, with that state's input and the variables it saw,
    /// its retry counts reset; states that succeeded before are not run again. The history
    /// goes on with `ExecutionRedriven`, and `$$.Execution.RedriveCount` counts the redrives.
    ///
    /// A top-level Map or Parallel state that failed runs again only the iterations or branches
    /// that had not succeeded (each of those from its start); the others keep their results.
    /// An execution TimeoutSeconds starts counting again from the redrive. Does nothing (an empty step) when [`Execution::redrive_blocker`] says no.
    pub fn redrive(&mut self, def: &StateMachine, host: &mut dyn Host) -> Step {
        let mut cx = Cx {
            def,
            host,
            step: Step::default(),
        };
        if self.redrive_blocker().is_some() {
            return cx.step;
        }
        self.info.redrive_count += 1;
        self.status = Status::Running;
        self.output = None;
        self.error = None;
        self.cause = None;
        self.timers.clear();
        self.tasks.clear();
        let prev = self.next_event - 1;
        let id = self.emit_after(
            &mut cx,
            prev,
            "ExecutionRedriven",
            Some(json!({"redriveCount": self.info.redrive_count})),
        );
        if let Some(secs) = def.timeout_seconds {
            let at = cx.host.now_ms() + (secs as i64) * 1000;
            self.new_timer(&mut cx, 0, Wake::Execution, at);
        }
        let t = self
            .threads
            .get_mut(&0)
            .expect("a redrivable execution has thread 0");
        let retriers = Self::machine_of(def, &t.machine)
            .state(&t.state)
            .map_or(0, |s| s.common.retry.len());
        t.status = TStatus::Ready;
        t.retries = vec![0; retriers];
        t.retry_count = 0;
        t.retrying = false;
        t.task_heartbeat = None;
        t.in_task = false;
        t.last_event = id;
        t.redriving = true;
        self.run(&mut cx);
        cx.step
    }
}
