//! Handing out committed work, and the node's background loops:
//!
//! - dispatch: a step's outbox entries become queue messages (and token and timer items, for
//!   steps too large to commit them directly); then the outbox items are deleted. Every part
//!   is safe to repeat. A running node with room runs the step's tasks itself instead of
//!   sending them (see [`Local`]): their outbox item stays until their results are committed,
//!   so it is the task's durable record, as a task message would be.
//! - the work loop receives work messages (start, task result, timer due) and advances the
//!   execution they name; a message is deleted only after its step committed.
//! - the task loop receives task messages and runs the resource's handler, keeping the message
//!   invisible while it runs; the answer is applied as a step right there (through the work
//!   queue when that fails).
//! - the timer loop hands out due timers (and timers due within the next poll) as work
//!   messages delayed to their due time; timers are items, so a timer longer than the queue's
//!   15-minute delay, or one due while no node ran, fires all the same.
//! - the outbox sweeper hands out work a node committed but died before handing out (or
//!   before finishing the tasks it ran itself).
//! - the cleanup loop deletes, many at a time, handed-out outbox items and task messages
//!   whose result is committed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use agentry_asl::Event;
use agentry_queue::{QueueExt, ReceiveOptions, SendMessage};
use agentry_storage::{Attributes, Condition, ItemStoreExt, Key, Query, SortRange, Write};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::error::{Error, Result};
use crate::record::{Dispatch, TaskMessage, WorkMessage};
use crate::resources::TaskError;
use crate::step::Work;
use crate::tables::{self, EXECUTIONS, OUTBOX, TIMERS};
use crate::{Engine, now_ms, obj};
use agentry_asl::TaskRequest;

impl Engine {
    /// Hands out a committed step's work, then deletes its outbox items. With `local`, the
    /// step's tasks that this running node has room for are run here rather than sent; their
    /// outbox items are then deleted once every such task's result is committed.
    pub(crate) async fn dispatch(
        &self,
        arn: &str,
        entries: Vec<Dispatch>,
        outbox: Vec<(Key, Attributes)>,
        local: bool,
    ) -> Result<()> {
        let store = &self.inner.store;
        let mut messages = Vec::new();
        let mut tasks = Vec::new();
        let mut mine = Vec::new();
        let mut timers = Vec::new();
        let runner = if local {
            self.inner.local.lock().expect("local").clone()
        } else {
            None
        };
        for d in entries {
            if let Some(w) = store_write(arn, &d, Condition::Absent) {
                if w.table() == TIMERS {
                    timers.push(w);
                    continue;
                }
                match store.transact(vec![w]).await {
                    // A token opened already, or closed before this late re-delivery: done.
                    Ok(_) => {}
                    Err(e) if e.is_condition_failed() => {}
                    Err(e) => return Err(e.into()),
                }
                continue;
            }
            match d {
                Dispatch::Invoke(request) => {
                    if let Some(permit) = runner
                        .as_ref()
                        .and_then(|r| r.permits.clone().try_acquire_owned().ok())
                    {
                        mine.push((request, permit));
                        continue;
                    }
                    let body = serde_json::to_string(&TaskMessage {
                        execution: arn.to_string(),
                        request: *request,
                    })
                    .map_err(|e| Error::Corrupt(e.to_string()))?;
                    tasks.push(SendMessage::new(body));
                }
                Dispatch::Work(work) => messages.push(work_message(arn, work, Duration::ZERO)?),
                Dispatch::Notify { execution, work } => {
                    messages.push(work_message(&execution, work, Duration::ZERO)?)
                }
                _ => unreachable!("store writes are handled above"),
            }
        }
        // A transaction touches an item once: a timer started and deleted by one step (it
        // ended the execution) keeps the last write.
        let timers: Vec<Write> = timers
            .into_iter()
            .map(|w| (w.key().clone(), w))
            .collect::<std::collections::BTreeMap<_, _>>()
            .into_values()
            .collect();
        for chunk in timers.chunks(100) {
            store.transact(chunk.to_vec()).await?;
        }
        if !timers.is_empty() {
            self.inner.timer_wake.notify_one();
        }
        let sent = async {
            self.send_all(&self.inner.config.task_queue, tasks).await?;
            self.send_all(&self.inner.config.work_queue, messages).await
        }
        .await;
        match (runner, mine.is_empty()) {
            (Some(runner), false) => {
                // The outbox items now stand for the tasks run here; if sending the rest failed
                // they stay for the sweeper all the same (it sends everything again).
                let lease = Lease::new(self, arn, outbox, mine.len(), sent.is_err());
                for (request, permit) in mine {
                    let (engine, lease, execution) = (self.clone(), lease.clone(), arn.to_string());
                    let alive = runner.alive.clone();
                    tokio::spawn(run_local(engine, execution, request, lease, permit, alive));
                }
            }
            _ => {
                sent?;
                if !outbox.is_empty() {
                    self.clean_up(
                        outbox
                            .into_iter()
                            .map(|(k, _)| Cleanup::Outbox(k))
                            .collect(),
                    )
                    .await?;
                }
            }
        }
        Ok(())
    }

    /// Makes deletes whose only urgency is to spare repeating harmless work (an outbox item
    /// sent again by the sweeper, a task message received again): the running node's cleanup
    /// loop batches them with those of other steps; without one they are made at once.
    pub(crate) async fn clean_up(&self, deletes: Vec<Cleanup>) -> Result<()> {
        let deletes = match self.inner.cleanup.lock().expect("cleanup").as_ref() {
            Some(tx) => {
                let mut left = Vec::new();
                for d in deletes {
                    if let Err(e) = tx.send(d) {
                        left.push(e.0);
                    }
                }
                left
            }
            None => deletes,
        };
        self.delete_now(deletes).await
    }

    async fn delete_now(&self, deletes: Vec<Cleanup>) -> Result<()> {
        let (mut outbox, mut tasks) = (Vec::new(), Vec::new());
        for d in deletes {
            match d {
                Cleanup::Outbox(k) => outbox.push(Write::delete(OUTBOX, k)),
                Cleanup::Task(h) => tasks.push(h),
            }
        }
        // All chunks at once: the store and the queue commit concurrent calls together.
        let mut set = JoinSet::new();
        for chunk in outbox.chunks(100) {
            let (store, chunk) = (self.inner.store.clone(), chunk.to_vec());
            set.spawn(async move { store.transact(chunk).await.map(drop).map_err(Error::from) });
        }
        for chunk in tasks.chunks(agentry_queue::MAX_BATCH) {
            let (queue, chunk) = (self.inner.queue.clone(), chunk.to_vec());
            let name = self.inner.config.task_queue.clone();
            set.spawn(async move {
                queue
                    .delete_batch(&name, chunk)
                    .await
                    .map(drop)
                    .map_err(Error::from)
            });
        }
        let mut first = Ok(());
        while let Some(r) = set.join_next().await {
            let r = r
                .map_err(|e| Error::Corrupt(format!("delete panicked: {e}")))
                .and_then(|r| r);
            if first.is_ok() {
                first = r;
            }
        }
        first
    }

    /// Makes the deletes handed to [`Engine::clean_up`], as many at a time as have come,
    /// until every sender is gone.
    pub(crate) async fn cleanup_loop(self, mut rx: tokio::sync::mpsc::UnboundedReceiver<Cleanup>) {
        let mut batch = Vec::new();
        while rx.recv_many(&mut batch, 1000).await > 0 {
            if let Err(e) = self.delete_now(std::mem::take(&mut batch)).await {
                tracing::warn!(error = %e, "deleting handled work failed; it is handed out again, harmlessly");
            }
        }
    }

    async fn send_all(&self, queue: &str, messages: Vec<SendMessage>) -> Result<()> {
        for chunk in messages.chunks(agentry_queue::MAX_BATCH) {
            for r in self.inner.queue.send_batch(queue, chunk.to_vec()).await? {
                r?;
            }
        }
        Ok(())
    }

    /// Puts work for an execution on the work queue.
    pub(crate) async fn enqueue(&self, arn: &str, work: Work, delay: Duration) -> Result<()> {
        let m = work_message(arn, work, delay)?;
        self.inner
            .queue
            .send(&self.inner.config.work_queue, m)
            .await?;
        Ok(())
    }

    /// Receives and applies work messages until the node stops.
    pub(crate) async fn work_loop(self) {
        let cfg = self.inner.config.clone();
        let options = ReceiveOptions::max(10)
            .wait(cfg.poll_wait)
            .visibility(cfg.visibility_timeout);
        loop {
            let messages = match self.inner.queue.receive(&cfg.work_queue, options).await {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, "receiving work failed");
                    tokio::time::sleep(cfg.poll_wait).await;
                    continue;
                }
            };
            // Work for the same execution in one batch is applied as one step.
            let mut handles = Vec::new();
            let mut groups: Vec<(String, Vec<Work>, Vec<String>)> = Vec::new();
            for m in messages {
                match serde_json::from_str::<WorkMessage>(&m.body) {
                    Err(e) => {
                        tracing::error!(error = %e, "dropping an unreadable work message");
                        handles.push(m.receipt_handle);
                    }
                    Ok(w) => match groups.iter_mut().find(|g| g.0 == w.execution) {
                        Some(g) => {
                            g.1.push(w.work);
                            g.2.push(m.receipt_handle);
                        }
                        None => groups.push((w.execution, vec![w.work], vec![m.receipt_handle])),
                    },
                }
            }
            let mut set = JoinSet::new();
            for (arn, work, receipts) in groups {
                let engine = self.clone();
                set.spawn(async move {
                    // A long step (thousands of events) must not be taken up by a second node
                    // meanwhile: both would claim the record in turn and neither finish.
                    let queue = &engine.inner.config.work_queue;
                    let keep_alive: Vec<_> =
                        receipts.iter().map(|r| engine.keep_invisible(queue, r)).collect();
                    let done = match engine.advance_all(&arn, &work).await {
                        Ok(_) | Err(Error::ExecutionDoesNotExist(_)) => true,
                        Err(e) => {
                            tracing::warn!(execution = %arn, error = %e, "advancing failed; the messages come back after their visibility timeout");
                            false
                        }
                    };
                    drop(keep_alive);
                    if done { receipts } else { Vec::new() }
                });
            }
            while let Some(done) = set.join_next().await {
                handles.extend(done.unwrap_or_default());
            }
            // One delete for the batch: a failure leaves the messages to come back, and
            // applying them again changes nothing.
            if !handles.is_empty()
                && let Err(e) = self
                    .inner
                    .queue
                    .delete_batch(&cfg.work_queue, handles)
                    .await
            {
                tracing::warn!(error = %e, "deleting work messages failed; they will be applied again, harmlessly");
            }
        }
    }

    /// Receives task messages and runs their handlers until the node stops, sharing the
    /// node's room for running tasks with the tasks it runs itself.
    pub(crate) async fn task_loop(self) {
        let queue = self.inner.config.task_queue.clone();
        let Some(permits) = self
            .inner
            .local
            .lock()
            .expect("local")
            .as_ref()
            .map(|l| l.permits.clone())
        else {
            return;
        };
        let cfg = self.inner.config.clone();
        loop {
            // Receive no more than there is room for, waiting for room when there is none.
            let first = match permits.clone().acquire_owned().await {
                Ok(p) => p,
                Err(_) => return,
            };
            let room = (permits.available_permits() + 1).min(agentry_queue::MAX_BATCH);
            let options = ReceiveOptions::max(room)
                .wait(cfg.poll_wait)
                .visibility(cfg.visibility_timeout);
            let messages = match self.inner.queue.receive(&queue, options).await {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, "receiving tasks failed");
                    drop(first);
                    tokio::time::sleep(cfg.poll_wait).await;
                    continue;
                }
            };
            let mut first = Some(first);
            for m in messages {
                let permit = match first.take() {
                    Some(p) => p,
                    None => match permits.clone().acquire_owned().await {
                        Ok(p) => p,
                        Err(_) => return,
                    },
                };
                let engine = self.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    engine.run_task(m).await
                });
            }
        }
    }

    /// Receives the messages of `queue` and runs `run` on each, at most
    /// [`EngineConfig::max_running_tasks`](crate::EngineConfig) at once, until the node stops.
    pub(crate) async fn run_each<F, Fut>(&self, queue: &str, what: &str, run: F)
    where
        F: Fn(Engine, agentry_queue::Message) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let cfg = self.inner.config.clone();
        let options = ReceiveOptions::max(10)
            .wait(cfg.poll_wait)
            .visibility(cfg.visibility_timeout);
        let mut running = JoinSet::new();
        loop {
            while running.len() >= cfg.max_running_tasks {
                running.join_next().await;
            }
            while running.try_join_next().is_some() {}
            let messages = match self.inner.queue.receive(queue, options).await {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, "receiving {what} failed");
                    tokio::time::sleep(cfg.poll_wait).await;
                    continue;
                }
            };
            for m in messages {
                running.spawn(run(self.clone(), m));
            }
        }
    }

    async fn run_task(&self, m: agentry_queue::Message) {
        let cfg = &self.inner.config;
        let Ok(TaskMessage { execution, request }) = serde_json::from_str::<TaskMessage>(&m.body)
        else {
            tracing::error!("dropping an unreadable task message");
            let _ = self
                .inner
                .queue
                .delete(&cfg.task_queue, &m.receipt_handle)
                .await;
            return;
        };
        // Keep the message invisible while the handler runs and its result is applied, so no
        // other node runs it too.
        let keep_alive = self.keep_invisible(&cfg.task_queue, &m.receipt_handle);
        if !self.run_request(&execution, request).await {
            return;
        }
        drop(keep_alive);
        if let Err(e) = self.clean_up(vec![Cleanup::Task(m.receipt_handle)]).await {
            tracing::warn!(error = %e, "deleting a task message failed; the task may run again");
        }
    }

    /// Runs one task and applies its result as a step of `execution`. Whether the result is
    /// durable (committed, or on the work queue): until it is, the task's message or outbox
    /// item must stay, so that the task runs again.
    async fn run_request(&self, execution: &str, request: TaskRequest) -> bool {
        let task = request.task;
        let mut waits = request.task_token.is_some();
        let result = if crate::activities::parse_activity_arn(&request.resource).is_some() {
            self.schedule_activity(execution, &request)
                .await
                .map(|()| Value::Null)
        } else if request.resource.starts_with(crate::nested::START_EXECUTION) {
            match self.start_nested(execution, &request).await {
                Ok(Some(output)) => Ok(output),
                // A `.sync` child answers when it ends.
                Ok(None) => {
                    waits = true;
                    Ok(Value::Null)
                }
                Err(e) => Err(e),
            }
        } else {
            self.inner.resources.invoke(request).await
        };
        let event = match result {
            Ok(_) if waits => return true,
            Ok(output) => Event::TaskSucceeded { task, output },
            Err(TaskError { error, cause }) => Event::TaskFailed {
                task,
                error: Some(error),
                cause: Some(cause),
            },
        };
        // The result is applied here, a step committed before the task's message or outbox
        // item goes; only when that fails does it travel through the work queue (as work from
        // another node's task would).
        if self
            .apply_result(execution, Work::Event(event.clone()))
            .await
        {
            return true;
        }
        match self
            .enqueue(execution, Work::Event(event), Duration::ZERO)
            .await
        {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(execution = %execution, error = %e, "sending a task's result failed; the task runs again");
                false
            }
        }
    }

    /// Applies a task's result as a step of its execution, together with the results of the
    /// execution's other tasks that arrive meanwhile (a Map's tasks end together). Whether the
    /// result is committed (or its execution is gone); `false` leaves it to the caller.
    async fn apply_result(&self, arn: &str, work: Work) -> bool {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.inner
            .results
            .lock()
            .expect("results")
            .entry(arn.to_string())
            .or_default()
            .push((work, tx));
        let lock = self.inner.execution_lock(arn);
        let turn = lock.lock().await;
        // Results that came while the lock was held are applied together; ours may have been
        // taken by the holder before us, which then answers on `rx`.
        let waiting = self
            .inner
            .results
            .lock()
            .expect("results")
            .remove(arn)
            .unwrap_or_default();
        if !waiting.is_empty() {
            let (work, answers): (Vec<_>, Vec<_>) = waiting.into_iter().unzip();
            let done = match self.advance_locked(arn, &work).await {
                Ok(_) | Err(Error::ExecutionDoesNotExist(_)) => true,
                Err(e) => {
                    tracing::warn!(execution = %arn, error = %e, "applying task results failed; they go through the work queue");
                    false
                }
            };
            for answer in answers {
                let _ = answer.send(done);
            }
        }
        drop(turn);
        self.inner.release_lock(arn, lock);
        rx.await.unwrap_or(false)
    }

    /// Extends a received message's invisibility every third of the visibility timeout until
    /// the returned task is aborted.
    pub(crate) fn keep_invisible(&self, queue: &str, receipt_handle: &str) -> AbortOnDrop {
        let (q, name, handle) = (
            self.inner.queue.clone(),
            queue.to_string(),
            receipt_handle.to_string(),
        );
        let timeout = self.inner.config.visibility_timeout;
        AbortOnDrop(tokio::spawn(async move {
            loop {
                tokio::time::sleep(timeout / 3).await;
                if q.change_visibility(&name, &handle, timeout).await.is_err() {
                    return;
                }
            }
        }))
    }

    /// Hands out due timers until the node stops.
    pub(crate) async fn timer_loop(self) {
        let poll = self.inner.config.timer_poll;
        loop {
            let next = match self.fire_due_timers(poll).await {
                Ok(next) => next,
                Err(e) => {
                    tracing::warn!(error = %e, "handing out timers failed");
                    None
                }
            };
            let wait = next.map_or(poll, |at| {
                Duration::from_millis((at - now_ms() - poll.as_millis() as i64).max(0) as u64)
                    .min(poll)
            });
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.inner.timer_wake.notified() => {}
            }
        }
    }

    /// Sends every timer due within `ahead` as a work message delayed to its due time, then
    /// deletes it. Returns when the next remaining timer is due.
    pub(crate) async fn fire_due_timers(&self, ahead: Duration) -> Result<Option<i64>> {
        loop {
            let now = now_ms();
            let horizon = now + ahead.as_millis() as i64;
            let q = Query::partition(TIMERS, "timers")
                .range(SortRange::To(tables::timers_due_by(horizon)))
                .limit(100);
            let page = self.inner.store.query(&q).await?;
            if page.items.is_empty() {
                let first = self
                    .inner
                    .store
                    .query(&Query::partition(TIMERS, "timers").limit(1))
                    .await?;
                return Ok(first
                    .items
                    .first()
                    .and_then(|i| i.attributes.get("at_ms"))
                    .and_then(Value::as_i64));
            }
            let mut deletes = Vec::new();
            for item in page.items {
                let a = &item.attributes;
                let (Some(arn), Some(timer), Some(at)) = (
                    a.get("execution").and_then(Value::as_str),
                    a.get("timer").and_then(Value::as_u64),
                    a.get("at_ms").and_then(Value::as_i64),
                ) else {
                    deletes.push(Write::delete(TIMERS, item.key));
                    continue;
                };
                let delay = Duration::from_millis((at - now).max(0) as u64);
                self.enqueue(arn, Work::Event(Event::TimerFired { timer }), delay)
                    .await?;
                deletes.push(Write::delete(TIMERS, item.key));
            }
            self.inner.store.transact(deletes).await?;
        }
    }

    /// Timers stored and not yet handed out, of every execution.
    pub async fn pending_timers(&self) -> Result<usize> {
        Ok(self
            .inner
            .store
            .query_all(&Query::partition(TIMERS, "timers"))
            .await?
            .len())
    }

    /// Hands out outbox items older than the grace period until the node stops.
    pub(crate) async fn outbox_loop(self) {
        let every = self.inner.config.outbox_sweep;
        loop {
            tokio::time::sleep(every).await;
            // A full page means a backlog (a node died with much undelivered work): keep going.
            loop {
                match self.sweep_outbox().await {
                    Ok(n) if n == OUTBOX_PAGE as usize => continue,
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "sweeping the outbox failed");
                        break;
                    }
                }
            }
        }
    }

    /// Hands out the work of committed steps whose node did not (it died, or failed to).
    pub async fn sweep_outbox(&self) -> Result<usize> {
        let before = now_ms() - self.inner.config.outbox_grace.as_millis() as i64;
        let q = Query::partition(OUTBOX, "outbox")
            .range(SortRange::To(format!("{:016}$", before.max(0))))
            .limit(OUTBOX_PAGE);
        let page = self.inner.store.query(&q).await?;
        let n = page.items.len();
        for item in page.items {
            let arn = item
                .attributes
                .get("execution")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let entries: Vec<Dispatch> = item
                .attributes
                .get("entries")
                .cloned()
                .map(serde_json::from_value)
                .transpose()
                .map_err(|e| Error::Corrupt(format!("outbox item of {arn}: {e}")))?
                .unwrap_or_default();
            self.dispatch(&arn, entries, vec![(item.key, item.attributes)], false)
                .await?;
        }
        Ok(n)
    }
}

/// The store write a piece of outgoing work is, if it is one: timers and task tokens.
/// `open` is the condition a token's opening writes under (`Absent` when re-delivered late,
/// so it never reopens a closed token).
pub(crate) fn store_write(arn: &str, d: &Dispatch, open: Condition) -> Option<Write> {
    Some(match d {
        Dispatch::OpenToken { token, task } => {
            let attrs = obj(json!({"execution": arn, "task": task, "closed": false}));
            Write::put(EXECUTIONS, tables::token(token), attrs).when(open)
        }
        Dispatch::CloseToken { token, task } => {
            let attrs = obj(json!({"execution": arn, "task": task, "closed": true}));
            Write::put(EXECUTIONS, tables::token(token), attrs)
        }
        Dispatch::Timer { timer, at_ms } => {
            let attrs = obj(json!({"execution": arn, "timer": timer, "at_ms": at_ms}));
            Write::put(TIMERS, tables::timer(*at_ms, arn, *timer), attrs)
        }
        Dispatch::DeleteTimer { timer, at_ms } => {
            Write::delete(TIMERS, tables::timer(*at_ms, arn, *timer))
        }
        Dispatch::Invoke(_) | Dispatch::Work(_) | Dispatch::Notify { .. } => return None,
    })
}

/// What a running node needs to run tasks itself: room (shared with the task loop, so the
/// node runs at most [`EngineConfig::max_running_tasks`](crate::EngineConfig) tasks either
/// way), and a signal that ends them when the node stops.
///
/// A step's tasks run by the node that committed it skip the task queue's three writes (send,
/// receive, delete): the step's outbox item, committed with it, is their durable record
/// instead. While they run the item is re-keyed to the present every third of
/// [`EngineConfig::outbox_grace`](crate::EngineConfig), so no sweeper takes it for abandoned;
/// once every one of their results is committed it is deleted. A node that dies meanwhile
/// leaves it to the sweepers, which send its tasks (at-least-once, as a task message whose
/// node died) within the grace period and a sweep.
#[derive(Clone)]
pub(crate) struct Local {
    pub permits: Arc<tokio::sync::Semaphore>,
    pub alive: tokio::sync::watch::Receiver<()>,
}

/// Runs a task of a step this node committed (see [`Local`]). Boxed: the task's result is a
/// step, which may run further tasks the same way.
fn run_local(
    engine: Engine,
    execution: String,
    request: Box<TaskRequest>,
    lease: Arc<Lease>,
    permit: tokio::sync::OwnedSemaphorePermit,
    mut alive: tokio::sync::watch::Receiver<()>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
    Box::pin(async move {
        let _permit = permit;
        tokio::select! {
            handled = engine.run_request(&execution, *request) => {
                lease.finish(&engine, handled).await;
            }
            // The node stopped: the outbox item hands the task out again.
            _ = alive.changed() => {}
        }
    })
}

/// The outbox items of a step whose tasks this node runs, while any of them runs.
struct Lease {
    /// Held across a renewal, so that the last task's delete sees the keys it wrote.
    items: tokio::sync::Mutex<Vec<(Key, Attributes)>>,
    running: AtomicUsize,
    /// Some of the step's work is not durable elsewhere: leave the items to the sweeper.
    keep: AtomicBool,
}

impl Lease {
    fn new(
        engine: &Engine,
        arn: &str,
        items: Vec<(Key, Attributes)>,
        tasks: usize,
        keep: bool,
    ) -> Arc<Lease> {
        let lease = Arc::new(Lease {
            items: tokio::sync::Mutex::new(items),
            running: AtomicUsize::new(tasks),
            keep: AtomicBool::new(keep),
        });
        let every = (engine.inner.config.outbox_grace / 3).max(Duration::from_millis(10));
        let (weak, engine, arn) = (Arc::downgrade(&lease), engine.clone(), arn.to_string());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(lease) = weak.upgrade() else { return };
                if let Err(e) = lease.renew(&engine).await {
                    tracing::warn!(execution = %arn, error = %e, "renewing the outbox item of running tasks failed; a sweeper may run them again");
                }
            }
        });
        lease
    }

    /// Moves the items to the present: the sweepers take them for abandoned only after the
    /// grace period from now.
    async fn renew(&self, engine: &Engine) -> Result<()> {
        let mut items = self.items.lock().await;
        if self.running.load(Ordering::SeqCst) == 0 || items.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let mut writes = Vec::new();
        let mut renewed = Vec::new();
        for (key, attributes) in items.iter() {
            let Some(rest) = key.sk.get(16..) else {
                continue;
            };
            let new = Key::new(key.pk.clone(), format!("{:016}{rest}", now.max(0)));
            writes.push(Write::delete(OUTBOX, key.clone()).when(Condition::Exists));
            writes.push(Write::put(OUTBOX, new.clone(), attributes.clone()));
            renewed.push((new, attributes.clone()));
        }
        match engine.inner.store.transact(writes).await {
            Ok(_) => {
                *items = renewed;
                Ok(())
            }
            // A sweeper took them: the tasks are out again, and nothing is left to keep.
            Err(e) if e.is_condition_failed() => {
                items.clear();
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// One of the tasks ended; `handled`: its result is durable. The last one deletes the
    /// items, unless some result was not.
    async fn finish(&self, engine: &Engine, handled: bool) {
        if !handled {
            self.keep.store(true, Ordering::SeqCst);
        }
        if self.running.fetch_sub(1, Ordering::SeqCst) != 1 || self.keep.load(Ordering::SeqCst) {
            return;
        }
        let items = std::mem::take(&mut *self.items.lock().await);
        if items.is_empty() {
            return;
        }
        if let Err(e) = engine
            .clean_up(items.into_iter().map(|(k, _)| Cleanup::Outbox(k)).collect())
            .await
        {
            tracing::warn!(error = %e, "deleting the outbox item of finished tasks failed; its tasks may run again");
        }
    }
}

/// A delete the cleanup loop makes.
pub(crate) enum Cleanup {
    /// An outbox item whose work was handed out.
    Outbox(Key),
    /// A task message (receipt handle) whose result is committed.
    Task(String),
}

/// A background task that ends with its owner, even when the owner is itself aborted (a node
/// stopping must not keep extending the visibility of messages it no longer works on).
pub(crate) struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

const OUTBOX_PAGE: u32 = 100;

fn work_message(arn: &str, work: Work, delay: Duration) -> Result<SendMessage> {
    let body = serde_json::to_string(&WorkMessage {
        execution: arn.to_string(),
        work,
    })
    .map_err(|e| Error::Corrupt(e.to_string()))?;
    let mut m = SendMessage::new(body);
    if !delay.is_zero() {
        m = m.delay(delay.min(agentry_queue::MAX_DELAY));
    }
    Ok(m)
}
