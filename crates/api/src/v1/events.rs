//! An execution's history, live: each event as it is recorded, over Server-Sent Events
//! (`id:` the event's id, `event:` its type, `data:` the event as GetExecutionHistory returns
//! it) or WebSocket (one JSON text message per event: `{"id", "type", "event"}`; the handshake
//! is accepted on `/events` itself and on `/events/ws`). A client that
//! reconnects with `Last-Event-ID` (or `?after=N`) gets every event after N, none twice; the
//! stream ends after the execution's final event. While a model call of the execution
//! streams on this node, its pieces of output come too, after the history recorded before them
//! (SSE `event: llm_delta`, `data: {"text"}`, without an id; WebSocket `{"type": "llm_delta",
//! "delta": {"text"}}`): they are not history, so a reconnecting client does not get them again.
//!
//! The stored history is the log: a stream follows it by reading the page after the last event
//! it sent whenever this node commits a step, and at least every `limits.events_poll_ms`, so
//! it works the same whichever node recorded the events.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::IntoParams;

use super::{Query, Tenant};
use crate::AppState;
use crate::error::{ApiError, ErrorBody};

/// Events read per history page while following.
const PAGE: u32 = 100;

const FINAL: [&str; 4] = [
    "ExecutionSucceeded",
    "ExecutionFailed",
    "ExecutionAborted",
    "ExecutionTimedOut",
];

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventParams {
    /// Send only events after this id (as `Last-Event-ID` does).
    pub after: Option<u64>,
    /// A Bearer token, for clients that cannot set headers (EventSource, browsers' WebSocket).
    pub access_token: Option<String>,
}

/// Follows one execution's history from after a given event id.
pub struct Follower {
    engine: agentry_engine::Engine,
    arn: String,
    after: u64,
    /// The history page the next events will be on.
    page_token: Option<String>,
    poll: Duration,
    done: bool,
}

impl Follower {
    pub fn new(engine: agentry_engine::Engine, arn: String, after: u64, poll: Duration) -> Self {
        Self {
            engine,
            arn,
            after,
            page_token: None,
            poll,
            done: false,
        }
    }

    /// The next events in order, waiting for at least one; empty once the execution has ended
    /// and every event was given.
    pub async fn next_batch(&mut self) -> Result<Vec<Value>, agentry_engine::Error> {
        if self.done {
            return Ok(Vec::new());
        }
        let watch = self.engine.watch_execution(&self.arn);
        loop {
            // Made before reading, so a step committed during the read is not missed.
            let committed = watch.committed();
            let page = self
                .engine
                .get_execution_history(&self.arn, Some(PAGE), false, self.page_token.clone())
                .await?;
            let full = page.next_token.is_some();
            if let Some(t) = page.next_token {
                self.page_token = Some(t);
            }
            let new: Vec<Value> = page
                .items
                .into_iter()
                .filter(|e| event_id(e) > self.after)
                .collect();
            if let Some(last) = new.last() {
                self.after = event_id(last);
                if FINAL.contains(&event_type(last)) {
                    self.done = true;
                }
                return Ok(new);
            }
            if full {
                continue;
            }
            // Nothing new: the end when the execution has ended (its final event was given).
            let status = self.engine.describe_execution(&self.arn).await?.status;
            if status != "RUNNING" {
                let page = self
                    .engine
                    .get_execution_history(&self.arn, Some(PAGE), false, self.page_token.clone())
                    .await?;
                let new: Vec<Value> = page
                    .items
                    .into_iter()
                    .filter(|e| event_id(e) > self.after)
                    .collect();
                self.done = true;
                if let Some(last) = new.last() {
                    self.after = event_id(last);
                }
                return Ok(new);
            }
            // Steps this node commits wake the stream at once; other nodes' within the poll.
            tokio::select! {
                _ = committed => {}
                _ = tokio::time::sleep(self.poll) => {}
            }
        }
    }
}

impl Follower {
    /// The events recorded since the last ones given, without waiting (empty when none).
    pub async fn ready(&mut self) -> Result<Vec<Value>, agentry_engine::Error> {
        if self.done {
            return Ok(Vec::new());
        }
        loop {
            let page = self
                .engine
                .get_execution_history(&self.arn, Some(PAGE), false, self.page_token.clone())
                .await?;
            let full = page.next_token.is_some();
            if let Some(t) = page.next_token {
                self.page_token = Some(t);
            }
            let new: Vec<Value> = page
                .items
                .into_iter()
                .filter(|e| event_id(e) > self.after)
                .collect();
            if let Some(last) = new.last() {
                self.after = event_id(last);
                self.done = FINAL.contains(&event_type(last));
                return Ok(new);
            }
            if !full {
                return Ok(Vec::new());
            }
        }
    }
}

fn event_id(e: &Value) -> u64 {
    e.get("id").and_then(Value::as_u64).unwrap_or(0)
}

fn event_type(e: &Value) -> &str {
    e.get("type").and_then(Value::as_str).unwrap_or("")
}

/// Where a stream starts: `Last-Event-ID`, else `?after=`, else the beginning.
fn resume_after(headers: &HeaderMap, q: &EventParams) -> Result<u64, ApiError> {
    match headers.get("last-event-id") {
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| ApiError::bad_request("header Last-Event-ID: expected an event id")),
        None => Ok(q.after.unwrap_or(0)),
    }
}

async fn follower(
    t: &Tenant,
    state: &AppState,
    id: String,
    after: u64,
) -> Result<Follower, ApiError> {
    // Unknown executions are 404 before any stream starts.
    t.engine.describe_execution(&id).await?;
    Ok(Follower::new(
        t.engine.clone(),
        id,
        after,
        Duration::from_millis(state.gateway.limits.events_poll_ms.max(1)),
    ))
}

/// What an execution's live stream carries: its history events, and pieces of model output
/// while a model call of the execution streams (not part of the history: a reconnecting
/// client resumes by history id and does not get them again).
enum Item {
    History(Value),
    Delta(Value),
}

type Deltas = tokio::sync::broadcast::Receiver<(String, Value)>;

/// The follower's events and, when this node carries model output, the execution's deltas,
/// each placed after the history recorded before it; ends after the final event.
fn items(f: Follower, deltas: Option<Deltas>) -> impl Stream<Item = Item> + Send {
    let state = (f, deltas, std::collections::VecDeque::new());
    stream::unfold(state, |(mut f, mut deltas, mut pending)| async move {
        loop {
            if let Some(item) = pending.pop_front() {
                return Some((item, (f, deltas, pending)));
            }
            if f.done {
                return None;
            }
            let batch = match &mut deltas {
                None => f.next_batch().await,
                Some(rx) => tokio::select! {
                    batch = f.next_batch() => batch,
                    delta = rx.recv() => {
                        match delta {
                            Ok((of, d)) if of == f.arn => match f.ready().await {
                                Ok(before) => {
                                    pending.extend(before.into_iter().map(Item::History));
                                    pending.push_back(Item::Delta(d));
                                    continue;
                                }
                                Err(e) => Err(e),
                            },
                            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                                continue;
                            }
                            Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                                deltas = None;
                                continue;
                            }
                        }
                    }
                },
            };
            match batch {
                Ok(batch) => pending.extend(batch.into_iter().map(Item::History)),
                Err(e) => {
                    tracing::warn!("event stream of {}: {e}", f.arn);
                    return None;
                }
            }
        }
    })
}

/// The execution's history events as Server-Sent Events (or, to a WebSocket handshake, as
/// WebSocket messages, as on `/events/ws`).
#[utoipa::path(get, path = "/v1/executions/{id}/events", tag = "executions",
    params(("id" = String, Path, description = "the execution ARN, URL-encoded"), EventParams,
        ("Last-Event-ID" = Option<u64>, Header, description = "resume after this event id")),
    responses((status = 200, content_type = "text/event-stream",
        description = "`id:` event id, `event:` event type, `data:` the event as GetExecutionHistory returns it"),
        (status = 404, body = ErrorBody)))]
pub async fn sse(
    t: Tenant,
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(q): Query<EventParams>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let after = resume_after(&headers, &q)?;
    let f = follower(&t, &state, id, after).await?;
    let deltas = state.deltas.as_ref().map(|d| d.subscribe());
    // A WebSocket handshake on the same path gets the same events as messages.
    if let Ok(ws) = upgrade {
        return Ok(ws.on_upgrade(move |socket| forward(socket, f, deltas)));
    }
    let stream = items(f, deltas).map(|item| {
        Ok::<_, Infallible>(match item {
            Item::History(e) => {
                let e = super::executions::aws_event(e);
                Event::default()
                    .id(event_id(&e).to_string())
                    .event(event_type(&e))
                    .data(e.to_string())
            }
            Item::Delta(d) => Event::default().event("llm_delta").data(d.to_string()),
        })
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// The execution's history events over WebSocket: one text message per event.
#[utoipa::path(get, path = "/v1/executions/{id}/events/ws", tag = "executions",
    params(("id" = String, Path, description = "the execution ARN, URL-encoded"), EventParams),
    responses((status = 101, description = "WebSocket: text messages `{\"id\", \"type\", \"event\"}`, closed after the final event"),
        (status = 404, body = ErrorBody)))]
pub async fn websocket(
    t: Tenant,
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(q): Query<EventParams>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let after = resume_after(&headers, &q)?;
    let f = follower(&t, &state, id, after).await?;
    let deltas = state.deltas.as_ref().map(|d| d.subscribe());
    Ok(ws.on_upgrade(move |socket| forward(socket, f, deltas)))
}

async fn forward(mut socket: WebSocket, f: Follower, deltas: Option<Deltas>) {
    let mut items = Box::pin(items(f, deltas));
    loop {
        tokio::select! {
            item = items.next() => {
                let msg = match item {
                    None => break,
                    Some(Item::History(e)) => {
                        let e = super::executions::aws_event(e);
                        json!({"id": event_id(&e), "type": event_type(&e), "event": e})
                    }
                    Some(Item::Delta(d)) => json!({"type": "llm_delta", "delta": d}),
                };
                if socket.send(Message::Text(msg.to_string().into())).await.is_err() {
                    return;
                }
            }
            msg = socket.recv() => match msg {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            },
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}
