//! One step of an execution, durably: load the record, let `asl` apply one piece of work,
//! commit the new state with a version check together with the step's history events, timers,
//! task tokens and its queue work (the outbox), then send that work. A node that loses the version race
//! re-reads and tries again; work that finds nothing to do (a duplicate delivery) changes
//! nothing.
//!
//! A step's history events are packed several to an item (a 100-item Map's start is then one
//! transaction). A step whose writes do not fit one transaction (100 writes) is committed in parts, all
//! guarded by the record's version: first the record is re-written unchanged (claiming a new
//! version), then history events in batches that each check that version, then the record's
//! new state with the outbox and the last events. A rival that claims the record in between
//! makes every later part fail, and its own parts overwrite the events this attempt left
//! behind (event ids are the same for every attempt from the same state). Outbox items are
//! only ever written in the final part, so work is handed out only for committed steps.

use agentry_asl::{Effect, Event, Step};
use agentry_storage::{Condition, Item, ItemStoreExt, Query, Write};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::{Error, Result};
use crate::record::{Dispatch, Record, Stored};
use crate::tables::{self, EXECUTIONS, OUTBOX, TIMERS};
use crate::{Engine, now_ms, obj};

/// What can advance an execution.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Work {
    Start,
    Event(Event),
    /// RedriveExecution, with the caller's idempotency token.
    Redrive {
        client_token: Option<String>,
    },
}

const MAX_WRITES: usize = 100;
/// History events stored in one item at most (a 100-item Map's few hundred events of one step
/// then fit one transaction with the record).
const EVENTS_PER_ITEM: usize = 100;
/// History events are packed up to this many bytes of JSON (items may hold 400 KB).
const EVENT_ITEM_BYTES: usize = 300 * 1024;
/// Outbox items are packed up to this many bytes of JSON (items may hold 400 KB).
const OUTBOX_ITEM_BYTES: usize = 300 * 1024;
/// Running executions whose record a node keeps after committing a step.
const MAX_CACHED_RECORDS: usize = 10_000;
/// Attempts at one step against concurrent writers before the work is left for later.
const MAX_ATTEMPTS: u32 = 50;

/// A running execution's record as this node last committed it, and the item's version.
pub(crate) struct Cached {
    version: u64,
    record: Record,
}

/// A step ready to commit.
pub(crate) struct Plan {
    pub record: Record,
    pub events: Vec<Write>,
    pub outbox: Vec<Dispatch>,
}

impl Engine {
    /// Applies `work` to the execution, durably. Returns the record after the step, or `None`
    /// when the work changed nothing (already applied, or the execution has ended).
    pub(crate) async fn advance(&self, arn: &str, work: &Work) -> Result<Option<Record>> {
        self.advance_all(arn, std::slice::from_ref(work)).await
    }

    /// Applies several pieces of work in order as one step: one commit for, say, the results
    /// of a Map's tasks that arrived together.
    pub(crate) async fn advance_all(&self, arn: &str, work: &[Work]) -> Result<Option<Record>> {
        // Work for one execution on this node takes turns here rather than in version
        // conflicts (a Map's results arrive together); other nodes still race on the version.
        let lock = self.inner.execution_lock(arn);
        let turn = lock.lock().await;
        let result = self.advance_locked(arn, work).await;
        drop(turn);
        self.inner.release_lock(arn, lock);
        result
    }

    pub(crate) async fn advance_locked(&self, arn: &str, work: &[Work]) -> Result<Option<Record>> {
        let mut cached = self.inner.records.lock().expect("records").remove(arn);
        for attempt in 0..MAX_ATTEMPTS {
            let fresh = cached.is_none();
            let (item, record) = match cached.take() {
                // The item as committed, its attributes not kept (see `commit`).
                Some(Cached { version, record }) => (
                    Item {
                        key: tables::execution(arn),
                        attributes: Default::default(),
                        version,
                    },
                    record,
                ),
                None => {
                    let item = self
                        .inner
                        .store
                        .get(EXECUTIONS, &tables::execution(arn))
                        .await?
                        .ok_or_else(|| Error::ExecutionDoesNotExist(arn.to_string()))?;
                    let Some(record) = self.record_of(&item).await? else {
                        continue;
                    };
                    (item, record)
                }
            };
            let Some(plan) = self.plan(record, work).await? else {
                if fresh {
                    return Ok(None);
                }
                // Another node may have moved the execution on since: read it.
                continue;
            };
            if let Some(record) = self.commit(Some(&item), plan).await? {
                return Ok(Some(record));
            }
            if !fresh {
                continue;
            }
            // Lost the race: another node advanced the execution. Back off a little, more
            // each time, so that concurrent task results of one execution take turns.
            let ms = (attempt as u64 + 1).min(20) * (1 + uuid::Uuid::new_v4().as_u128() as u64 % 5);
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
        Err(Error::Contended(arn.to_string()))
    }

    /// The record an item holds; `None` when its parts were replaced between reading the item
    /// and reading them (read the item again).
    pub(crate) async fn record_of(&self, item: &Item) -> Result<Option<Record>> {
        match Record::stored(item)? {
            Stored::Inline(r) => Ok(Some(*r)),
            Stored::Parts { tag, parts } => {
                let q = Query::partition(EXECUTIONS, item.key.pk.as_str())
                    .prefix(tables::record_parts_prefix(&tag));
                let items = self.inner.store.query_all(&q).await?;
                if items.len() != parts {
                    return Ok(None);
                }
                Record::from_parts(&item.key.pk, &items).map(Some)
            }
        }
    }

    /// Runs the interpreter for each piece of work in turn. `None`: nothing to record.
    pub(crate) async fn plan(&self, record: Record, work: &[Work]) -> Result<Option<Plan>> {
        let def = self
            .definition(
                &tables::account_of(record.arn()),
                &record.machine_name,
                record.revision,
            )
            .await?;
        // The interpreter is CPU work: a machine that fans out (a Map of thousands of items)
        // runs off the runtime. Without Map or Parallel a step runs states one after another
        // until one waits (a task, a timer), usually a handful: the hop to a blocking thread
        // and back would cost more than the work.
        let inline = !fans_out(&def);
        let work = work.to_vec();
        let run = move || -> Result<(Record, Vec<(Work, Step)>)> {
            let mut record = record;
            let mut steps = Vec::new();
            let mut host = host();
            for w in work {
                if matches!(w, Work::Start) == record.started {
                    // A start applied already, or an event before the start (cannot be).
                    continue;
                }
                let step = match &w {
                    Work::Start => {
                        record.started = true;
                        let input = agentry_asl::exec::parse_input(record.input_text())
                            .map_err(|e| Error::Corrupt(format!("stored input: {}", e.message)))?;
                        record.execution.start(&def, input, &mut host)
                    }
                    Work::Event(event) => record.execution.handle(&def, event.clone(), &mut host),
                    Work::Redrive { .. } => record.execution.redrive(&def, &mut host),
                };
                if !step.events.is_empty() || !step.effects.is_empty() || matches!(w, Work::Start) {
                    steps.push((w, step));
                }
            }
            Ok((record, steps))
        };
        let (mut record, steps) = if inline {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(run))
                .map_err(|_| Error::Corrupt("interpreter panicked".into()))??
        } else {
            tokio::task::spawn_blocking(run)
                .await
                .map_err(|e| Error::Corrupt(format!("interpreter panicked: {e}")))??
        };
        if steps.is_empty() {
            return Ok(None);
        }
        let mut outbox = Vec::new();
        let mut history = Vec::new();
        for (work, step) in steps {
            record.note(&work, step.effects, &mut outbox);
            history.extend(step.events);
        }
        let events = pack_history(record.arn(), &history)?;
        Ok(Some(Plan {
            record,
            events,
            outbox,
        }))
    }

    /// Commits a step on top of `base` (the record item as read; with no attributes when it
    /// comes from the node's cache, which holds only records stored inline), or creates the
    /// execution when `base` is `None`. `Ok(None)`: a rival's write came first; nothing of this step counts.
    /// On success the outbox is handed out before returning.
    pub(crate) async fn commit(&self, base: Option<&Item>, plan: Plan) -> Result<Option<Record>> {
        let Plan {
            record,
            mut events,
            outbox,
        } = plan;
        let arn = record.arn().to_string();
        let key = tables::execution(&arn);
        let created = now_ms();
        let (direct, outbox, outbox_items) =
            layout(&arn, created, base.map_or(0, |b| b.version), outbox)?;
        let (attributes, parts) = record.to_items()?;
        let old_parts = base.map(Record::part_keys).unwrap_or_default();
        let fixed = 1 + outbox_items.len() + direct.len() + parts.len() + old_parts.len();
        if fixed > MAX_WRITES {
            return Err(Error::Corrupt(format!(
                "execution {arn}: one step's state and work need {fixed} writes, over the {MAX_WRITES} a transaction holds"
            )));
        }
        let room = MAX_WRITES - fixed;
        let wakes_timers = direct.iter().any(|w| w.table() == TIMERS);
        let mut version = base.map(|b| b.version);
        if events.len() > room {
            let Some(base) = base else {
                return Err(Error::Corrupt(
                    "a start too large for one transaction must be queued".into(),
                ));
            };
            // Claim a version of our own, then write the leading events under it: the record
            // re-written as it is (read back when the base came from the cache).
            let unchanged = if base.attributes.is_empty() {
                match self.inner.store.get(EXECUTIONS, &key).await? {
                    Some(item) if item.version == base.version => item.attributes,
                    _ => return Ok(None),
                }
            } else {
                base.attributes.clone()
            };
            let claim = Write::put(EXECUTIONS, key.clone(), unchanged)
                .when(Condition::Version(base.version));
            let claimed = match self.inner.store.transact(vec![claim]).await {
                Ok(v) => v[0].ok_or_else(|| Error::Corrupt("put returned no version".into()))?,
                Err(e) if e.is_condition_failed() => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            version = Some(claimed);
            let tail = events.split_off(events.len() - room);
            // The leading parts go together (the store commits concurrent transactions with
            // one fsync); the final part waits for all of them.
            let mut parts = tokio::task::JoinSet::new();
            for chunk in events.chunks(MAX_WRITES - 1) {
                let mut writes = vec![Write::check(
                    EXECUTIONS,
                    key.clone(),
                    Condition::Version(claimed),
                )];
                writes.extend(chunk.iter().cloned());
                let store = self.inner.store.clone();
                parts.spawn(async move { store.transact(writes).await });
            }
            let mut lost = false;
            while let Some(part) = parts.join_next().await {
                match part.map_err(|e| Error::Corrupt(format!("history write panicked: {e}")))? {
                    Ok(_) => {}
                    Err(e) if e.is_condition_failed() => lost = true,
                    Err(e) => return Err(e.into()),
                }
            }
            if lost {
                return Ok(None);
            }
            events = tail;
        }
        let condition = version.map_or(Condition::Absent, Condition::Version);
        let keep = record.status() == agentry_asl::Status::Running && parts.is_empty();
        let mut writes = vec![Write::put(EXECUTIONS, key, attributes).when(condition)];
        writes.extend(parts.into_iter().map(|(k, a)| Write::put(EXECUTIONS, k, a)));
        writes.extend(old_parts.into_iter().map(|k| Write::delete(EXECUTIONS, k)));
        writes.extend(
            outbox_items
                .iter()
                .map(|(k, a)| Write::put(OUTBOX, k.clone(), a.clone())),
        );
        writes.extend(direct);
        writes.extend(events);
        let written = match self.inner.store.transact(writes).await {
            Ok(v) => v.first().copied().flatten(),
            Err(e) if e.is_condition_failed() => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        {
            let mut records = self.inner.records.lock().expect("records");
            match (keep, written) {
                (true, Some(version)) => {
                    if records.len() >= MAX_CACHED_RECORDS {
                        records.clear();
                    }
                    records.insert(
                        arn.clone(),
                        Cached {
                            version,
                            record: record.clone(),
                        },
                    );
                }
                _ => {
                    records.remove(&arn);
                }
            }
        }
        if wakes_timers {
            self.inner.timer_wake.notify_one();
        }
        if !outbox.is_empty() {
            // The outbox sweeper hands the work out if this fails or the node dies first.
            if let Err(e) = self.dispatch(&arn, outbox, outbox_items, true).await {
                tracing::warn!(execution = %arn, error = %e, "handing out a step's work failed; the outbox sweeper retries");
            }
        }
        if let Some(watch) = self.inner.watchers.lock().expect("watchers").get(&arn) {
            watch.notify_waiters();
        }
        Ok(Some(record))
    }
}

/// A step's history events, packed in order into items of up to [`EVENTS_PER_ITEM`] events
/// and [`EVENT_ITEM_BYTES`] of JSON, each keyed by its first event's id (`events`: the events
/// as AWS prints them); an event larger than that is an item of its own. The packing follows
/// from the events alone, so every attempt from the same state writes the same keys.
pub(crate) fn pack_history(
    arn: &str,
    history: &[agentry_asl::history::HistoryEvent],
) -> Result<Vec<Write>> {
    let mut items = Vec::new();
    let mut current: Vec<serde_json::Value> = Vec::new();
    let mut first = 0;
    let mut size = 0;
    let flush = |current: &mut Vec<serde_json::Value>, first: u64, items: &mut Vec<Write>| {
        if !current.is_empty() {
            items.push(Write::put(
                EXECUTIONS,
                tables::event(arn, first),
                obj(json!({"events": std::mem::take(current)})),
            ));
        }
    };
    for e in history {
        let v = e.to_aws_json();
        let mut counter = crate::record::ByteCount(0);
        serde_json::to_writer(&mut counter, &v).map_err(|e| Error::Corrupt(e.to_string()))?;
        let n = counter.0;
        if current.len() >= EVENTS_PER_ITEM || (!current.is_empty() && size + n > EVENT_ITEM_BYTES)
        {
            flush(&mut current, first, &mut items);
            size = 0;
        }
        if current.is_empty() {
            first = e.id;
        }
        size += n + 1;
        current.push(v);
    }
    flush(&mut current, first, &mut items);
    Ok(items)
}

fn pack_outbox(
    arn: &str,
    created: i64,
    version: u64,
    outbox: &[Dispatch],
) -> Result<Vec<(agentry_storage::Key, agentry_storage::Attributes)>> {
    let mut items = Vec::new();
    let mut current: Vec<serde_json::Value> = Vec::new();
    let mut size = 0;
    let flush = |current: &mut Vec<serde_json::Value>, items: &mut Vec<_>| {
        if !current.is_empty() {
            let key = tables::outbox(created, arn, version, items.len());
            items.push((
                key,
                obj(json!({"execution": arn, "entries": std::mem::take(current)})),
            ));
        }
    };
    for d in outbox {
        let v = serde_json::to_value(d).map_err(|e| Error::Corrupt(e.to_string()))?;
        let n = v.to_string().len();
        if size + n > OUTBOX_ITEM_BYTES {
            flush(&mut current, &mut items);
            size = 0;
        }
        size += n;
        current.push(v);
    }
    flush(&mut current, &mut items);
    if items.len() >= MAX_WRITES {
        return Err(Error::Corrupt(format!(
            "execution {arn}: one step hands out more work than one transaction holds"
        )));
    }
    Ok(items)
}

impl Record {
    /// Keeps the engine's own books for one applied piece of work and its effects: open task
    /// tokens, pending timers, the stop date; adds the work to hand out to `outbox`.
    fn note(&mut self, work: &Work, effects: Vec<Effect>, outbox: &mut Vec<Dispatch>) {
        if let Work::Redrive { client_token } = work {
            self.stop_ms = None;
            self.redrive_ms = Some(now_ms());
            self.redrive_token = client_token.clone();
        }
        if let Work::Event(Event::TimerFired { timer }) = work {
            self.timers.remove(timer);
        }
        if let Work::Event(Event::TaskSucceeded { task, .. } | Event::TaskFailed { task, .. }) =
            work
        {
            self.children.remove(task);
            if let Some(token) = self.tokens.remove(task) {
                outbox.push(Dispatch::CloseToken { token, task: *task });
            }
        }
        for effect in effects {
            match effect {
                Effect::Invoke(req) => {
                    if let Some(child) = crate::nested::sync_child_arn(self.arn(), &req) {
                        self.children.insert(req.task, child);
                    }
                    if let Some(token) = &req.task_token {
                        self.tokens.insert(req.task, token.clone());
                        outbox.push(Dispatch::OpenToken {
                            token: token.clone(),
                            task: req.task,
                        });
                    }
                    outbox.push(Dispatch::Invoke(req));
                }
                Effect::StartTimer { timer, at_ms } => {
                    self.timers.insert(timer, at_ms);
                    outbox.push(Dispatch::Timer { timer, at_ms });
                }
                Effect::CancelTask { task } => {
                    if let Some(token) = self.tokens.remove(&task) {
                        outbox.push(Dispatch::CloseToken { token, task });
                    }
                    if let Some(child) = self.children.remove(&task) {
                        outbox.push(stop_child(child));
                    }
                }
                Effect::Finish => {
                    self.stop_ms = Some(now_ms());
                    for (_, child) in std::mem::take(&mut self.children) {
                        outbox.push(stop_child(child));
                    }
                    if let Some((execution, work)) = Engine::parent_notice(self) {
                        outbox.push(Dispatch::Notify { execution, work });
                    }
                    for (task, token) in std::mem::take(&mut self.tokens) {
                        outbox.push(Dispatch::CloseToken { token, task });
                    }
                    for (timer, at_ms) in std::mem::take(&mut self.timers) {
                        outbox.push(Dispatch::DeleteTimer { timer, at_ms });
                    }
                }
            }
        }
    }
}

/// Stops a `.sync` child whose parent no longer waits for it (a child not started yet, or
/// ended, takes no notice).
fn stop_child(child: String) -> Dispatch {
    Dispatch::Notify {
        execution: child,
        work: Work::Event(Event::Stop {
            error: Some("States.Aborted".into()),
            cause: Some("the parent execution stopped waiting for this execution".into()),
        }),
    }
}

/// Whether a step creating an execution fits one transaction.
pub(crate) fn fits_one_transaction(plan: &Plan) -> bool {
    let Ok((_, parts)) = plan.record.to_items() else {
        return false;
    };
    layout(plan.record.arn(), 0, 0, plan.outbox.clone()).is_ok_and(|(direct, _, items)| {
        plan.events.len() + 1 + parts.len() + direct.len() + items.len() <= MAX_WRITES
    })
}

type OutboxItems = Vec<(agentry_storage::Key, agentry_storage::Attributes)>;

/// Splits a step's outgoing work into store writes that commit with the step (timers and task
/// tokens, when they fit) and work for the queue, kept in the outbox until it is sent.
fn layout(
    arn: &str,
    created: i64,
    version: u64,
    outbox: Vec<Dispatch>,
) -> Result<(Vec<Write>, Vec<Dispatch>, OutboxItems)> {
    let mut direct = std::collections::BTreeMap::new();
    let mut queued = Vec::new();
    for d in &outbox {
        // A transaction touches an item once: the last write for a key (a timer started and
        // removed by the same step) is the one that counts.
        match crate::dispatch::store_write(arn, d, Condition::None) {
            Some(w) => {
                direct.insert(w.key().clone(), w);
            }
            None => queued.push(d.clone()),
        }
    }
    let items = pack_outbox(arn, created, version, &queued)?;
    if direct.len() + items.len() < MAX_WRITES - 1 {
        return Ok((direct.into_values().collect(), queued, items));
    }
    let items = pack_outbox(arn, created, version, &outbox)?;
    Ok((Vec::new(), outbox, items))
}

/// Whether a machine has Map or Parallel states, whose steps may run many branches at once.
fn fans_out(def: &agentry_asl::StateMachine) -> bool {
    use agentry_asl::definition::Kind;
    def.states
        .values()
        .any(|s| matches!(s.kind, Kind::Map(_) | Kind::Parallel(_)))
}

/// Time and randomness for one step: the wall clock and a fresh seed.
pub(crate) fn host() -> agentry_asl::FixedHost {
    agentry_asl::FixedHost::new(now_ms(), uuid::Uuid::new_v4().as_u128() as u64)
}
