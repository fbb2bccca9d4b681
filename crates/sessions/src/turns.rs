//! Turns: a message becomes an execution of the agent's state machine, and the execution's
//! end becomes the turn's result.
//!
//! Order of writes, so that a process killed anywhere loses nothing: the turn is stored first
//! (with the session's turn count, under the session item's version, so two messages racing
//! for the same session cannot both take the same turn or both pass a `reject` policy), then
//! its execution is started under a name derived from the session and turn (idempotent), then
//! the turn records the execution. A turn left without its execution is started on its next
//! refresh; a turn whose execution ended is closed on its next refresh ([`Sessions::refresh`],
//! or the [`Sessions::watch`] loop), which also starts the next queued turn.

use std::time::Duration;

use agentry_engine::{Engine, ExecutionDescription};
use agentry_storage::{Query, Write};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::model::{Agent, Session, Turn, TurnPolicy, TurnStatus};
use crate::store::{self, TurnItem, now_ms, session_attrs, session_key, turn_key};
use crate::{Error, Result, Sessions};

/// The largest input a turn's execution is started with (AWS's execution input limit).
const MAX_INPUT: usize = 256 * 1024;

/// A knowledge base the sessions search for each message and file finished turns into.
#[async_trait]
pub trait Knowledge: Send + Sync {
    /// Entries of the tenant matching `query`, best first.
    async fn search(
        &self,
        tenant: &str,
        user: &str,
        query: &str,
        limit: usize,
    ) -> Result<Vec<KnowledgeHit>>;

    /// Files what a finished turn found.
    async fn add(&self, tenant: &str, user: &str, hit: KnowledgeHit) -> Result<()>;

    /// Entries of the user matching `query` and `filter`, best first. The default filters the
    /// best unfiltered matches; a backend that can filter while searching should.
    async fn search_filtered(
        &self,
        tenant: &str,
        user: &str,
        query: &str,
        filter: &KnowledgeFilter,
        limit: usize,
    ) -> Result<Vec<KnowledgeHit>> {
        let mut hits = self.search(tenant, user, query, limit.max(1) * 10).await?;
        hits.retain(|h| filter.admits(h));
        hits.truncate(limit);
        Ok(hits)
    }
}

/// What a knowledge search is narrowed to, beside the tenant and user.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KnowledgeFilter {
    /// Only entries filed by this agent's turns.
    pub agent: Option<String>,
    /// Only entries filed at or after (epoch ms).
    pub since_ms: Option<i64>,
}

impl KnowledgeFilter {
    pub fn admits(&self, hit: &KnowledgeHit) -> bool {
        self.agent
            .as_ref()
            .is_none_or(|a| hit.agent.as_ref() == Some(a))
            && self.since_ms.is_none_or(|s| hit.at_ms >= s)
    }
}

/// One entry of the knowledge base.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KnowledgeHit {
    pub text: String,
    pub agent: Option<String>,
    pub session: Option<String>,
    pub at_ms: i64,
    #[serde(default)]
    pub score: f64,
}

fn account_of(arn: &str) -> &str {
    arn.split(':').nth(4).unwrap_or_default()
}

/// The text of a turn's result that goes into the knowledge base: a `summary` or `report`
/// string of the output, else the output itself.
fn findings(output: &Value) -> String {
    for k in ["summary", "report", "answer"] {
        if let Some(s) = output.get(k).and_then(Value::as_str) {
            return s.to_string();
        }
    }
    match output {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

impl Sessions {
    /// Sends `message` to the session: a new turn, run as an execution of the agent's state
    /// machine in `engine`'s account (the tenant's), with the message enriched by the user's
    /// profile, the session's earlier turns and knowledge-base hits. While another turn is
    /// open, the agent's [`TurnPolicy`] decides.
    pub async fn send_message(
        &self,
        engine: &Engine,
        tenant: &str,
        user: &str,
        id: &str,
        message: &str,
    ) -> Result<Turn> {
        if message.trim().is_empty() {
            return Err(Error::invalid("message", "a message cannot be empty"));
        }
        loop {
            let (mut session, version) = self.session_item(tenant, user, id).await?;
            let agent = self
                .agent(tenant, &session.agent, Some(session.agent_version))
                .await?;
            let turns = self.refresh_items(engine, id).await?;
            let open: Vec<&TurnItem> = turns.iter().filter(|t| t.turn.status.is_open()).collect();
            let status = if open.is_empty() {
                TurnStatus::Running
            } else {
                match agent.config.turn_policy {
                    TurnPolicy::Reject => return Err(Error::Busy(id.to_string())),
                    TurnPolicy::Queue => TurnStatus::Queued,
                    TurnPolicy::Interrupt => {
                        for t in open {
                            self.interrupt(engine, t).await?;
                        }
                        TurnStatus::Running
                    }
                }
            };
            let n = session.turns + 1;
            let input = self
                .enrich(tenant, user, &session, &agent, &turns, message, n)
                .await?;
            let now = now_ms();
            let item = TurnItem {
                turn: Turn {
                    session: id.to_string(),
                    n,
                    message: message.to_string(),
                    status,
                    execution_arn: None,
                    received_ms: now,
                    started_ms: None,
                    ended_ms: None,
                    output: None,
                    error: None,
                    cause: None,
                    tools_used: Vec::new(),
                    artifacts: Vec::new(),
                },
                version: 1,
                tenant: tenant.to_string(),
                user: user.to_string(),
                account: engine.account().to_string(),
                state_machine: agent.config.state_machine.clone(),
                input,
            };
            session.turns = n;
            session.updated_ms = now;
            let writes = vec![
                Write::put(store::SESSIONS, session_key(id), session_attrs(&session)?)
                    .when(agentry_storage::Condition::Version(version)),
                Write::put(store::SESSIONS, turn_key(id, n), item.attributes()?)
                    .when(agentry_storage::Condition::Absent),
            ];
            match self.store.transact(writes).await {
                Ok(_) => {}
                Err(e) if e.is_condition_failed() => continue,
                Err(e) => return Err(e.into()),
            }
            if status == TurnStatus::Running {
                return Ok(self.start(engine, item).await?.turn);
            }
            self.note(&item.turn, None).await;
            return Ok(item.turn);
        }
    }

    /// The session's turns, with open ones brought up to date from their executions first.
    pub async fn refresh(
        &self,
        engine: &Engine,
        tenant: &str,
        user: &str,
        id: &str,
    ) -> Result<Vec<Turn>> {
        self.session_item(tenant, user, id).await?;
        Ok(self
            .refresh_items(engine, id)
            .await?
            .into_iter()
            .map(|t| t.turn)
            .collect())
    }

    /// Brings every open turn of a session up to date: closes those whose execution ended,
    /// starts one left without its execution, and starts the next queued turn once none runs.
    pub(crate) async fn refresh_items(&self, engine: &Engine, id: &str) -> Result<Vec<TurnItem>> {
        let mut turns = self.turn_items(id).await?;
        let mut running = false;
        for slot in turns.iter_mut() {
            let t = slot.clone();
            let updated = match t.turn.status {
                TurnStatus::Running => match &t.turn.execution_arn {
                    None => self.start(engine, t).await?,
                    Some(arn) => {
                        let handle = engine.for_account(account_of(arn))?;
                        match handle.describe_execution(arn).await {
                            Ok(d) if d.status != "RUNNING" => self.close(&handle, t, d).await?,
                            Ok(_) => {
                                self.note_progress(&handle, &t.turn, arn).await;
                                t
                            }
                            Err(agentry_engine::Error::ExecutionDoesNotExist(_)) => {
                                self.start(engine, t).await?
                            }
                            Err(e) => return Err(e.into()),
                        }
                    }
                },
                TurnStatus::Queued if !running => {
                    let mut t = t;
                    t.turn.status = TurnStatus::Running;
                    if self.save_turn(&t).await? {
                        t.version += 1;
                        self.start(engine, t).await?
                    } else {
                        // Someone else moved it on: take what they wrote.
                        return Box::pin(self.refresh_items(engine, id)).await;
                    }
                }
                _ => t,
            };
            running |= updated.turn.status == TurnStatus::Running;
            *slot = updated;
        }
        Ok(turns)
    }

    /// Starts a turn's execution (again: the name makes it idempotent) and records it.
    async fn start(&self, engine: &Engine, mut t: TurnItem) -> Result<TurnItem> {
        let handle = engine.for_account(&t.account)?;
        let name = format!("{}-{}", t.turn.session, t.turn.n);
        let machine = if t.state_machine.starts_with("arn:") {
            t.state_machine.clone()
        } else {
            handle.state_machine_arn(&t.state_machine)
        };
        match handle
            .start_execution(&machine, Some(&name), &t.input.to_string())
            .await
        {
            Ok(started) => {
                t.turn.execution_arn = Some(started.execution_arn);
                t.turn.started_ms = Some(started.start_date);
            }
            Err(agentry_engine::Error::ExecutionAlreadyExists(arn)) => {
                // Started before and already ended: the next refresh closes the turn.
                t.turn.execution_arn = Some(arn);
            }
            Err(e) if !e.is_retryable() => {
                t.turn.status = TurnStatus::Failed;
                t.turn.error = Some(e.aws_name().to_string());
                t.turn.cause = Some(e.to_string());
                t.turn.ended_ms = Some(now_ms());
            }
            Err(e) => return Err(e.into()),
        }
        if self.save_turn(&t).await? {
            t.version += 1;
        }
        self.note(&t.turn, None).await;
        Ok(t)
    }

    /// Closes a turn whose execution ended: its status, output, tools used and artifacts;
    /// files a successful turn's findings into the knowledge base.
    async fn close(
        &self,
        engine: &Engine,
        mut t: TurnItem,
        d: ExecutionDescription,
    ) -> Result<TurnItem> {
        let Some(status) = TurnStatus::of_execution(&d.status) else {
            return Err(Error::Corrupt(format!("execution status {}", d.status)));
        };
        let output = d.output_json();
        t.turn.status = status;
        t.turn.ended_ms = Some(d.stop_date.unwrap_or_else(now_ms));
        t.turn.started_ms.get_or_insert(d.start_date);
        t.turn.error = d.error.clone();
        t.turn.cause = d.cause.clone();
        t.turn.artifacts = output
            .as_ref()
            .and_then(|o| o.get("artifacts"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        t.turn.tools_used = tools_used(&engine.history(&d.execution_arn).await?);
        t.turn.output = output;
        if !self.save_turn(&t).await? {
            // Closed by someone else meanwhile: theirs stands.
            let fresh = self.turn_items(&t.turn.session).await?;
            return fresh
                .into_iter()
                .find(|x| x.turn.n == t.turn.n)
                .ok_or_else(|| Error::NotFound(format!("turn {}", t.turn.n)));
        }
        t.version += 1;
        self.note(&t.turn, None).await;
        if let (Some(kb), TurnStatus::Succeeded, Some(out)) =
            (&self.knowledge, status, &t.turn.output)
        {
            let agent = t.input["agent"]["name"].as_str().map(str::to_string);
            let hit = KnowledgeHit {
                text: format!("{}\n{}", t.turn.message, findings(out)),
                agent,
                session: Some(t.turn.session.clone()),
                at_ms: t.turn.ended_ms.unwrap_or_default(),
                score: 0.0,
            };
            if let Err(e) = kb.add(&t.tenant, &t.user, hit).await {
                tracing::warn!(error = %e, session = %t.turn.session, "turn not filed in the knowledge base");
            }
        }
        Ok(t)
    }

    /// Notes how far a running turn's execution has got: its latest history event.
    async fn note_progress(&self, engine: &Engine, turn: &Turn, arn: &str) {
        if self.cache.is_none() {
            return;
        }
        let latest = engine
            .get_execution_history(arn, Some(1), true, None)
            .await
            .ok()
            .and_then(|p| p.items.into_iter().next());
        let progress = latest.map(|e| {
            json!({"events": e["id"], "lastEvent": e["type"],
                   "state": e.get("stateEnteredEventDetails").and_then(|d| d.get("name"))})
        });
        self.note(turn, progress).await;
    }

    /// Ends an open turn for a newer message: a running one's execution is stopped (the turn
    /// closes ABORTED on refresh), a queued one is aborted at once.
    async fn interrupt(&self, engine: &Engine, t: &TurnItem) -> Result<()> {
        match (&t.turn.status, &t.turn.execution_arn) {
            (TurnStatus::Running, Some(arn)) => {
                let handle = engine.for_account(account_of(arn))?;
                handle
                    .stop_execution(
                        arn,
                        Some("Interrupted"),
                        Some("a newer message of the session interrupted this turn"),
                    )
                    .await?;
                let d = handle.describe_execution(arn).await?;
                self.close(&handle, t.clone(), d).await?;
            }
            _ => {
                let mut t = t.clone();
                t.turn.status = TurnStatus::Aborted;
                t.turn.error = Some("Interrupted".into());
                t.turn.cause = Some("a newer message of the session interrupted this turn".into());
                t.turn.ended_ms = Some(now_ms());
                self.save_turn(&t).await?;
            }
        }
        Ok(())
    }

    /// The input a turn's execution starts with.
    #[allow(clippy::too_many_arguments)]
    async fn enrich(
        &self,
        tenant: &str,
        user: &str,
        session: &Session,
        agent: &Agent,
        turns: &[TurnItem],
        message: &str,
        n: u64,
    ) -> Result<Value> {
        let profile = self.profile(tenant, user).await?;
        let keep = agent.config.history_turns.unwrap_or(10);
        let mut history: Vec<Value> = turns
            .iter()
            .filter(|t| !t.turn.status.is_open())
            .map(|t| {
                json!({"turn": t.turn.n, "message": t.turn.message,
                       "status": t.turn.status, "output": t.turn.output})
            })
            .collect();
        if history.len() > keep {
            history.drain(..history.len() - keep);
        }
        let knowledge = match &self.knowledge {
            Some(kb) => kb.search(tenant, user, message, 5).await?,
            None => Vec::new(),
        };
        let c = &agent.config;
        let mut input = json!({
            "message": message,
            "user": {"tenant": tenant, "id": user, "profile": profile},
            "session": {"id": session.id, "turn": n, "title": session.title, "history": history},
            "agent": {"name": agent.name, "version": agent.version, "routes": c.routes,
                      "tools": c.tools, "budgets": c.budgets, "prompts": c.prompts},
            "knowledge": knowledge,
        });
        // Oldest turns give way first when the whole does not fit an execution's input.
        while input.to_string().len() > MAX_INPUT {
            let h = input["session"]["history"]
                .as_array_mut()
                .expect("history is an array");
            if h.is_empty() {
                return Err(Error::invalid(
                    "message",
                    format!("the message and its context exceed {MAX_INPUT} bytes"),
                ));
            }
            h.remove(0);
        }
        Ok(input)
    }

    /// Keeps open turns of every session moving: every `every`, closes turns whose
    /// executions ended and starts queued ones. One per node is enough; more are harmless.
    pub fn watch(&self, engine: Engine, every: Duration) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = this.watch_once(&engine).await {
                    tracing::warn!(error = %e, "sessions: refreshing open turns failed");
                }
                tokio::time::sleep(every).await;
            }
        })
    }

    /// One pass of [`Sessions::watch`]: returns how many sessions with open turns it visited.
    pub async fn watch_once(&self, engine: &Engine) -> Result<usize> {
        let page = self
            .store
            .query(&Query::index(store::SESSIONS, store::OPEN_TURNS, "open").limit(200))
            .await?;
        let mut sessions: Vec<String> = Vec::new();
        for item in &page.items {
            if let Some(s) = item.key.pk.strip_prefix("session#")
                && !sessions.iter().any(|x| x == s)
            {
                sessions.push(s.to_string());
            }
        }
        for s in &sessions {
            self.refresh_items(engine, s).await?;
        }
        Ok(sessions.len())
    }
}

/// The tools an execution used, in first-use order: Lambda function names for
/// `lambda:invoke` tasks, else the task's resource (`sqs:sendMessage`, ...), and
/// `activity:NAME` for activities (whose workers run outside).
pub fn tools_used(history: &[Value]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for e in history {
        if let Some(arn) = e
            .get("activityScheduledEventDetails")
            .and_then(|d| d["resource"].as_str())
        {
            let name = format!("activity:{}", arn.rsplit(':').next().unwrap_or(arn));
            if !out.contains(&name) {
                out.push(name);
            }
            continue;
        }
        let Some(d) = e.get("taskScheduledEventDetails") else {
            continue;
        };
        let kind = d["resourceType"].as_str().unwrap_or_default();
        let resource = d["resource"].as_str().unwrap_or_default();
        let params: Value = d["parameters"]
            .as_str()
            .and_then(|p| serde_json::from_str(p).ok())
            .unwrap_or(Value::Null);
        let name = match (kind, params.get("FunctionName").and_then(Value::as_str)) {
            ("lambda", Some(f)) => tool_of_function(f).to_string(),
            _ => format!("{kind}:{resource}"),
        };
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

/// The tool a Lambda `FunctionName` (a name, or a function ARN perhaps with an alias) names.
pub fn tool_of_function(function: &str) -> &str {
    let name = function
        .split_once(":function:")
        .map_or(function, |(_, rest)| rest);
    name.split(':').next().unwrap_or(name)
}
