//! Asynchronous Express executions: StartExecution on an EXPRESS state machine runs it in
//! memory on a node, with no history kept, as on AWS (DescribeExecution and
//! GetExecutionHistory do not know Express executions).
//!
//! The start is a message on the Express queue; the node that receives it runs the execution
//! to its end, keeping the message invisible meanwhile, and deletes it after. A node that dies
//! mid-run leaves the message to come back, and another node runs the execution again from
//! its start: at-least-once, as AWS's asynchronous Express executions are. Runs are limited to
//! five minutes (AWS's Express limit); tasks go through the [`crate::ResourceTable`].

use std::time::Duration;

use agentry_asl::{Effect, Event, Execution, ExecutionInfo, Status};
use agentry_queue::{QueueExt, SendMessage};
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use crate::error::{Error, Result};
use crate::resources::TaskError;
use crate::step::host;
use crate::{Engine, now_ms};

/// The longest an Express execution runs.
pub const EXPRESS_LIMIT: Duration = Duration::from_secs(300);

/// A message on the Express queue: run this execution.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct ExpressMessage {
    arn: String,
    account: String,
    machine: String,
    revision: u64,
    name: String,
    input: String,
    start_ms: i64,
    /// The `.sync` task waiting for this execution's end, when a task started it.
    #[serde(default)]
    parent: Option<crate::nested::ParentLink>,
}

impl Engine {
    /// Queues an Express execution; returns its ARN and start date.
    pub(crate) async fn start_express(
        &self,
        machine: &str,
        revision: u64,
        name: Option<&str>,
        input: &str,
        parent: Option<crate::nested::ParentLink>,
    ) -> Result<crate::Started> {
        let name = match name {
            Some(n) => crate::tables::check_name(n)?,
            None => uuid::Uuid::new_v4().to_string(),
        };
        let start_ms = now_ms();
        let arn = format!(
            "arn:aws:states:{}:{}:express:{machine}:{name}:{}",
            self.scope.region,
            self.scope.account,
            uuid::Uuid::new_v4()
        );
        let m = ExpressMessage {
            arn: arn.clone(),
            account: self.scope.account.clone(),
            machine: machine.to_string(),
            revision,
            name,
            input: input.to_string(),
            start_ms,
            parent,
        };
        let body = serde_json::to_string(&m).map_err(|e| Error::Corrupt(e.to_string()))?;
        self.inner
            .queue
            .send(&self.inner.config.express_queue, SendMessage::new(body))
            .await?;
        Ok(crate::Started {
            execution_arn: arn,
            start_date: start_ms,
        })
    }

    /// Receives Express starts and runs them until the node stops.
    pub(crate) async fn express_loop(self) {
        let queue = self.inner.config.express_queue.clone();
        self.run_each(&queue, "express starts", |engine, m| async move {
            let queue = &engine.inner.config.express_queue;
            let keep_alive = engine.keep_invisible(queue, &m.receipt_handle);
            match serde_json::from_str::<ExpressMessage>(&m.body) {
                Ok(start) => {
                    if let Err(e) = engine.run_express(start).await {
                        tracing::warn!(error = %e, "an express execution could not run");
                    }
                }
                Err(e) => tracing::error!(error = %e, "dropping an unreadable express start"),
            }
            drop(keep_alive);
            if let Err(e) = engine.inner.queue.delete(queue, &m.receipt_handle).await {
                tracing::warn!(error = %e, "deleting an express start failed; it runs again");
            }
        })
        .await
    }

    /// Runs one Express execution to its end in memory; a `.sync` parent is then handed the
    /// result (through the work queue: a run repeated after a node died hands it again, and
    /// the parent takes the first).
    async fn run_express(&self, m: ExpressMessage) -> Result<Status> {
        let (machine, revision, parent) = (m.machine.clone(), m.revision, m.parent.clone());
        let ex = self.run_express_to_end(m).await?;
        let status = ex.status;
        let record = crate::record::Record {
            execution: ex,
            machine_name: machine,
            revision,
            version: None,
            alias: None,
            started: true,
            tokens: Default::default(),
            timers: Default::default(),
            stop_ms: Some(now_ms()),
            redrive_ms: None,
            redrive_token: None,
            parent,
            children: Default::default(),
        };
        if let Some((execution, work)) = Engine::parent_notice(&record) {
            self.enqueue(&execution, work, Duration::ZERO).await?;
        }
        Ok(status)
    }

    async fn run_express_to_end(&self, m: ExpressMessage) -> Result<Execution> {
        let def = self.definition(&m.account, &m.machine, m.revision).await?;
        let mut def = (*def).clone();
        let limit = EXPRESS_LIMIT.as_secs();
        def.timeout_seconds = Some(def.timeout_seconds.map_or(limit, |t| t.min(limit)));
        let input = agentry_asl::exec::parse_input(&m.input)
            .map_err(|e| Error::Corrupt(format!("express input: {}", e.message)))?;
        let mut info = ExecutionInfo::new(
            &self.scope.region,
            &m.account,
            &m.machine,
            &m.name,
            m.start_ms,
        );
        info.execution_arn = m.arn.clone();
        info.express = true;
        let mut ex = Execution::new(info);
        ex.input_text = Some(m.input.clone());
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
        let mut waiting: JoinSet<()> = JoinSet::new();
        let mut step = ex.start(&def, input, &mut host());
        loop {
            for effect in std::mem::take(&mut step.effects) {
                match effect {
                    Effect::Invoke(req) => {
                        let (resources, tx) = (self.inner.resources.clone(), tx.clone());
                        waiting.spawn(async move {
                            let task = req.task;
                            let event = match resources.invoke(*req).await {
                                Ok(output) => Event::TaskSucceeded { task, output },
                                Err(TaskError { error, cause }) => Event::TaskFailed {
                                    task,
                                    error: Some(error),
                                    cause: Some(cause),
                                },
                            };
                            let _ = tx.send(event);
                        });
                    }
                    Effect::StartTimer { timer, at_ms } => {
                        let tx = tx.clone();
                        waiting.spawn(async move {
                            let wait = (at_ms - now_ms()).max(0) as u64;
                            tokio::time::sleep(Duration::from_millis(wait)).await;
                            let _ = tx.send(Event::TimerFired { timer });
                        });
                    }
                    // A cancelled task's answer finds no task waiting for it.
                    Effect::CancelTask { .. } | Effect::Finish => {}
                }
            }
            if ex.status != Status::Running {
                waiting.abort_all();
                return Ok(ex);
            }
            let Some(event) = rx.recv().await else {
                return Err(Error::Corrupt("express execution lost its events".into()));
            };
            step = ex.handle(&def, event, &mut host());
        }
    }
}
