//! Recorded exchanges: [`RecordedProvider`] answers from a file of request/response pairs, and
//! [`RecordingProvider`] wraps a real provider and appends each exchange it sees to such a file.
//! This is the default model of the offline demo and of tests.
//!
//! The file is JSON lines (one exchange per line) or one JSON document (an array of exchanges,
//! or `{"exchanges": [...]}`). An exchange is
//!
//! ```json
//! {"request": {"modelId": "demo", "messages": [{"role": "user", "content": [{"text": "Hi"}]}]},
//!  "response": {"text": "Hello!"}}
//! ```
//!
//! - `request` holds any of Converse's request fields; a field left out matches anything, a
//!   field given must equal the request's (after normalising: text is trimmed, tools are
//!   compared by name order). When several exchanges match, the one giving the most fields
//!   wins, then the earliest in the file.
//! - `response` is a whole Converse response, or the short form `{"text": "..."}`,
//!   `{"toolUse": [{"name": "search", "input": {...}}], "text": "..."}` (stop reason
//!   `tool_use`; ids are made up when left out), with optional `stopReason` and `usage`
//!   (estimated from the text when left out).
//! - `digest` (written by the recorder) is the request's digest as errors show it; it is
//!   informational.
//!
//! A request nothing matches fails with `Llm.NoRecording`, naming the model and showing the
//! request's digest and its last user text.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::io::AsyncWriteExt;

use crate::provider::{Provider, StreamAccumulator, events_from_response, stream_of};
use crate::types::*;
use crate::{Error, Result, hash};

/// One recorded exchange.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exchange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The request's fields to match (Converse's names).
    pub request: Map<String, Value>,
    pub response: Value,
}

/// The request as matching sees it: Converse's JSON with text trimmed, tools in name order,
/// and empty optional parts left out.
pub fn normalize(request: &ConverseRequest) -> Value {
    let mut r = request.clone();
    for m in &mut r.messages {
        for b in &mut m.content {
            if let ContentBlock::Text(t) = b {
                *t = t.trim().to_string();
            }
        }
    }
    for s in &mut r.system {
        s.text = s.text.trim().to_string();
    }
    if let Some(tc) = &mut r.tool_config {
        tc.tools.sort_by(|a, b| a.spec().name.cmp(&b.spec().name));
    }
    if r.inference_config.as_ref() == Some(&InferenceConfig::default()) {
        r.inference_config = None;
    }
    serde_json::to_value(&r).expect("requests serialize")
}

/// The short digest errors show for a request (the first 12 hex digits of its SHA-256).
pub fn request_digest(request: &ConverseRequest) -> String {
    format!("sha256:{}", &hash::digest(&normalize(request))[..12])
}

fn summary(request: &ConverseRequest) -> String {
    let last = request
        .messages
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .map(|m| {
            let t = m.text();
            if t.is_empty() && m.has_tool_results() {
                "(tool results)".to_string()
            } else {
                t
            }
        })
        .unwrap_or_default();
    let mut short: String = last.chars().take(60).collect();
    if last.chars().count() > 60 {
        short.push('…');
    }
    format!(
        "{} message{}, last user text {:?}",
        request.messages.len(),
        if request.messages.len() == 1 { "" } else { "s" },
        short
    )
}

/// Plays back recorded exchanges.
pub struct RecordedProvider {
    exchanges: Vec<(Map<String, Value>, ConverseResponse)>,
    source: String,
}

impl RecordedProvider {
    /// Reads a recording file (JSON lines, or one JSON document).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("recording {}: {e}", path.display())))?;
        let exchanges = parse_file(&text)
            .map_err(|e| Error::Config(format!("recording {}: {e}", path.display())))?;
        Self::from_exchanges(exchanges, &path.display().to_string())
    }

    /// Plays back `exchanges`; `source` names them in errors.
    pub fn from_exchanges(exchanges: Vec<Exchange>, source: &str) -> Result<Self> {
        let exchanges = exchanges
            .into_iter()
            .enumerate()
            .map(|(i, e)| {
                let response = expand_response(e.response)
                    .map_err(|m| Error::Config(format!("{source}: exchange {}: {m}", i + 1)))?;
                Ok((e.request, response))
            })
            .collect::<Result<_>>()?;
        Ok(RecordedProvider {
            exchanges,
            source: source.to_string(),
        })
    }

    fn lookup(&self, request: &ConverseRequest) -> Result<ConverseResponse> {
        let actual = normalize(request);
        let mut best: Option<(usize, &ConverseResponse)> = None;
        for (fields, response) in &self.exchanges {
            let matches = fields.iter().all(|(k, want)| {
                let got = actual.get(k).cloned().unwrap_or(Value::Null);
                normalize_partial(k, want) == got
            });
            if matches && best.is_none_or(|(n, _)| fields.len() > n) {
                best = Some((fields.len(), response));
            }
        }
        best.map(|(_, r)| r.clone())
            .ok_or_else(|| Error::NoRecording {
                model: request.model_id.clone(),
                digest: request_digest(request),
                summary: summary(request),
                file: self.source.clone(),
            })
    }
}

/// A recorded request field, normalised as [`normalize`] does the request's.
fn normalize_partial(key: &str, v: &Value) -> Value {
    let mut probe = json!({"modelId": "", "messages": []});
    probe[key] = v.clone();
    match serde_json::from_value::<ConverseRequest>(probe) {
        Ok(r) => normalize(&r).get(key).cloned().unwrap_or(Value::Null),
        Err(_) => v.clone(),
    }
}

fn parse_file(text: &str) -> std::result::Result<Vec<Exchange>, String> {
    // One JSON document (an array, or an object with "exchanges"), else JSON lines.
    let whole = serde_json::from_str::<Value>(text);
    let list = match whole {
        Ok(Value::Array(a)) => Some(Value::Array(a)),
        Ok(Value::Object(mut m)) if m.contains_key("exchanges") => m.remove("exchanges"),
        Err(e) if text.trim_start().starts_with('[') => return Err(format!("not JSON: {e}")),
        _ => None,
    };
    if let Some(list) = list {
        return serde_json::from_value(list).map_err(|e| format!("exchanges: {e}"));
    }
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with("//"))
        .map(|(n, l)| serde_json::from_str(l).map_err(|e| format!("line {}: {e}", n + 1)))
        .collect()
}

/// A whole response from a recorded one (whole, or in the short form).
fn expand_response(v: Value) -> std::result::Result<ConverseResponse, String> {
    if v.get("output").is_some() {
        return serde_json::from_value(v).map_err(|e| format!("response: {e}"));
    }
    let Value::Object(m) = v else {
        return Err("response must be an object".into());
    };
    for k in m.keys() {
        if !["text", "toolUse", "stopReason", "usage"].contains(&k.as_str()) {
            return Err(format!(
                "response: unknown field \"{k}\" (expected a Converse response, or text, toolUse, stopReason, usage)"
            ));
        }
    }
    let mut content = Vec::new();
    let text = m.get("text").and_then(Value::as_str).unwrap_or_default();
    if !text.is_empty() {
        content.push(ContentBlock::Text(text.to_string()));
    }
    let tools = m.get("toolUse").cloned().unwrap_or(json!([]));
    let tools = match tools {
        Value::Array(a) => a,
        one => vec![one],
    };
    for (i, t) in tools.iter().enumerate() {
        let name = t["name"]
            .as_str()
            .ok_or_else(|| format!("response: toolUse {} has no name", i + 1))?;
        content.push(ContentBlock::ToolUse(ToolUseBlock {
            tool_use_id: t["toolUseId"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("tooluse_{}_{}", name, i + 1)),
            name: name.to_string(),
            input: t.get("input").cloned().unwrap_or(json!({})),
        }));
    }
    let stop_reason = match m.get("stopReason").and_then(Value::as_str) {
        Some(s) => StopReason::parse(s),
        None if !tools.is_empty() => StopReason::ToolUse,
        None => StopReason::EndTurn,
    };
    let usage = match m.get("usage") {
        Some(u) => {
            serde_json::from_value(u.clone()).map_err(|e| format!("response: usage: {e}"))?
        }
        None => {
            let out = (text.len() as u64).div_ceil(4)
                + tools
                    .iter()
                    .map(|t| t.to_string().len() as u64 / 4)
                    .sum::<u64>();
            TokenUsage::new(0, out)
        }
    };
    Ok(ConverseResponse {
        output: ConverseOutput {
            message: Message {
                role: Role::Assistant,
                content,
            },
        },
        stop_reason,
        usage,
        metrics: Metrics::default(),
    })
}

#[async_trait]
impl Provider for RecordedProvider {
    fn name(&self) -> &str {
        "recorded"
    }

    async fn converse(&self, request: &ConverseRequest) -> Result<ConverseResponse> {
        self.lookup(request)
    }

    async fn converse_stream(&self, request: &ConverseRequest) -> Result<EventStream> {
        Ok(stream_of(events_from_response(&self.lookup(request)?)))
    }
}

/// Records a provider's exchanges: every successful call is appended to a JSON-lines file that
/// [`RecordedProvider::open`] plays back.
pub struct RecordingProvider {
    inner: Arc<dyn Provider>,
    path: PathBuf,
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl RecordingProvider {
    pub fn new(inner: Arc<dyn Provider>, path: impl Into<PathBuf>) -> Self {
        RecordingProvider {
            inner,
            path: path.into(),
            lock: Arc::default(),
        }
    }
}

async fn append(
    path: &Path,
    lock: &tokio::sync::Mutex<()>,
    request: &ConverseRequest,
    response: &ConverseResponse,
) -> Result<()> {
    let Value::Object(fields) = normalize(request) else {
        unreachable!("a request is an object")
    };
    let exchange = Exchange {
        digest: Some(request_digest(request)),
        request: fields,
        response: serde_json::to_value(response).expect("responses serialize"),
    };
    let mut line = serde_json::to_string(&exchange).expect("exchanges serialize");
    line.push('\n');
    let _guard = lock.lock().await;
    let mut f = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .await
        .map_err(|e| Error::Config(format!("recording {}: {e}", path.display())))?;
    let failed = |e: std::io::Error| Error::Config(format!("recording {}: {e}", path.display()));
    f.write_all(line.as_bytes()).await.map_err(failed)?;
    // tokio's files write in the background: without the flush the line may land only after
    // the call has answered.
    f.flush().await.map_err(failed)
}

#[async_trait]
impl Provider for RecordingProvider {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn converse(&self, request: &ConverseRequest) -> Result<ConverseResponse> {
        let response = self.inner.converse(request).await?;
        append(&self.path, &self.lock, request, &response).await?;
        Ok(response)
    }

    async fn converse_stream(&self, request: &ConverseRequest) -> Result<EventStream> {
        let inner = self.inner.converse_stream(request).await?;
        let acc = StreamAccumulator::new(self.inner.name());
        let state = (
            inner,
            Some(acc),
            request.clone(),
            self.path.clone(),
            self.lock.clone(),
        );
        Ok(Box::pin(futures_util::stream::unfold(
            state,
            |(mut inner, mut acc, request, path, lock)| async move {
                match inner.next().await {
                    Some(Ok(event)) => {
                        if let Some(a) = acc.as_mut()
                            && a.push(&event).is_err()
                        {
                            acc = None;
                        }
                        Some((Ok(event), (inner, acc, request, path, lock)))
                    }
                    Some(Err(e)) => Some((Err(e), (inner, None, request, path, lock))),
                    None => {
                        // The stream completed: record what it carried.
                        if let Some(response) = acc.take().and_then(|a| a.finish().ok())
                            && let Err(e) = append(&path, &lock, &request, &response).await
                        {
                            return Some((Err(e), (inner, None, request, path, lock)));
                        }
                        None
                    }
                }
            },
        )))
    }
}
