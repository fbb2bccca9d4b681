//! One step of an execution, durably: load the record, let `asl` apply one piece of work,
//! commit the new state with a version check together with the step's history events and its
//! outgoing work (the outbox), then hand that work out. A node that loses the version race
//! re-reads and tries again; work that finds nothing to do (a duplicate delivery) changes
//! nothing.
//!
//! A step whose writes do not fit one transaction (100 writes) is committed in parts, all
//! guarded by the record's version: first the record is re-written unchanged (claiming a new
//! version), then history events in batches that each check that version, then the record's
//! new state with the outbox and the last events. A rival that claims the record in between
//! makes every later part fail, and its own parts overwrite the events this attempt left
//! behind (event ids are the same for every attempt from the same state). Outbox items are
//! only ever written in the final part, so work is handed out only for committed steps.

use agentry_asl::{Effect, Event, Step};
use agentry_storage::{Condition, Item, Write};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::{Error, Result};
use crate::record::{Dispatch, Record};
use crate::tables::{self, EXECUTIONS, OUTBOX};
use crate::{Engine, now_ms, obj};

/// What can advance an execution.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Work {
    Start,
    Event(Event),
}

const MAX_WRITES: usize = 100;
/// Outbox items are packed up to this many bytes of JSON (items may hold 400 KB).
const OUTBOX_ITEM_BYTES: usize = 300 * 1024;
/// Attempts at one step against concurrent writers before the work is left for later.
const MAX_ATTEMPTS: u32 = 50;

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
        for attempt in 0..MAX_ATTEMPTS {
            let item = self
                .inner
                .store
                .get(EXECUTIONS, &tables::execution(arn))
                .await?
                .ok_or_else(|| Error::ExecutionDoesNotExist(arn.to_string()))?;
            let record = Record::from_item(&item)?;
            let Some(plan) = self.plan(record, work).await? else {
                return Ok(None);
            };
            if let Some(record) = self.commit(Some(&item), plan).await? {
                return Ok(Some(record));
            }
            // Lost the race: another node advanced the execution. Back off a little, more
            // each time, so that concurrent task results of one execution take turns.
            let ms = (attempt as u64 + 1).min(20) * (1 + uuid::Uuid::new_v4().as_u128() as u64 % 5);
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
        Err(Error::Contended(arn.to_string()))
    }

    /// Runs the interpreter for one piece of work. `None`: nothing to record.
    pub(crate) async fn plan(&self, record: Record, work: &Work) -> Result<Option<Plan>> {
        if matches!(work, Work::Start) == record.started {
            // A start applied already, or an event before the start (cannot be, but harmless).
            return Ok(None);
        }
        let def = self
            .definition(&record.machine_name, record.revision)
            .await?;
        // The interpreter is CPU work (a step may run thousands of states): off the runtime.
        let w = work.clone();
        let (mut record, step) = tokio::task::spawn_blocking(move || -> Result<(Record, Step)> {
            let mut record = record;
            let mut host = host();
            let step = match w {
                Work::Start => {
                    record.started = true;
                    let input = agentry_asl::exec::parse_input(&record.input_text)
                        .map_err(|e| Error::Corrupt(format!("stored input: {}", e.message)))?;
                    record.execution.input_text = Some(record.input_text.clone());
                    record.execution.start(&def, input, &mut host)
                }
                Work::Event(event) => record.execution.handle(&def, event, &mut host),
            };
            Ok((record, step))
        })
        .await
        .map_err(|e| Error::Corrupt(format!("interpreter panicked: {e}")))??;
        if step.events.is_empty() && step.effects.is_empty() && !matches!(work, Work::Start) {
            return Ok(None);
        }
        let mut outbox = Vec::new();
        if let Work::Event(Event::TimerFired { timer }) = work {
            record.timers.remove(timer);
        }
        if let Work::Event(Event::TaskSucceeded { task, .. } | Event::TaskFailed { task, .. }) =
            work
            && let Some(token) = record.tokens.remove(task)
        {
            outbox.push(Dispatch::CloseToken { token, task: *task });
        }
        for effect in step.effects {
            match effect {
                Effect::Invoke(req) => {
                    if let Some(token) = &req.task_token {
                        record.tokens.insert(req.task, token.clone());
                        outbox.push(Dispatch::OpenToken {
                            token: token.clone(),
                            task: req.task,
                        });
                    }
                    outbox.push(Dispatch::Invoke(req));
                }
                Effect::StartTimer { timer, at_ms } => {
                    record.timers.insert(timer, at_ms);
                    outbox.push(Dispatch::Timer { timer, at_ms });
                }
                Effect::CancelTask { task } => {
                    if let Some(token) = record.tokens.remove(&task) {
                        outbox.push(Dispatch::CloseToken { token, task });
                    }
                }
                Effect::Finish => {
                    record.stop_ms = Some(now_ms());
                    for (task, token) in std::mem::take(&mut record.tokens) {
                        outbox.push(Dispatch::CloseToken { token, task });
                    }
                    for (timer, at_ms) in std::mem::take(&mut record.timers) {
                        outbox.push(Dispatch::DeleteTimer { timer, at_ms });
                    }
                }
            }
        }
        let arn = record.arn().to_string();
        let events = step
            .events
            .iter()
            .map(|e| {
                Write::put(
                    EXECUTIONS,
                    tables::event(&arn, e.id),
                    obj(json!({"event": e.to_aws_json()})),
                )
            })
            .collect();
        Ok(Some(Plan {
            record,
            events,
            outbox,
        }))
    }

    /// Commits a step on top of `base` (the record as read), or creates the execution when
    /// `base` is `None`. `Ok(None)`: a rival's write came first; nothing of this step counts.
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
        let outbox_items = pack_outbox(&arn, created, base.map_or(0, |b| b.version), &outbox)?;
        let room = MAX_WRITES - 1 - outbox_items.len();
        let mut version = base.map(|b| b.version);
        if events.len() > room {
            let Some(base) = base else {
                return Err(Error::Corrupt(
                    "a start too large for one transaction must be queued".into(),
                ));
            };
            // Claim a version of our own, then write the leading events under it.
            let claim = Write::put(EXECUTIONS, key.clone(), base.attributes.clone())
                .when(Condition::Version(base.version));
            let claimed = match self.inner.store.transact(vec![claim]).await {
                Ok(v) => v[0].ok_or_else(|| Error::Corrupt("put returned no version".into()))?,
                Err(e) if e.is_condition_failed() => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            version = Some(claimed);
            let tail = events.split_off(events.len() - room);
            for chunk in events.chunks(MAX_WRITES - 1) {
                let mut writes = vec![Write::check(
                    EXECUTIONS,
                    key.clone(),
                    Condition::Version(claimed),
                )];
                writes.extend(chunk.iter().cloned());
                match self.inner.store.transact(writes).await {
                    Ok(_) => {}
                    Err(e) if e.is_condition_failed() => return Ok(None),
                    Err(e) => return Err(e.into()),
                }
            }
            events = tail;
        }
        let condition = version.map_or(Condition::Absent, Condition::Version);
        let mut writes = vec![Write::put(EXECUTIONS, key, record.to_attributes()).when(condition)];
        writes.extend(
            outbox_items
                .iter()
                .map(|(k, a)| Write::put(OUTBOX, k.clone(), a.clone())),
        );
        writes.extend(events);
        match self.inner.store.transact(writes).await {
            Ok(_) => {}
            Err(e) if e.is_condition_failed() => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        if !outbox.is_empty() {
            let keys: Vec<_> = outbox_items.into_iter().map(|(k, _)| k).collect();
            // The outbox sweeper hands the work out if this fails or the node dies first.
            if let Err(e) = self.dispatch(&arn, outbox, keys).await {
                tracing::warn!(execution = %arn, error = %e, "handing out a step's work failed; the outbox sweeper retries");
            }
        }
        self.inner.changed.notify_waiters();
        Ok(Some(record))
    }
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

/// Whether a step creating an execution fits one transaction.
pub(crate) fn fits_one_transaction(plan: &Plan) -> bool {
    pack_outbox(plan.record.arn(), 0, 0, &plan.outbox)
        .is_ok_and(|items| plan.events.len() + 1 + items.len() <= MAX_WRITES)
}

/// Time and randomness for one step: the wall clock and a fresh seed.
pub(crate) fn host() -> agentry_asl::FixedHost {
    agentry_asl::FixedHost::new(now_ms(), uuid::Uuid::new_v4().as_u128() as u64)
}
