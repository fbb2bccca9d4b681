//! Activities: tasks done by workers outside the engine that poll for them, as on Step
//! Functions (CreateActivity, DescribeActivity, ListActivities, DeleteActivity,
//! GetActivityTask).
//!
//! A Task state whose `Resource` is an activity ARN gets a task token as a callback task does;
//! running it puts `{token, input}` on the activity's own queue (durable, one per activity),
//! and the execution waits for SendTaskSuccess / SendTaskFailure with that token, its
//! TimeoutSeconds and HeartbeatSeconds enforced by the usual task timers. GetActivityTask
//! long-polls that queue; a task is handed to one worker (its token item is marked taken with
//! a version check, so a re-delivered message is dropped) and ActivityStarted is recorded.
//! Activities live in the machines table, partition `activities#ACCOUNT`.

use std::time::Duration;

use agentry_asl::{Event, TaskRequest};
use agentry_queue::{QueueAttributes, QueueExt, ReceiveOptions, SendMessage};
use agentry_storage::{Condition, ItemStoreExt, Key, Query, Write};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::resources::TaskError;
use crate::step::Work;
use crate::tables::{self, EXECUTIONS, MACHINES};
use crate::{Engine, now_ms, obj};

/// DescribeActivity's answer (and ListActivities' entries).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivityDescription {
    pub activity_arn: String,
    pub name: String,
    pub creation_date: i64,
}

/// What GetActivityTask hands a worker.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivityTask {
    pub task_token: String,
    /// The task's input, as JSON text.
    pub input: String,
}

/// A message on an activity's queue.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct ActivityMessage {
    token: String,
    execution: String,
    task: u64,
    input: Value,
}

fn activities(account: &str) -> String {
    format!("activities#{account}")
}

fn activity_key(account: &str, name: &str) -> Key {
    Key::new(activities(account), name)
}

/// An activity ARN: `(region, account, name)`.
pub(crate) fn parse_activity_arn(arn: &str) -> Option<(String, String, String)> {
    let rest = arn.strip_prefix("arn:aws:states:")?;
    match rest.split(':').collect::<Vec<_>>().as_slice() {
        [r, a, "activity", name] if !name.is_empty() => {
            Some(((*r).into(), (*a).into(), (*name).into()))
        }
        _ => None,
    }
}

/// The queue an activity's tasks wait on: named by a hash of account and name (queue names are
/// shorter than activity names may be).
fn queue_name(account: &str, name: &str) -> String {
    // FNV-1a: stable across builds and platforms.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in account.bytes().chain([b':']).chain(name.bytes()) {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("agentry-activity-{h:016x}")
}

impl Engine {
    fn activity_of(&self, arn: &str) -> Result<String> {
        let missing = || Error::ActivityDoesNotExist(format!("Activity Does Not Exist: '{arn}'"));
        let (region, account, name) = parse_activity_arn(arn).ok_or_else(|| {
            Error::InvalidArn(format!("Invalid Arn: '{arn}' is not an activity arn"))
        })?;
        if region != self.scope.region || account != self.scope.account {
            return Err(missing());
        }
        Ok(name)
    }

    /// CreateActivity: creating it again answers with the same ARN, as AWS does.
    pub async fn create_activity(&self, name: &str) -> Result<ActivityDescription> {
        let name = tables::check_name(name)?;
        let key = activity_key(&self.scope.account, &name);
        let now = now_ms();
        self.inner
            .queue
            .create_queue(
                &queue_name(&self.scope.account, &name),
                &QueueAttributes::default(),
            )
            .await?;
        let put =
            Write::put(MACHINES, key, obj(json!({"created_ms": now}))).when(Condition::Absent);
        match self.inner.store.transact(vec![put]).await {
            Ok(_) => Ok(ActivityDescription {
                activity_arn: self.scope.activity_arn(&name),
                name,
                creation_date: now,
            }),
            Err(e) if e.is_condition_failed() => {
                self.describe_activity(&self.scope.activity_arn(&name))
                    .await
            }
            Err(e) => Err(e.into()),
        }
    }

    /// DescribeActivity.
    pub async fn describe_activity(&self, arn: &str) -> Result<ActivityDescription> {
        let name = self.activity_of(arn)?;
        let item = self
            .inner
            .store
            .get(MACHINES, &activity_key(&self.scope.account, &name))
            .await?
            .ok_or_else(|| {
                Error::ActivityDoesNotExist(format!("Activity Does Not Exist: '{arn}'"))
            })?;
        Ok(ActivityDescription {
            activity_arn: self.scope.activity_arn(&name),
            name,
            creation_date: item
                .attributes
                .get("created_ms")
                .and_then(Value::as_i64)
                .unwrap_or_default(),
        })
    }

    /// ListActivities of the account, by name.
    pub async fn list_activities(&self) -> Result<Vec<ActivityDescription>> {
        let items = self
            .inner
            .store
            .query_all(&Query::partition(MACHINES, activities(&self.scope.account)))
            .await?;
        Ok(items
            .into_iter()
            .map(|i| ActivityDescription {
                activity_arn: self.scope.activity_arn(&i.key.sk),
                creation_date: i
                    .attributes
                    .get("created_ms")
                    .and_then(Value::as_i64)
                    .unwrap_or_default(),
                name: i.key.sk,
            })
            .collect())
    }

    /// DeleteActivity: tasks already scheduled stay on its queue until they time out or are
    /// answered; new ones fail. Deleting one that does not exist succeeds.
    pub async fn delete_activity(&self, arn: &str) -> Result<()> {
        let name = match self.activity_of(arn) {
            Ok(n) => n,
            Err(Error::ActivityDoesNotExist(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        self.inner
            .store
            .transact(vec![Write::delete(
                MACHINES,
                activity_key(&self.scope.account, &name),
            )])
            .await?;
        Ok(())
    }

    /// Runs an activity Task: its token and input go on the activity's queue. The execution
    /// then waits for the token's answer.
    pub(crate) async fn schedule_activity(
        &self,
        execution: &str,
        request: &TaskRequest,
    ) -> std::result::Result<(), TaskError> {
        let account = tables::account_of(execution);
        let failed = |cause: String| TaskError::new("States.Runtime", cause);
        let name = match parse_activity_arn(&request.resource) {
            Some((_, a, name)) if a == account => name,
            _ => {
                return Err(failed(format!(
                    "activity {} does not exist",
                    request.resource
                )));
            }
        };
        let exists = self
            .inner
            .store
            .get(MACHINES, &activity_key(&account, &name))
            .await
            .map_err(|e| failed(e.to_string()))?
            .is_some();
        if !exists {
            return Err(failed(format!(
                "activity {} does not exist",
                request.resource
            )));
        }
        let Some(token) = request.task_token.clone() else {
            return Err(failed("an activity task has no task token".into()));
        };
        let body = serde_json::to_string(&ActivityMessage {
            token,
            execution: execution.to_string(),
            task: request.task,
            input: request.input.clone(),
        })
        .map_err(|e| failed(e.to_string()))?;
        self.inner
            .queue
            .send(&queue_name(&account, &name), SendMessage::new(body))
            .await
            .map_err(|e| TaskError::new("States.TaskFailed", e.to_string()))?;
        Ok(())
    }

    /// GetActivityTask: waits up to `wait` (AWS: 60 s) for a task of the activity; `None` when
    /// none came. The task is handed to this worker only: its ActivityStarted is recorded.
    pub async fn get_activity_task(
        &self,
        arn: &str,
        worker_name: Option<&str>,
        wait: Duration,
    ) -> Result<Option<ActivityTask>> {
        self.describe_activity(arn).await?;
        let name = self.activity_of(arn)?;
        let queue = queue_name(&self.scope.account, &name);
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let options = ReceiveOptions::max(1)
                .wait(left.min(agentry_queue::MAX_WAIT_TIME))
                .visibility(self.inner.config.visibility_timeout);
            for m in self.inner.queue.receive(&queue, options).await? {
                let task = serde_json::from_str::<ActivityMessage>(&m.body).ok();
                let taken = match &task {
                    Some(t) => self.take_token(&t.token).await?,
                    None => false,
                };
                self.inner.queue.delete(&queue, &m.receipt_handle).await?;
                let Some(t) = task.filter(|_| taken) else {
                    // Answered, timed out, or handed out already: nothing for a worker.
                    continue;
                };
                let started = Event::ActivityStarted {
                    task: t.task,
                    worker_name: worker_name.map(str::to_string),
                };
                if let Err(e) = self.advance(&t.execution, &Work::Event(started)).await {
                    tracing::warn!(execution = %t.execution, error = %e, "recording ActivityStarted failed");
                }
                return Ok(Some(ActivityTask {
                    task_token: t.token,
                    input: t.input.to_string(),
                }));
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
        }
    }

    /// Marks an open token as handed to a worker; whether this call did.
    async fn take_token(&self, token: &str) -> Result<bool> {
        let key = tables::token(token);
        loop {
            let Some(item) = self.inner.store.get(EXECUTIONS, &key).await? else {
                return Ok(false);
            };
            let a = &item.attributes;
            if a.get("closed").and_then(Value::as_bool) == Some(true)
                || a.get("taken").and_then(Value::as_bool) == Some(true)
            {
                return Ok(false);
            }
            let mut attrs = a.clone();
            attrs.insert("taken".into(), json!(true));
            let put =
                Write::put(EXECUTIONS, key.clone(), attrs).when(Condition::Version(item.version));
            match self.inner.store.transact(vec![put]).await {
                Ok(_) => return Ok(true),
                Err(e) if e.is_condition_failed() => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activity_arns_and_queue_names() {
        assert_eq!(
            parse_activity_arn("arn:aws:states:local:000000000000:activity:review"),
            Some(("local".into(), "000000000000".into(), "review".into()))
        );
        assert_eq!(
            parse_activity_arn("arn:aws:states:local:0:stateMachine:x"),
            None
        );
        let a = queue_name("000000000000", &"x".repeat(80));
        assert!(a.len() <= 80);
        assert_ne!(a, queue_name("111111111111", &"x".repeat(80)));
    }
}
