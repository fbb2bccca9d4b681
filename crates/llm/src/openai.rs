//! OpenAI-compatible Chat Completions (`POST {base_url}/chat/completions`): OpenAI, vLLM,
//! Ollama (`http://localhost:11434/v1`), llama.cpp's server. Converse's messages become chat
//! messages (tool results become `role: "tool"` messages, tool uses `tool_calls`), and
//! streaming reads `data: {chunk}` events up to `data: [DONE]`, assembling tool-call argument
//! deltas by their index.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::{Value, json};

use crate::http::{self, SseTranslator};
use crate::provider::{Provider, parse_tool_input};
use crate::sse::SseEvent;
use crate::types::*;
use crate::{Error, Result};

/// An OpenAI-compatible server.
pub struct OpenAiProvider {
    base_url: String,
    api_key: Option<String>,
    client: reqwest::Client,
}

const NAME: &str = "openai";

impl OpenAiProvider {
    /// `base_url` ends before `/chat/completions` (`https://api.openai.com/v1`).
    pub fn new(base_url: &str, api_key: Option<String>, timeout: Duration) -> Result<Self> {
        Ok(OpenAiProvider {
            base_url: base_url.trim_end_matches('/').to_string(),
            api_key,
            client: http::client(timeout)?,
        })
    }

    fn post(&self, body: &Value) -> reqwest::RequestBuilder {
        let mut r = self
            .client
            .post(format!("{}/chat/completions", self.base_url))
            .json(body);
        if let Some(key) = &self.api_key {
            r = r.bearer_auth(key);
        }
        r
    }
}

#[async_trait]
impl Provider for OpenAiProvider {
    fn name(&self) -> &str {
        NAME
    }

    async fn converse(&self, request: &ConverseRequest) -> Result<ConverseResponse> {
        let started = Instant::now();
        let body = to_chat(request, false)?;
        let v = http::send_json(NAME, &request.model_id, self.post(&body)).await?;
        let mut out = from_chat(&v)?;
        out.metrics.latency_ms = started.elapsed().as_millis() as u64;
        Ok(out)
    }

    async fn converse_stream(&self, request: &ConverseRequest) -> Result<EventStream> {
        let body = to_chat(request, true)?;
        let response = http::send(NAME, &request.model_id, self.post(&body)).await?;
        Ok(http::translate(NAME, response, ChunkTranslator::new()))
    }
}

/// The Chat Completions body for a Converse request.
pub fn to_chat(request: &ConverseRequest, stream: bool) -> Result<Value> {
    let mut messages = Vec::new();
    if !request.system.is_empty() {
        messages.push(json!({"role": "system", "content": request.system_text()}));
    }
    for m in &request.messages {
        match m.role {
            Role::User => {
                let mut parts = Vec::new();
                for b in &m.content {
                    match b {
                        ContentBlock::ToolResult(r) => messages.push(json!({
                            "role": "tool",
                            "tool_call_id": r.tool_use_id,
                            "content": r.content.iter().map(ToolResultContent::as_text).collect::<Vec<_>>().join("\n"),
                        })),
                        ContentBlock::Text(t) => parts.push(json!({"type": "text", "text": t})),
                        ContentBlock::Image(i) => parts.push(json!({"type": "image_url",
                            "image_url": {"url": data_url(&format!("image/{}", i.format), &i.source)?}})),
                        ContentBlock::Document(d) => parts.push(json!({"type": "file",
                            "file": {"filename": d.name, "file_data": data_url(&doc_mime(&d.format), &d.source)?}})),
                        ContentBlock::ToolUse(_) => {
                            return Err(Error::InvalidRequest(
                                "a user message cannot carry a toolUse block".into(),
                            ));
                        }
                    }
                }
                match parts.as_slice() {
                    [] => {}
                    [only] if only["type"] == "text" => {
                        messages.push(json!({"role": "user", "content": only["text"]}))
                    }
                    _ => messages.push(json!({"role": "user", "content": parts})),
                }
            }
            Role::Assistant => {
                let text = m.text();
                let calls: Vec<Value> = m
                    .tool_uses()
                    .map(|t| {
                        json!({"id": t.tool_use_id, "type": "function",
                            "function": {"name": t.name, "arguments": t.input.to_string()}})
                    })
                    .collect();
                let mut msg = json!({"role": "assistant",
                    "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { json!(text) }});
                if !calls.is_empty() {
                    msg["tool_calls"] = json!(calls);
                }
                messages.push(msg);
            }
        }
    }
    let mut body = json!({"model": request.model_id, "messages": messages});
    if let Some(c) = &request.inference_config {
        if let Some(v) = c.max_tokens {
            body["max_tokens"] = json!(v);
        }
        if let Some(v) = c.temperature {
            body["temperature"] = json!(v);
        }
        if let Some(v) = c.top_p {
            body["top_p"] = json!(v);
        }
        if let Some(v) = &c.stop_sequences {
            body["stop"] = json!(v);
        }
    }
    if let Some(tc) = &request.tool_config {
        body["tools"] = tc
            .tools
            .iter()
            .map(|t| {
                let s = t.spec();
                let mut f = json!({"name": s.name, "parameters": s.input_schema.json()});
                if let Some(d) = &s.description {
                    f["description"] = json!(d);
                }
                json!({"type": "function", "function": f})
            })
            .collect();
        if let Some(choice) = &tc.tool_choice {
            body["tool_choice"] = match choice {
                ToolChoice::Auto(_) => json!("auto"),
                ToolChoice::Any(_) => json!("required"),
                ToolChoice::Tool(t) => json!({"type": "function", "function": {"name": t.name}}),
            };
        }
    }
    if stream {
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});
    }
    if let Some(Value::Object(extra)) = &request.additional_model_request_fields {
        for (k, v) in extra {
            body[k] = v.clone();
        }
    }
    Ok(body)
}

fn data_url(mime: &str, source: &BinarySource) -> Result<String> {
    match source {
        BinarySource::Bytes(b64) => Ok(format!("data:{mime};base64,{b64}")),
        BinarySource::S3Location(s) => Err(Error::InvalidRequest(format!(
            "an OpenAI-compatible server cannot read {}: send the bytes",
            s.uri
        ))),
    }
}

fn doc_mime(format: &str) -> String {
    match format {
        "pdf" => "application/pdf".into(),
        "csv" => "text/csv".into(),
        "html" => "text/html".into(),
        "md" => "text/markdown".into(),
        "txt" => "text/plain".into(),
        other => format!("application/{other}"),
    }
}

/// `finish_reason` to Converse's stop reason.
pub fn stop_reason(finish: &str) -> StopReason {
    match finish {
        "stop" => StopReason::EndTurn,
        "length" => StopReason::MaxTokens,
        "tool_calls" | "function_call" => StopReason::ToolUse,
        "content_filter" => StopReason::ContentFiltered,
        other => StopReason::Other(other.to_string()),
    }
}

fn usage(v: &Value) -> TokenUsage {
    let n = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    TokenUsage::new(n("prompt_tokens"), n("completion_tokens"))
}

/// A Converse response from a chat completion.
pub fn from_chat(v: &Value) -> Result<ConverseResponse> {
    let protocol = |m: &str| Error::Protocol {
        provider: NAME.into(),
        message: m.to_string(),
    };
    let choice = v
        .pointer("/choices/0")
        .ok_or_else(|| protocol("completion has no choices"))?;
    let msg = &choice["message"];
    let mut content = Vec::new();
    if let Some(t) = msg["content"].as_str().filter(|t| !t.is_empty()) {
        content.push(ContentBlock::Text(t.to_string()));
    }
    for call in msg["tool_calls"].as_array().into_iter().flatten() {
        content.push(ContentBlock::ToolUse(ToolUseBlock {
            tool_use_id: call["id"].as_str().unwrap_or_default().to_string(),
            name: call
                .pointer("/function/name")
                .and_then(Value::as_str)
                .ok_or_else(|| protocol("tool call without a function name"))?
                .to_string(),
            input: parse_tool_input(
                NAME,
                call.pointer("/function/arguments")
                    .and_then(Value::as_str)
                    .unwrap_or(""),
            )?,
        }));
    }
    Ok(ConverseResponse {
        output: ConverseOutput {
            message: Message {
                role: Role::Assistant,
                content,
            },
        },
        stop_reason: stop_reason(choice["finish_reason"].as_str().unwrap_or("stop")),
        usage: usage(&v["usage"]),
        metrics: Metrics::default(),
    })
}

/// `chat.completion.chunk` events to Converse events.
pub struct ChunkTranslator {
    started: bool,
    next_index: u32,
    /// The open text block's index.
    text: Option<u32>,
    /// OpenAI's tool-call index to our block index, for open tool blocks.
    tools: HashMap<u64, u32>,
    stop: Option<StopReason>,
    usage: TokenUsage,
    done: bool,
    started_at: Instant,
}

impl ChunkTranslator {
    pub fn new() -> Self {
        ChunkTranslator {
            started: false,
            next_index: 0,
            text: None,
            tools: HashMap::new(),
            stop: None,
            usage: TokenUsage::default(),
            done: false,
            started_at: Instant::now(),
        }
    }

    fn close_all(&mut self, out: &mut Vec<StreamEvent>) {
        let mut open: Vec<u32> = self.text.take().into_iter().collect();
        open.extend(self.tools.drain().map(|(_, i)| i));
        open.sort();
        for i in open {
            out.push(StreamEvent::ContentBlockStop(ContentBlockStop {
                content_block_index: i,
            }));
        }
    }
}

impl Default for ChunkTranslator {
    fn default() -> Self {
        Self::new()
    }
}

impl SseTranslator for ChunkTranslator {
    fn on_event(&mut self, event: SseEvent) -> Result<Vec<StreamEvent>> {
        if event.data.trim() == "[DONE]" {
            self.done = true;
            return Ok(Vec::new());
        }
        let v = http::json(NAME, &event.data)?;
        if v.get("error").is_some() {
            let (kind, message) = http::error_body(&event.data);
            let status = v
                .pointer("/error/code")
                .and_then(Value::as_u64)
                .unwrap_or(500) as u16;
            return Err(Error::from_http(NAME, "", status, &kind, &message));
        }
        let mut out = Vec::new();
        if !self.started {
            self.started = true;
            out.push(StreamEvent::MessageStart(MessageStart {
                role: Role::Assistant,
            }));
        }
        if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
            self.usage = usage(u);
        }
        let Some(choice) = v.pointer("/choices/0") else {
            return Ok(out);
        };
        let delta = &choice["delta"];
        if let Some(t) = delta["content"].as_str().filter(|t| !t.is_empty()) {
            let index = match self.text {
                Some(i) => i,
                None => {
                    let i = self.next_index;
                    self.next_index += 1;
                    self.text = Some(i);
                    i
                }
            };
            out.push(StreamEvent::ContentBlockDelta(ContentBlockDelta {
                content_block_index: index,
                delta: BlockDelta::Text(t.to_string()),
            }));
        }
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            let tool_index = call["index"].as_u64().unwrap_or(0);
            let index = match self.tools.get(&tool_index) {
                Some(i) => *i,
                None => {
                    // A tool call begins: the text before it is complete.
                    if let Some(t) = self.text.take() {
                        out.push(StreamEvent::ContentBlockStop(ContentBlockStop {
                            content_block_index: t,
                        }));
                    }
                    let i = self.next_index;
                    self.next_index += 1;
                    self.tools.insert(tool_index, i);
                    out.push(StreamEvent::ContentBlockStart(ContentBlockStart {
                        content_block_index: i,
                        start: BlockStart::ToolUse(ToolUseStart {
                            tool_use_id: call["id"].as_str().unwrap_or_default().to_string(),
                            name: call
                                .pointer("/function/name")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_string(),
                        }),
                    }));
                    i
                }
            };
            if let Some(args) = call
                .pointer("/function/arguments")
                .and_then(Value::as_str)
                .filter(|a| !a.is_empty())
            {
                out.push(StreamEvent::ContentBlockDelta(ContentBlockDelta {
                    content_block_index: index,
                    delta: BlockDelta::ToolUse(ToolUseDelta {
                        input: args.to_string(),
                    }),
                }));
            }
        }
        if let Some(f) = choice["finish_reason"].as_str() {
            self.stop = Some(stop_reason(f));
            self.close_all(&mut out);
        }
        Ok(out)
    }

    fn on_end(&mut self) -> Result<Vec<StreamEvent>> {
        let Some(stop) = self.stop.take() else {
            return Err(Error::ServiceUnavailable {
                provider: NAME.into(),
                message: "stream ended before a finish_reason".into(),
            });
        };
        let mut out = Vec::new();
        self.close_all(&mut out);
        out.push(StreamEvent::MessageStop(MessageStop { stop_reason: stop }));
        out.push(StreamEvent::Metadata(StreamMetadata {
            usage: self.usage,
            metrics: Metrics {
                latency_ms: self.started_at.elapsed().as_millis() as u64,
            },
        }));
        Ok(out)
    }

    fn finished(&self) -> bool {
        self.done
    }
}
