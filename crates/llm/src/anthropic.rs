//! Anthropic's Messages API (`POST {base_url}/v1/messages` with `x-api-key` and
//! `anthropic-version`). Converse maps onto it closely: content blocks become typed blocks
//! (`text`, `image`, `document`, `tool_use`, `tool_result`), and the streaming events
//! (`message_start`, `content_block_start`, `content_block_delta` with `text_delta` or
//! `input_json_delta`, `content_block_stop`, `message_delta`, `message_stop`, `error`) become
//! Converse's. Block types Converse has no place for (`thinking`) are skipped.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::{Value, json};

use crate::http::{self, SseTranslator};
use crate::provider::Provider;
use crate::sse::SseEvent;
use crate::types::*;
use crate::{Error, Result};

const NAME: &str = "anthropic";
/// The API version sent in `anthropic-version`.
pub const API_VERSION: &str = "2023-06-01";
/// `max_tokens` is required by the Messages API; this is sent when the request has none.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

pub struct AnthropicProvider {
    base_url: String,
    api_key: String,
    client: reqwest::Client,
}

impl AnthropicProvider {
    /// `base_url` is the host part (`https://api.anthropic.com`).
    pub fn new(base_url: &str, api_key: String, timeout: Duration) -> Result<Self> {
        Ok(AnthropicProvider {
            base_url: base_url.trim_end_matches('/').to_string(),
            api_key,
            client: http::client(timeout)?,
        })
    }

    fn post(&self, body: &Value) -> reqwest::RequestBuilder {
        self.client
            .post(format!("{}/v1/messages", self.base_url))
            .header("x-api-key", &self.api_key)
            .header("anthropic-version", API_VERSION)
            .json(body)
    }
}

#[async_trait]
impl Provider for AnthropicProvider {
    fn name(&self) -> &str {
        NAME
    }

    async fn converse(&self, request: &ConverseRequest) -> Result<ConverseResponse> {
        let started = Instant::now();
        let body = to_messages(request, false)?;
        let v = http::send_json(NAME, &request.model_id, self.post(&body)).await?;
        let mut out = from_message(&v)?;
        out.metrics.latency_ms = started.elapsed().as_millis() as u64;
        Ok(out)
    }

    async fn converse_stream(&self, request: &ConverseRequest) -> Result<EventStream> {
        let body = to_messages(request, true)?;
        let response = http::send(NAME, &request.model_id, self.post(&body)).await?;
        Ok(http::translate(NAME, response, EventTranslator::new()))
    }
}

fn source(media_type: &str, s: &BinarySource) -> Result<Value> {
    match s {
        BinarySource::Bytes(b64) => {
            Ok(json!({"type": "base64", "media_type": media_type, "data": b64}))
        }
        BinarySource::S3Location(s) => Err(Error::InvalidRequest(format!(
            "the Anthropic API cannot read {}: send the bytes",
            s.uri
        ))),
    }
}

fn block(b: &ContentBlock) -> Result<Value> {
    Ok(match b {
        ContentBlock::Text(t) => json!({"type": "text", "text": t}),
        ContentBlock::Image(i) => {
            json!({"type": "image", "source": source(&format!("image/{}", i.format), &i.source)?})
        }
        ContentBlock::Document(d) => {
            let mime = match d.format.as_str() {
                "pdf" => "application/pdf",
                _ => "text/plain",
            };
            json!({"type": "document", "title": d.name, "source": source(mime, &d.source)?})
        }
        ContentBlock::ToolUse(t) => {
            json!({"type": "tool_use", "id": t.tool_use_id, "name": t.name, "input": t.input})
        }
        ContentBlock::ToolResult(r) => {
            let content: Vec<Value> = r
                .content
                .iter()
                .map(|c| match c {
                    ToolResultContent::Image(i) => block(&ContentBlock::Image(i.clone())),
                    other => Ok(json!({"type": "text", "text": other.as_text()})),
                })
                .collect::<Result<_>>()?;
            let mut v =
                json!({"type": "tool_result", "tool_use_id": r.tool_use_id, "content": content});
            if r.status == Some(ToolResultStatus::Error) {
                v["is_error"] = json!(true);
            }
            v
        }
    })
}

/// The Messages API body for a Converse request.
pub fn to_messages(request: &ConverseRequest, stream: bool) -> Result<Value> {
    let messages: Vec<Value> = request
        .messages
        .iter()
        .map(|m| {
            Ok(json!({
                "role": m.role,
                "content": m.content.iter().map(block).collect::<Result<Vec<_>>>()?,
            }))
        })
        .collect::<Result<_>>()?;
    let c = request.inference_config.clone().unwrap_or_default();
    let mut body = json!({
        "model": request.model_id,
        "max_tokens": c.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        "messages": messages,
    });
    if !request.system.is_empty() {
        body["system"] = json!(request.system_text());
    }
    if let Some(v) = c.temperature {
        body["temperature"] = json!(v);
    }
    if let Some(v) = c.top_p {
        body["top_p"] = json!(v);
    }
    if let Some(v) = &c.stop_sequences {
        body["stop_sequences"] = json!(v);
    }
    if let Some(tc) = &request.tool_config {
        body["tools"] = tc
            .tools
            .iter()
            .map(|t| {
                let s = t.spec();
                let mut v = json!({"name": s.name, "input_schema": s.input_schema.json()});
                if let Some(d) = &s.description {
                    v["description"] = json!(d);
                }
                v
            })
            .collect();
        if let Some(choice) = &tc.tool_choice {
            body["tool_choice"] = match choice {
                ToolChoice::Auto(_) => json!({"type": "auto"}),
                ToolChoice::Any(_) => json!({"type": "any"}),
                ToolChoice::Tool(t) => json!({"type": "tool", "name": t.name}),
            };
        }
    }
    if stream {
        body["stream"] = json!(true);
    }
    if let Some(Value::Object(extra)) = &request.additional_model_request_fields {
        for (k, v) in extra {
            body[k] = v.clone();
        }
    }
    Ok(body)
}

fn usage(v: &Value) -> TokenUsage {
    let n = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    TokenUsage::new(
        n("input_tokens") + n("cache_read_input_tokens") + n("cache_creation_input_tokens"),
        n("output_tokens"),
    )
}

/// A Converse response from a Messages API response.
pub fn from_message(v: &Value) -> Result<ConverseResponse> {
    let mut content = Vec::new();
    for b in v["content"].as_array().into_iter().flatten() {
        match b["type"].as_str() {
            Some("text") => content.push(ContentBlock::Text(
                b["text"].as_str().unwrap_or_default().to_string(),
            )),
            Some("tool_use") => content.push(ContentBlock::ToolUse(ToolUseBlock {
                tool_use_id: b["id"].as_str().unwrap_or_default().to_string(),
                name: b["name"].as_str().unwrap_or_default().to_string(),
                input: b["input"].clone(),
            })),
            _ => {}
        }
    }
    let stop = v["stop_reason"].as_str().ok_or_else(|| Error::Protocol {
        provider: NAME.into(),
        message: "message has no stop_reason".into(),
    })?;
    Ok(ConverseResponse {
        output: ConverseOutput {
            message: Message {
                role: Role::Assistant,
                content,
            },
        },
        stop_reason: StopReason::parse(stop),
        usage: usage(&v["usage"]),
        metrics: Metrics::default(),
    })
}

/// Messages API stream events to Converse events.
pub struct EventTranslator {
    /// Anthropic's block index to ours, with whether the block is a tool use.
    blocks: HashMap<u64, u32>,
    next_index: u32,
    input_tokens: u64,
    output_tokens: u64,
    stop: Option<StopReason>,
    done: bool,
    started_at: Instant,
}

impl EventTranslator {
    pub fn new() -> Self {
        EventTranslator {
            blocks: HashMap::new(),
            next_index: 0,
            input_tokens: 0,
            output_tokens: 0,
            stop: None,
            done: false,
            started_at: Instant::now(),
        }
    }
}

impl Default for EventTranslator {
    fn default() -> Self {
        Self::new()
    }
}

impl SseTranslator for EventTranslator {
    fn on_event(&mut self, event: SseEvent) -> Result<Vec<StreamEvent>> {
        let v = http::json(NAME, &event.data)?;
        let kind = event
            .event
            .clone()
            .or_else(|| v["type"].as_str().map(str::to_string))
            .unwrap_or_default();
        let index = v["index"].as_u64().unwrap_or(0);
        Ok(match kind.as_str() {
            "message_start" => {
                let u = usage(&v["message"]["usage"]);
                self.input_tokens = u.input_tokens;
                self.output_tokens = u.output_tokens;
                vec![StreamEvent::MessageStart(MessageStart {
                    role: Role::Assistant,
                })]
            }
            "content_block_start" => {
                let b = &v["content_block"];
                match b["type"].as_str() {
                    Some("text") => {
                        let i = self.next_index;
                        self.next_index += 1;
                        self.blocks.insert(index, i);
                        match b["text"].as_str().filter(|t| !t.is_empty()) {
                            Some(t) => vec![StreamEvent::ContentBlockDelta(ContentBlockDelta {
                                content_block_index: i,
                                delta: BlockDelta::Text(t.to_string()),
                            })],
                            None => Vec::new(),
                        }
                    }
                    Some("tool_use") => {
                        let i = self.next_index;
                        self.next_index += 1;
                        self.blocks.insert(index, i);
                        vec![StreamEvent::ContentBlockStart(ContentBlockStart {
                            content_block_index: i,
                            start: BlockStart::ToolUse(ToolUseStart {
                                tool_use_id: b["id"].as_str().unwrap_or_default().to_string(),
                                name: b["name"].as_str().unwrap_or_default().to_string(),
                            }),
                        })]
                    }
                    _ => Vec::new(),
                }
            }
            "content_block_delta" => {
                let Some(&i) = self.blocks.get(&index) else {
                    return Ok(Vec::new());
                };
                let d = &v["delta"];
                let delta = match d["type"].as_str() {
                    Some("text_delta") => {
                        BlockDelta::Text(d["text"].as_str().unwrap_or_default().to_string())
                    }
                    Some("input_json_delta") => BlockDelta::ToolUse(ToolUseDelta {
                        input: d["partial_json"].as_str().unwrap_or_default().to_string(),
                    }),
                    _ => return Ok(Vec::new()),
                };
                vec![StreamEvent::ContentBlockDelta(ContentBlockDelta {
                    content_block_index: i,
                    delta,
                })]
            }
            "content_block_stop" => match self.blocks.get(&index) {
                Some(&i) => vec![StreamEvent::ContentBlockStop(ContentBlockStop {
                    content_block_index: i,
                })],
                None => Vec::new(),
            },
            "message_delta" => {
                if let Some(s) = v["delta"]["stop_reason"].as_str() {
                    self.stop = Some(StopReason::parse(s));
                }
                if let Some(n) = v["usage"]["output_tokens"].as_u64() {
                    self.output_tokens = n;
                }
                if let Some(n) = v["usage"]["input_tokens"].as_u64().filter(|n| *n > 0) {
                    self.input_tokens = n;
                }
                Vec::new()
            }
            "message_stop" => {
                self.done = true;
                Vec::new()
            }
            "error" => {
                let (kind, message) = http::error_body(&event.data);
                let status = if kind == "overloaded_error" || kind == "rate_limit_error" {
                    429
                } else if kind == "invalid_request_error" {
                    400
                } else {
                    500
                };
                return Err(Error::from_http(NAME, "", status, &kind, &message));
            }
            _ => Vec::new(), // ping and event types added later
        })
    }

    fn on_end(&mut self) -> Result<Vec<StreamEvent>> {
        let (Some(stop), true) = (self.stop.take(), self.done) else {
            return Err(Error::ServiceUnavailable {
                provider: NAME.into(),
                message: "stream ended before message_stop".into(),
            });
        };
        Ok(vec![
            StreamEvent::MessageStop(MessageStop { stop_reason: stop }),
            StreamEvent::Metadata(StreamMetadata {
                usage: TokenUsage::new(self.input_tokens, self.output_tokens),
                metrics: Metrics {
                    latency_ms: self.started_at.elapsed().as_millis() as u64,
                },
            }),
        ])
    }

    fn finished(&self) -> bool {
        self.done
    }
}
