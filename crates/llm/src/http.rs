//! What the HTTP providers share: sending a JSON request and mapping an error answer to a
//! named error, and turning a server-sent-event body into Converse events.

use std::collections::VecDeque;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;

use crate::sse::{self, SseEvent};
use crate::types::{EventStream, StreamEvent};
use crate::{Error, Result};

/// A client with the given request timeout (connecting has its own, shorter one).
pub fn client(timeout: Duration) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| Error::Config(format!("http client: {e}")))
}

/// Sends `request`; an answer other than 2xx becomes the named error its status and body say.
pub async fn send(
    provider: &str,
    model: &str,
    request: reqwest::RequestBuilder,
) -> Result<reqwest::Response> {
    let response = request
        .send()
        .await
        .map_err(|e| Error::transport(provider, e))?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let text = response.text().await.unwrap_or_default();
    let (kind, message) = error_body(&text);
    Err(Error::from_http(
        provider,
        model,
        status.as_u16(),
        &kind,
        &message,
    ))
}

/// Sends `request` as [`send`] does and reads the answer's JSON body.
pub async fn send_json(
    provider: &str,
    model: &str,
    request: reqwest::RequestBuilder,
) -> Result<serde_json::Value> {
    send(provider, model, request)
        .await?
        .json()
        .await
        .map_err(|e| Error::transport(provider, e))
}

/// The error's kind and message from the body shapes providers use: OpenAI's and vLLM's
/// `{"error": {"message", "type", "code"}}`, Anthropic's `{"type": "error", "error": {"type",
/// "message"}}`, Ollama's `{"error": "..."}`, Bedrock's `{"message": ...}`; else the raw text.
pub fn error_body(text: &str) -> (String, String) {
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return (String::new(), text.trim().chars().take(500).collect());
    };
    let err = v.get("error").unwrap_or(&v);
    if let Some(s) = err.as_str() {
        return (String::new(), s.to_string());
    }
    let kind = err
        .get("code")
        .and_then(Value::as_str)
        .or_else(|| err.get("type").and_then(Value::as_str))
        .unwrap_or_default()
        .to_string();
    let message = err
        .get("message")
        .or_else(|| err.get("Message"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| text.trim().chars().take(500).collect());
    (kind, message)
}

/// Translates one provider's server-sent events into Converse events.
pub trait SseTranslator: Send + 'static {
    /// The events one SSE event stands for (possibly none).
    fn on_event(&mut self, event: SseEvent) -> Result<Vec<StreamEvent>>;
    /// The events still owed when the body ends; an error if the stream ended too early.
    fn on_end(&mut self) -> Result<Vec<StreamEvent>>;
    /// Whether the provider has said the stream is over (`[DONE]`, `message_stop`).
    fn finished(&self) -> bool;
}

/// The Converse events of an SSE response body.
pub fn translate(
    provider: &str,
    response: reqwest::Response,
    translator: impl SseTranslator,
) -> EventStream {
    let provider = provider.to_string();
    let body = Box::pin(sse::events(response));
    let state = (body, translator, VecDeque::new(), false, provider);
    Box::pin(futures_util::stream::unfold(
        state,
        |(mut body, mut tr, mut pending, mut done, provider)| async move {
            loop {
                if let Some(e) = pending.pop_front() {
                    return Some((Ok(e), (body, tr, pending, done, provider)));
                }
                if done {
                    return None;
                }
                let step = if tr.finished() {
                    done = true;
                    tr.on_end()
                } else {
                    match body.next().await {
                        Some(Ok(event)) => tr.on_event(event),
                        Some(Err(e)) => {
                            done = true;
                            Err(Error::transport(
                                &provider,
                                format!("stream broke off: {e}"),
                            ))
                        }
                        None => {
                            done = true;
                            tr.on_end()
                        }
                    }
                };
                match step {
                    Ok(events) => pending.extend(events),
                    Err(e) => {
                        done = true;
                        return Some((Err(e), (body, tr, pending, done, provider)));
                    }
                }
            }
        },
    ))
}

/// Parses an event's data as JSON.
pub fn json(provider: &str, data: &str) -> Result<Value> {
    serde_json::from_str(data).map_err(|e| Error::Protocol {
        provider: provider.to_string(),
        message: format!("event data is not JSON ({e}): {data}"),
    })
}
