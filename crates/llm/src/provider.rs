//! The [`Provider`] contract every model backend implements, and the two conversions between a
//! whole response and a stream of events that several of them share.

use async_trait::async_trait;
use futures_util::StreamExt;
use serde_json::Value;

use crate::types::*;
use crate::{Error, Result};

/// A model backend: translates Converse requests to its protocol and back.
///
/// Contract: `request.model_id` is the provider's own model id (routing is done by the
/// facade). Errors are the crate's named errors ([`Error::Throttled`],
/// [`Error::ContextWindowExceeded`]...), mapped from the provider's status codes and error
/// types. A stream yields Converse's events in order (`messageStart`, then for each content
/// block `contentBlockStart` (tool uses only) / `contentBlockDelta`* / `contentBlockStop`, then
/// `messageStop`, then `metadata`), or ends with an error item.
#[async_trait]
pub trait Provider: Send + Sync {
    /// A short name for messages (`openai`, `anthropic`, `bedrock`, `recorded`).
    fn name(&self) -> &str;

    async fn converse(&self, request: &ConverseRequest) -> Result<ConverseResponse>;

    async fn converse_stream(&self, request: &ConverseRequest) -> Result<EventStream>;
}

/// Assembles a whole response from a stream's events.
pub async fn collect_stream(provider: &str, mut stream: EventStream) -> Result<ConverseResponse> {
    let mut acc = StreamAccumulator::new(provider);
    while let Some(event) = stream.next().await {
        acc.push(&event?)?;
    }
    acc.finish()
}

/// Builds a response up from stream events one at a time.
pub struct StreamAccumulator {
    provider: String,
    role: Role,
    blocks: Vec<(u32, Partial)>,
    stop_reason: Option<StopReason>,
    usage: TokenUsage,
    metrics: Metrics,
}

enum Partial {
    Text(String),
    Tool {
        id: String,
        name: String,
        input: String,
    },
}

impl StreamAccumulator {
    pub fn new(provider: &str) -> Self {
        StreamAccumulator {
            provider: provider.to_string(),
            role: Role::Assistant,
            blocks: Vec::new(),
            stop_reason: None,
            usage: TokenUsage::default(),
            metrics: Metrics::default(),
        }
    }

    fn block(&mut self, index: u32) -> Option<&mut Partial> {
        self.blocks
            .iter_mut()
            .find(|(i, _)| *i == index)
            .map(|(_, b)| b)
    }

    pub fn push(&mut self, event: &StreamEvent) -> Result<()> {
        match event {
            StreamEvent::MessageStart(m) => self.role = m.role,
            StreamEvent::ContentBlockStart(s) => match &s.start {
                BlockStart::ToolUse(t) => self.blocks.push((
                    s.content_block_index,
                    Partial::Tool {
                        id: t.tool_use_id.clone(),
                        name: t.name.clone(),
                        input: String::new(),
                    },
                )),
            },
            StreamEvent::ContentBlockDelta(d) => {
                let index = d.content_block_index;
                match (&d.delta, self.block(index)) {
                    (BlockDelta::Text(t), Some(Partial::Text(s))) => s.push_str(t),
                    (BlockDelta::Text(t), None) => {
                        self.blocks.push((index, Partial::Text(t.clone())));
                    }
                    (BlockDelta::ToolUse(t), Some(Partial::Tool { input, .. })) => {
                        input.push_str(&t.input)
                    }
                    _ => {
                        return Err(Error::Protocol {
                            provider: self.provider.clone(),
                            message: format!(
                                "content block {index}: delta does not match the block's kind"
                            ),
                        });
                    }
                }
            }
            StreamEvent::ContentBlockStop(_) => {}
            StreamEvent::MessageStop(m) => self.stop_reason = Some(m.stop_reason.clone()),
            StreamEvent::Metadata(m) => {
                self.usage = m.usage;
                self.metrics = m.metrics;
            }
        }
        Ok(())
    }

    pub fn finish(mut self) -> Result<ConverseResponse> {
        self.blocks.sort_by_key(|(i, _)| *i);
        let mut content = Vec::new();
        for (_, block) in self.blocks {
            content.push(match block {
                Partial::Text(t) => ContentBlock::Text(t),
                Partial::Tool { id, name, input } => ContentBlock::ToolUse(ToolUseBlock {
                    tool_use_id: id,
                    name,
                    input: parse_tool_input(&self.provider, &input)?,
                }),
            });
        }
        let stop_reason = self.stop_reason.ok_or_else(|| Error::ServiceUnavailable {
            provider: self.provider.clone(),
            message: "stream ended before messageStop".into(),
        })?;
        Ok(ConverseResponse {
            output: ConverseOutput {
                message: Message {
                    role: self.role,
                    content,
                },
            },
            stop_reason,
            usage: self.usage,
            metrics: self.metrics,
        })
    }
}

/// A tool use's input from the JSON text a model produced (empty means `{}`).
pub fn parse_tool_input(provider: &str, text: &str) -> Result<Value> {
    if text.trim().is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    serde_json::from_str(text).map_err(|e| Error::Protocol {
        provider: provider.to_string(),
        message: format!("tool input is not JSON ({e}): {text}"),
    })
}

/// The events a stream of `response` would have carried: one delta per text block, the tool
/// inputs in one piece each.
pub fn events_from_response(response: &ConverseResponse) -> Vec<StreamEvent> {
    let mut events = vec![StreamEvent::MessageStart(MessageStart {
        role: response.output.message.role,
    })];
    for (i, block) in response.output.message.content.iter().enumerate() {
        let index = i as u32;
        match block {
            ContentBlock::Text(t) => {
                events.push(StreamEvent::ContentBlockDelta(ContentBlockDelta {
                    content_block_index: index,
                    delta: BlockDelta::Text(t.clone()),
                }))
            }
            ContentBlock::ToolUse(t) => {
                events.push(StreamEvent::ContentBlockStart(ContentBlockStart {
                    content_block_index: index,
                    start: BlockStart::ToolUse(ToolUseStart {
                        tool_use_id: t.tool_use_id.clone(),
                        name: t.name.clone(),
                    }),
                }));
                events.push(StreamEvent::ContentBlockDelta(ContentBlockDelta {
                    content_block_index: index,
                    delta: BlockDelta::ToolUse(ToolUseDelta {
                        input: t.input.to_string(),
                    }),
                }));
            }
            _ => continue,
        }
        events.push(StreamEvent::ContentBlockStop(ContentBlockStop {
            content_block_index: index,
        }));
    }
    events.push(StreamEvent::MessageStop(MessageStop {
        stop_reason: response.stop_reason.clone(),
    }));
    events.push(StreamEvent::Metadata(StreamMetadata {
        usage: response.usage,
        metrics: response.metrics,
    }));
    events
}

/// A stream of already-known events.
pub fn stream_of(events: Vec<StreamEvent>) -> EventStream {
    Box::pin(futures_util::stream::iter(events.into_iter().map(Ok)))
}
