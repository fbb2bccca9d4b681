//! The caller's sessions with agents: starting one, sending messages (each a turn, run as an
//! execution of the agent's state machine), reading what the turns did, following them live,
//! and searching what earlier turns found. A session of another user or tenant answers 404
//! exactly as an unknown id.
//!
//! The live stream (`/v1/sessions/{id}/events`, Server-Sent Events) sends, per turn:
//! `turn_started` (`{"turn", "execution_arn"}`), then the turn's execution history events as
//! they are recorded (`event:` the history event type, `data:` the event as
//! GetExecutionHistory returns it, plus `"turn"`), then `turn_ended` (the turn as stored:
//! status, output, tools used, artifacts) and, when the output holds one, `answer`
//! (`{"turn", "text"}`). While a turn's model calls stream, `llm_delta` events
//! (`{"turn", "text"}`) carry their output as it comes (from the node serving the stream). It
//! follows the session's turns from the first open one (or the one
//! asked for) and ends once no turn is open.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use agentry_sessions::{KnowledgeFilter, Sessions, Turn, TurnStatus};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::events::Follower;
use super::{Query, Tenant, check_limit};
use crate::AppState;
use crate::error::{ApiError, ErrorBody, JsonBody};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSession {
    /// The agent to talk to (its latest version).
    pub agent: String,
    pub title: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendMessage {
    pub message: String,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Whose sessions: only the caller's own (`me` or the caller's user id).
    pub user: Option<String>,
    /// Page size, 1 to 1000 (default 50).
    pub limit: Option<u32>,
    /// The `cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventParams {
    /// Start with this turn (default: the first open turn, else the last turn).
    pub turn: Option<u64>,
    /// A Bearer token, for clients that cannot set headers.
    pub access_token: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct KnowledgeParams {
    /// Words to search for.
    pub q: String,
    /// Only what this agent's turns found.
    pub agent: Option<String>,
    /// Only entries since: epoch milliseconds, or an age such as `30d`, `24h`, `15m`.
    pub since: Option<String>,
    /// At most this many hits, 1 to 100 (default 10).
    pub limit: Option<u32>,
}

/// A session with its turns and what they produced.
fn session_json(s: &agentry_sessions::Session, turns: &[Turn]) -> Value {
    let mut tools: Vec<String> = Vec::new();
    let mut artifacts: Vec<Value> = Vec::new();
    for t in turns {
        for name in &t.tools_used {
            if !tools.contains(name) {
                tools.push(name.clone());
            }
        }
        artifacts.extend(t.artifacts.iter().cloned());
    }
    let status = if turns.iter().any(|t| t.status == TurnStatus::Running) {
        json!("RUNNING")
    } else if turns.iter().any(|t| t.status == TurnStatus::Queued) {
        json!("QUEUED")
    } else {
        turns
            .last()
            .map(|t| json!(t.status))
            .unwrap_or(json!("NEW"))
    };
    let outputs: Vec<Value> = turns
        .iter()
        .filter_map(|t| t.output.clone().map(|o| json!({"turn": t.n, "output": o})))
        .collect();
    json!({
        "id": s.id, "agent": s.agent, "agent_version": s.agent_version, "user": s.user,
        "title": s.title, "created_ms": s.created_ms, "updated_ms": s.updated_ms,
        "status": status, "turns": turns, "tools_used": tools, "outputs": outputs,
        "artifacts": artifacts,
    })
}

/// Starts a session of the caller with an agent.
#[utoipa::path(post, path = "/v1/sessions", tag = "sessions", request_body = CreateSession,
    responses((status = 201, description = "the session"), (status = 400, body = ErrorBody),
        (status = 404, description = "no such agent", body = ErrorBody)))]
pub async fn create(
    t: Tenant,
    State(state): State<AppState>,
    JsonBody(req): JsonBody<CreateSession>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let p = &t.principal;
    let s = state
        .sessions()?
        .create_session(&p.tenant, &p.user, &req.agent, req.title.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(session_json(&s, &[]))))
}

/// The caller's sessions, newest first, a page at a time.
#[utoipa::path(get, path = "/v1/sessions", tag = "sessions", params(ListParams),
    responses((status = 200, description = "`{\"sessions\": [...], \"cursor\"}`"),
        (status = 400, body = ErrorBody),
        (status = 403, description = "another user's sessions", body = ErrorBody)))]
pub async fn list(
    t: Tenant,
    State(state): State<AppState>,
    Query(q): Query<ListParams>,
) -> Result<Json<Value>, ApiError> {
    let p = &t.principal;
    if let Some(u) = &q.user
        && u != "me"
        && u != &p.user
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!("query \"user\": only your own sessions are listed, not {u:?}'s"),
        ));
    }
    let limit = check_limit(q.limit)?.unwrap_or(50);
    let (sessions, cursor) = state
        .sessions()?
        .list_sessions(&p.tenant, &p.user, limit, q.cursor)
        .await?;
    // The stored summaries (`turns` is their count); a session's turns are on its own page.
    Ok(Json(json!({"sessions": sessions, "cursor": cursor})))
}

/// A session: its status, turns (brought up to date from their executions), the tools they
/// used, their outputs and artifacts.
#[utoipa::path(get, path = "/v1/sessions/{id}", tag = "sessions",
    params(("id" = String, Path, description = "the session id")),
    responses((status = 200, description = "the session"), (status = 404, body = ErrorBody)))]
pub async fn describe(
    t: Tenant,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let p = &t.principal;
    let sessions = state.sessions()?;
    let s = sessions.session(&p.tenant, &p.user, &id).await?;
    let turns = sessions.refresh(&t.engine, &p.tenant, &p.user, &id).await?;
    let mut out = session_json(&s, &turns);
    // The working context, while the cache holds it (the running turn's progress).
    out["context"] = sessions
        .context(&p.tenant, &p.user, &id)
        .await?
        .unwrap_or(Value::Null);
    Ok(Json(out))
}

/// Sends a message: a new turn. 202 with the turn (running, or queued behind an open one);
/// 409 when a turn is open and the agent's policy rejects another.
#[utoipa::path(post, path = "/v1/sessions/{id}/messages", tag = "sessions",
    params(("id" = String, Path, description = "the session id")), request_body = SendMessage,
    responses((status = 202, description = "the turn"), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "a turn is open and the policy rejects another", body = ErrorBody)))]
pub async fn send(
    t: Tenant,
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<SendMessage>,
) -> Result<(StatusCode, Json<Turn>), ApiError> {
    let p = &t.principal;
    let turn = state
        .sessions()?
        .send_message(&t.engine, &p.tenant, &p.user, &id, &req.message)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(turn)))
}

/// The session's turns live, as Server-Sent Events (see the module documentation).
#[utoipa::path(get, path = "/v1/sessions/{id}/events", tag = "sessions",
    params(("id" = String, Path, description = "the session id"), EventParams),
    responses((status = 200, content_type = "text/event-stream",
        description = "`turn_started`, the execution's history events, `turn_ended`, `answer`"),
        (status = 404, body = ErrorBody)))]
pub async fn events(
    t: Tenant,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<EventParams>,
) -> Result<Response, ApiError> {
    let sessions = state.sessions()?.clone();
    let p = t.principal.clone();
    // Unknown (or someone else's) sessions are 404 before any stream starts.
    let turns = sessions.refresh(&t.engine, &p.tenant, &p.user, &id).await?;
    let next = q.turn.unwrap_or_else(|| {
        turns
            .iter()
            .find(|t| t.status.is_open())
            .or(turns.last())
            .map(|t| t.n)
            .unwrap_or(1)
    });
    let follow = TurnStream {
        sessions,
        engine: t.engine,
        tenant: p.tenant,
        user: p.user,
        id,
        next,
        follower: None,
        deltas: state.deltas.as_ref().map(|d| d.subscribe()),
        pending: VecDeque::new(),
        poll: Duration::from_millis(state.gateway.limits.events_poll_ms.max(1)),
        ended: false,
    };
    let stream = stream::unfold(follow, |mut f| async move {
        f.next_event().await.map(|e| (Ok::<_, Infallible>(e), f))
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// Follows a session's turns one after another.
struct TurnStream {
    sessions: Sessions,
    engine: agentry_engine::Engine,
    tenant: String,
    user: String,
    id: String,
    /// The turn to follow next.
    next: u64,
    follower: Option<(u64, String, Follower)>,
    deltas: Option<tokio::sync::broadcast::Receiver<(String, Value)>>,
    pending: VecDeque<Event>,
    poll: Duration,
    ended: bool,
}

impl TurnStream {
    async fn next_event(&mut self) -> Option<Event> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Some(e);
            }
            if self.ended {
                return None;
            }
            if let Err(e) = self.advance().await {
                tracing::warn!("event stream of session {}: {}", self.id, e.message);
                return None;
            }
        }
    }

    /// Queues the next events, waiting for some.
    async fn advance(&mut self) -> Result<(), ApiError> {
        if let Some((n, arn, f)) = &mut self.follower {
            let n = *n;
            let batch = match &mut self.deltas {
                None => f.next_batch().await?,
                Some(rx) => tokio::select! {
                    batch = f.next_batch() => batch?,
                    delta = rx.recv() => {
                        match delta {
                            Ok((of, d)) if of == *arn => {
                                // The history up to the model call goes first.
                                let before = f.ready().await?;
                                push_history(&mut self.pending, n, before);
                                let data = json!({"turn": n, "text": d["text"]});
                                self.pending.push_back(
                                    Event::default().event("llm_delta").data(data.to_string()),
                                );
                            }
                            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                            Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                                self.deltas = None;
                            }
                        }
                        return Ok(());
                    }
                },
            };
            if !batch.is_empty() {
                for e in batch {
                    let mut e = super::executions::aws_event(e);
                    let id = e.get("id").and_then(Value::as_u64).unwrap_or(0);
                    let kind = e
                        .get("type")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    e["turn"] = json!(n);
                    self.pending.push_back(
                        Event::default()
                            .id(format!("{n}:{id}"))
                            .event(kind)
                            .data(e.to_string()),
                    );
                }
                return Ok(());
            }
            // The execution ended: wait for the turn to be closed from it.
            let turns = self.turns().await?;
            match turns.into_iter().find(|t| t.n == n) {
                Some(t) if !t.status.is_open() => self.ended_turn(t),
                _ => tokio::time::sleep(self.poll).await,
            }
            return Ok(());
        }
        let turns = self.turns().await?;
        match turns.iter().find(|t| t.n >= self.next) {
            Some(t) => match (&t.execution_arn, t.status) {
                (_, s) if !s.is_open() && t.execution_arn.is_none() => {
                    self.ended_turn(t.clone());
                }
                (Some(arn), _) => {
                    let data = json!({"turn": t.n, "message": t.message, "execution_arn": arn});
                    self.pending.push_back(
                        Event::default()
                            .event("turn_started")
                            .data(data.to_string()),
                    );
                    let f = Follower::new(self.engine.clone(), arn.clone(), 0, self.poll);
                    self.follower = Some((t.n, arn.clone(), f));
                }
                (None, _) => tokio::time::sleep(self.poll).await,
            },
            None if !turns.is_empty() && self.next > 1 => self.ended = true,
            None if turns.iter().any(|t| t.status.is_open()) => tokio::time::sleep(self.poll).await,
            None if !turns.is_empty() => self.ended = true,
            // No turn yet: wait for the first message.
            None => tokio::time::sleep(self.poll).await,
        }
        Ok(())
    }

    fn ended_turn(&mut self, t: Turn) {
        self.follower = None;
        self.next = t.n + 1;
        let answer = t.output.as_ref().and_then(answer_text);
        let n = t.n;
        self.pending.push_back(
            Event::default()
                .event("turn_ended")
                .data(serde_json::to_string(&t).unwrap_or_default()),
        );
        if let Some(text) = answer {
            self.pending.push_back(
                Event::default()
                    .event("answer")
                    .data(json!({"turn": n, "text": text}).to_string()),
            );
        }
    }

    async fn turns(&self) -> Result<Vec<Turn>, ApiError> {
        Ok(self
            .sessions
            .refresh(&self.engine, &self.tenant, &self.user, &self.id)
            .await?)
    }
}

/// Queues a turn's history events: `id:` `TURN:EVENT`, `event:` the history event type.
fn push_history(pending: &mut VecDeque<Event>, n: u64, batch: Vec<Value>) {
    for e in batch {
        let mut e = super::executions::aws_event(e);
        let id = e.get("id").and_then(Value::as_u64).unwrap_or(0);
        let kind = e
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        e["turn"] = json!(n);
        pending.push_back(
            Event::default()
                .id(format!("{n}:{id}"))
                .event(kind)
                .data(e.to_string()),
        );
    }
}

/// The text a turn answered with: `answer`, `summary` or `report` of its output.
fn answer_text(output: &Value) -> Option<String> {
    ["answer", "summary", "report"]
        .iter()
        .find_map(|k| output.get(*k).and_then(Value::as_str))
        .map(str::to_string)
}

/// `since` as epoch milliseconds.
fn since_ms(s: &str, now: i64) -> Result<i64, ApiError> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num.parse().map_err(|_| bad_since(s))?;
    let unit_ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(bad_since(s)),
    };
    Ok(now - n * unit_ms)
}

fn bad_since(s: &str) -> ApiError {
    ApiError::bad_request(format!(
        "query \"since\": {s:?} is neither epoch milliseconds nor an age such as 30d, 24h, 15m"
    ))
}

/// Full-text search of what the caller's finished turns found.
#[utoipa::path(get, path = "/v1/knowledge", tag = "sessions", params(KnowledgeParams),
    responses((status = 200, description = "`{\"hits\": [{\"text\", \"agent\", \"session\", \"at_ms\", \"score\"}]}`, best first"),
        (status = 400, body = ErrorBody)))]
pub async fn knowledge(
    t: Tenant,
    State(state): State<AppState>,
    Query(q): Query<KnowledgeParams>,
) -> Result<Json<Value>, ApiError> {
    if q.q.trim().is_empty() {
        return Err(ApiError::bad_request(
            "query \"q\": give words to search for",
        ));
    }
    let limit = match q.limit {
        None => 10,
        Some(n @ 1..=100) => n as usize,
        Some(_) => return Err(ApiError::bad_request("query \"limit\": must be 1 to 100")),
    };
    let filter = KnowledgeFilter {
        agent: q.agent,
        since_ms: q
            .since
            .as_deref()
            .map(|s| since_ms(s, crate::time::now_ms()))
            .transpose()?,
    };
    let kb = state.sessions()?.knowledge().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "KnowledgeUnavailable",
            "this server keeps no knowledge base",
        )
    })?;
    let p = &t.principal;
    let hits = kb
        .search_filtered(&p.tenant, &p.user, &q.q, &filter, limit)
        .await?;
    Ok(Json(json!({"hits": hits})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_ms_or_an_age() {
        assert_eq!(since_ms("1700000000000", 0).unwrap(), 1_700_000_000_000);
        assert_eq!(
            since_ms("2d", 200_000_000).unwrap(),
            200_000_000 - 172_800_000
        );
        assert!(since_ms("yesterday", 0).is_err());
        assert!(since_ms("3w", 0).is_err());
    }
}
