//! Durable Step Functions executions: state machines and executions stored in an
//! [`ItemStore`], work handed out through a [`Queue`], so that any number of nodes on the same
//! store and queue share the executions and a node killed at any instant loses nothing.
//!
//! Each step of an execution loads its record, lets `asl` apply one piece of work (start, a
//! task's result, a timer, a stop), and commits the new interpreter state with a version check
//! in one transaction together with the step's history events, its timers and task tokens, and
//! the queue work it hands out (the outbox); only then are tasks and follow-up work sent to the
//! queues. Transitions are therefore exactly-once; task invocations at-least-once, each with
//! the request's idempotency key. Any node receiving a message may take the step; of two nodes
//! taking the same step, the version check lets one commit and the other re-reads. A running
//! node runs the tasks of the steps it commits itself, as far as it has room
//! ([`EngineConfig::max_running_tasks`]), the step's outbox item standing as their durable
//! record until their results commit; the rest go out on the task queue for any node. A task's
//! result is applied as a step by the node that ran the task (the results of one execution's
//! tasks that end together share a step), and goes through the work queue only when that
//! fails; the task message (or outbox item) is deleted only once the result is committed. Deletes that only
//! spare repeating harmless work (handed-out outbox items, handled task messages) are batched
//! by each node's cleanup loop; a node killed before making them costs a repeated hand-out.
//!
//! Recovery bound, with a node killed at any instant: a step it was taking comes back after the
//! work queue's visibility timeout ([`EngineConfig::visibility_timeout`], default 30 s); a task
//! it was running from the task queue is invoked again after the same timeout; work it
//! committed but had not sent, and tasks it was running of its own steps, are sent by any
//! node's outbox sweeper within [`EngineConfig::outbox_grace`] plus
//! [`EngineConfig::outbox_sweep`] (default 15 s); timers (stored with their step) fire within
//! [`EngineConfig::timer_poll`] of falling due while any node runs, and when the first node
//! starts for timers due while none ran. So with the defaults every execution of a dead node
//! moves again within about 30 s, on whichever nodes remain.
//!
//! Limits of this slice: an execution record longer than an item is stored in parts written
//! with it, but all parts and the step's work must fit one transaction (about 12 MB of
//! interpreter state, including a running Map's results); a history event must fit one item
//! (payloads near 256 KB full of characters JSON escapes can exceed it), and a step's events
//! are packed up to 100 (and 300 KB) to an item, keyed by the first one's id, so GetExecutionHistory's
//! token names the last event given; timers and the outbox each live in one partition (fine for SQLite and PostgreSQL, a
//! hot key on DynamoDB); every node's timer loop hands out due timers, so N nodes may deliver
//! a timer N times (applied once).
//!
//! Layout:
//! - `error`: the one [`Error`], with AWS's exception names
//! - `resources`: the [`ResourceTable`] a Task state's `Resource` is dispatched through
//! - `integrations`: service integrations served from the engine's backends (`sqs:sendMessage`)
//! - `tables`: tables, item keys and ARNs
//! - `record`: the stored execution record and the outbox entries
//! - `machines`: state machines, revisions and published versions; deleting them
//! - `aliases`: state machine aliases routing executions to versions by weight
//! - `activities`: activities, their task queues and GetActivityTask
//! - `nested`: Task states that start executions (`states:startExecution[.sync[:2]]`)
//! - `express`: asynchronous Express executions, in memory, at least once
//! - `step`: one durable step: plan, commit (split when large), hand out
//! - `dispatch`: handing out work; the work, task, timer, outbox and cleanup loops
//! - `executions`: start, describe, list, history, stop, task token answers

pub mod activities;
pub mod aliases;
pub mod error;
pub mod integrations;
pub mod resources;
pub mod tables;

mod dispatch;
mod executions;
mod express;
mod machines;
mod nested;
mod record;
mod step;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use agentry_asl::StateMachine;
use agentry_queue::{Queue, QueueAttributes};
use agentry_storage::ItemStore;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

pub use activities::{ActivityDescription, ActivityTask};
pub use aliases::{AliasDescription, Route};
pub use error::{Error, Result};
pub use executions::{ExecutionDescription, Page, Started};
pub use machines::{PublishedVersion, StateMachineDescription};
pub use resources::{ResourceTable, TaskError, TaskResult};
pub use step::Work;

/// The engine's settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Queue of work for executions (start, task result, timer due).
    pub work_queue: String,
    /// Queue of task invocations.
    pub task_queue: String,
    /// Queue of asynchronous Express executions to run.
    pub express_queue: String,
    /// How long a received message stays invisible: the time after which work a dead node
    /// held is taken up by another. Running tasks keep theirs extended.
    #[serde(with = "millis")]
    pub visibility_timeout: Duration,
    /// Long-poll wait of each receive.
    #[serde(with = "millis")]
    pub poll_wait: Duration,
    /// Timers are looked for at least this often (and handed out this far ahead).
    #[serde(with = "millis")]
    pub timer_poll: Duration,
    /// Outbox items older than this are taken to be abandoned by their node.
    #[serde(with = "millis")]
    pub outbox_grace: Duration,
    /// How often the outbox is swept.
    #[serde(with = "millis")]
    pub outbox_sweep: Duration,
    /// Work-queue receive loops per node.
    pub workers: usize,
    /// Task handlers running at once per node.
    pub max_running_tasks: usize,
    /// The region ARNs name.
    pub region: String,
    /// The account of [`Engine::open`]'s handle; [`Engine::for_account`] gives others.
    pub account: String,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            work_queue: "agentry-executions".into(),
            task_queue: "agentry-tasks".into(),
            express_queue: "agentry-express".into(),
            visibility_timeout: Duration::from_secs(30),
            poll_wait: Duration::from_secs(1),
            timer_poll: Duration::from_secs(1),
            outbox_grace: Duration::from_secs(10),
            outbox_sweep: Duration::from_secs(5),
            workers: 4,
            max_running_tasks: 64,
            region: tables::REGION.into(),
            account: tables::ACCOUNT.into(),
        }
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// A task's result waiting to be applied, and where to say whether it was.
pub(crate) type WaitingResult = (step::Work, tokio::sync::oneshot::Sender<bool>);

pub(crate) struct Inner {
    pub store: Arc<dyn ItemStore>,
    pub queue: Arc<dyn Queue>,
    pub resources: ResourceTable,
    pub config: EngineConfig,
    /// Parsed definitions by (account, machine name, revision).
    pub definitions: Mutex<HashMap<(String, String, u64), Arc<StateMachine>>>,
    /// For each execution someone here follows: notified after every step of it this node
    /// commits (see [`Engine::watch_execution`]).
    pub watchers: Mutex<HashMap<String, Arc<Notify>>>,
    /// Wakes the timer loop when a step stored a timer.
    pub timer_wake: Notify,
    /// One lock per execution being advanced on this node.
    pub locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Task results waiting for their execution's lock: whoever gets the lock next applies
    /// all of them as one step, and tells each waiter whether its result committed.
    pub results: Mutex<HashMap<String, Vec<WaitingResult>>>,
    /// Deletes that may wait a moment, batched by the running node's cleanup loop; `None`
    /// while no node runs (they are then made at once).
    pub cleanup: Mutex<Option<tokio::sync::mpsc::UnboundedSender<dispatch::Cleanup>>>,
    /// The record of each running execution as this node last committed it (and the item's
    /// version), so that its next step here skips reading and decoding it. Only ever a guess:
    /// a step commits with a version check, and concludes that work has nothing to do only
    /// from a record read afresh.
    pub records: Mutex<HashMap<String, step::Cached>>,
    /// While a node runs: what it needs to run tasks itself (see [`dispatch::Local`]).
    pub local: Mutex<Option<dispatch::Local>>,
}

impl Inner {
    pub fn execution_lock(&self, arn: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.locks
            .lock()
            .expect("locks")
            .entry(arn.to_string())
            .or_default()
            .clone()
    }

    /// Forgets the lock once nobody else holds or waits for it.
    pub fn release_lock(&self, arn: &str, lock: Arc<tokio::sync::Mutex<()>>) {
        let mut locks = self.locks.lock().expect("locks");
        drop(lock);
        if locks.get(arn).is_some_and(|l| Arc::strong_count(l) == 1) {
            locks.remove(arn);
        }
    }
}

/// A node of the engine: the API, and (once [`Engine::run`] is called) the loops that advance
/// executions. Cheap to clone; clones share everything.
///
/// A handle works in one account ([`Engine::for_account`]): the state machines and executions
/// it creates belong to that account, and those of other accounts are, to it, as if they did
/// not exist. A node's loops advance the executions of every account.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
    pub(crate) scope: Arc<tables::Scope>,
}

/// The running loops of a node; dropping it (or [`Node::stop`]) stops them.
pub struct Node {
    tasks: Vec<JoinHandle<()>>,
    /// Makes the deletes still waiting, then ends: stopped last, and never aborted by `stop`.
    cleanup: Option<JoinHandle<()>>,
    /// Dropped when the node stops: the tasks it runs itself end with it.
    alive: Option<tokio::sync::watch::Sender<()>>,
    inner: Arc<Inner>,
}

impl Node {
    pub async fn stop(mut self) {
        self.inner.local.lock().expect("local").take();
        self.alive.take();
        for t in &self.tasks {
            t.abort();
        }
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
        self.inner.cleanup.lock().expect("cleanup").take();
        if let Some(t) = self.cleanup.take() {
            let _ = t.await;
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.inner.local.lock().expect("local").take();
        self.alive.take();
        for t in &self.tasks {
            t.abort();
        }
        if let Some(t) = &self.cleanup {
            t.abort();
        }
    }
}

impl Engine {
    /// Declares the engine's tables and queues (every node may; it is idempotent).
    pub async fn open(
        store: Arc<dyn ItemStore>,
        queue: Arc<dyn Queue>,
        resources: ResourceTable,
        config: EngineConfig,
    ) -> Result<Self> {
        for spec in tables::specs() {
            store.create_table(&spec).await?;
        }
        // Default attributes, so that nodes with different settings agree on the queues: every
        // receive names its own visibility timeout.
        for name in [
            &config.work_queue,
            &config.task_queue,
            &config.express_queue,
        ] {
            queue
                .create_queue(name, &QueueAttributes::default())
                .await?;
        }
        let scope = Arc::new(tables::Scope::new(&config.region, &config.account)?);
        Ok(Self {
            scope,
            inner: Arc::new(Inner {
                store,
                queue,
                resources,
                config,
                definitions: Mutex::new(HashMap::new()),
                watchers: Mutex::new(HashMap::new()),
                timer_wake: Notify::new(),
                locks: Mutex::new(HashMap::new()),
                results: Mutex::new(HashMap::new()),
                cleanup: Mutex::new(None),
                records: Mutex::new(HashMap::new()),
                local: Mutex::new(None),
            }),
        })
    }

    /// Starts this node's loops: work, tasks, timers, the outbox sweeper and the cleanup of
    /// handled messages and handed-out outbox items.
    pub fn run(&self) -> Node {
        let (alive, alive_rx) = tokio::sync::watch::channel(());
        *self.inner.local.lock().expect("local") = Some(dispatch::Local {
            permits: Arc::new(tokio::sync::Semaphore::new(
                self.inner.config.max_running_tasks.max(1),
            )),
            alive: alive_rx,
        });
        let mut tasks = Vec::new();
        for _ in 0..self.inner.config.workers.max(1) {
            tasks.push(tokio::spawn(self.clone().work_loop()));
        }
        tasks.push(tokio::spawn(self.clone().task_loop()));
        tasks.push(tokio::spawn(self.clone().express_loop()));
        tasks.push(tokio::spawn(self.clone().timer_loop()));
        tasks.push(tokio::spawn(self.clone().outbox_loop()));
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        *self.inner.cleanup.lock().expect("cleanup") = Some(tx);
        Node {
            tasks,
            cleanup: Some(tokio::spawn(self.clone().cleanup_loop(rx))),
            alive: Some(alive),
            inner: self.inner.clone(),
        }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// The same node, working in another account (12 digits).
    pub fn for_account(&self, account: &str) -> Result<Engine> {
        Ok(Engine {
            inner: self.inner.clone(),
            scope: Arc::new(tables::Scope::new(&self.scope.region, account)?),
        })
    }

    /// The account this handle works in.
    pub fn account(&self) -> &str {
        &self.scope.account
    }

    /// The region ARNs name.
    pub fn region(&self) -> &str {
        &self.scope.region
    }

    /// The ARN a state machine of this handle's account has.
    pub fn state_machine_arn(&self, name: &str) -> String {
        self.scope.state_machine_arn(name)
    }

    /// The ARN an activity of this handle's account has.
    pub fn activity_arn(&self, name: &str) -> String {
        self.scope.activity_arn(name)
    }

    /// Follows an execution's steps as this node commits them: a hint for whoever waits on
    /// an execution or follows its history, which reading the store confirms (steps of other
    /// nodes come without one).
    pub fn watch_execution(&self, arn: &str) -> ExecutionWatch {
        let notify = self
            .inner
            .watchers
            .lock()
            .expect("watchers")
            .entry(arn.to_string())
            .or_default()
            .clone();
        ExecutionWatch {
            inner: self.inner.clone(),
            arn: arn.to_string(),
            notify,
        }
    }
}

/// An execution followed on this node ([`Engine::watch_execution`]).
pub struct ExecutionWatch {
    inner: Arc<Inner>,
    arn: String,
    notify: Arc<Notify>,
}

impl ExecutionWatch {
    /// Completes once this node commits a step of the execution after the call (the future
    /// counts from its creation, polled or not).
    pub fn committed(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }
}

impl Drop for ExecutionWatch {
    fn drop(&mut self) {
        let mut watchers = self.inner.watchers.lock().expect("watchers");
        // The map's reference and ours: nobody else follows it.
        if Arc::strong_count(&self.notify) == 2 {
            watchers.remove(&self.arn);
        }
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub(crate) fn obj(v: Value) -> serde_json::Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => unreachable!("obj takes a JSON object"),
    }
}
