//! Context management: estimate a request's tokens for its model, and when it would overflow
//! the model's window, cut the oldest turns (for `drop_oldest`, or to be summarised).
//!
//! The estimate is characters / `chars_per_token` (default 4) plus `message_overhead` tokens a
//! message, the tools' schemas, and the reply's room (`maxTokens`, else `reserve_output`). A
//! conversation is only cut before a user message that is not a tool result or before an
//! assistant message, so a tool use and its result always stay together; the first user message
//! (usually the task) can be kept, and a conversation left opening with the assistant gets a
//! one-line user message saying earlier turns were omitted.

use std::ops::Range;

use crate::config::ModelConfig;
use crate::types::*;
use crate::{Error, Result};

/// Tokens an image or a document counts for (their bytes are not text).
const BINARY_TOKENS: u64 = 1600;

fn block_chars(b: &ContentBlock) -> (u64, u64) {
    match b {
        ContentBlock::Text(t) => (t.chars().count() as u64, 0),
        ContentBlock::Image(_) | ContentBlock::Document(_) => (0, BINARY_TOKENS),
        ContentBlock::ToolUse(t) => ((t.name.len() + t.input.to_string().len()) as u64, 0),
        ContentBlock::ToolResult(r) => {
            let mut chars = 0;
            let mut tokens = 0;
            for c in &r.content {
                match c {
                    ToolResultContent::Image(_) | ToolResultContent::Document(_) => {
                        tokens += BINARY_TOKENS
                    }
                    other => chars += other.as_text().chars().count() as u64,
                }
            }
            (chars, tokens)
        }
    }
}

/// The estimated prompt tokens of `request` (without the reply's room).
pub fn estimate_prompt(request: &ConverseRequest, model: &ModelConfig) -> u64 {
    let mut chars: u64 = request
        .system
        .iter()
        .map(|s| s.text.chars().count() as u64)
        .sum();
    let mut tokens = 0;
    for m in &request.messages {
        tokens += model.message_overhead;
        for b in &m.content {
            let (c, t) = block_chars(b);
            chars += c;
            tokens += t;
        }
    }
    if let Some(tc) = &request.tool_config {
        chars += serde_json::to_string(&tc.tools).map_or(0, |s| s.len() as u64);
    }
    tokens + (chars as f64 / model.chars_per_token.max(0.1)).ceil() as u64
}

/// The estimated tokens of `request` including room for the reply.
pub fn estimate(request: &ConverseRequest, model: &ModelConfig) -> u64 {
    let reply = request
        .inference_config
        .as_ref()
        .and_then(|c| c.max_tokens)
        .map_or(model.reserve_output, u64::from);
    estimate_prompt(request, model) + reply
}

/// Where a conversation may be cut: before a user message that is not a tool result, or before
/// an assistant message (so a tool use and its result always stay on the same side).
pub fn cut_points(messages: &[Message]) -> Vec<usize> {
    messages
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(_, m)| m.role == Role::Assistant || !m.has_tool_results())
        .map(|(i, _)| i)
        .collect()
}

/// Joins consecutive messages of the same role (what dropping or summarising turns can leave
/// behind), since providers expect the roles to alternate.
pub fn merge_roles(messages: Vec<Message>) -> Vec<Message> {
    let mut out: Vec<Message> = Vec::with_capacity(messages.len());
    for m in messages {
        match out.last_mut() {
            Some(last) if last.role == m.role => last.content.extend(m.content),
            _ => out.push(m),
        }
    }
    out
}

/// What opens a conversation whose oldest turns were dropped and that would otherwise open
/// with the assistant.
pub const OMITTED: &str = "(earlier conversation omitted)";

/// Where to cut an overflowing conversation: the messages `cut.start..cut.end` go (replaced
/// by nothing or by a summary), the first message stays if `keep_first_user`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cut {
    pub keep_first: bool,
    pub dropped: Range<usize>,
}

impl Cut {
    /// The conversation without the cut messages, with `summary` (if any) in their place.
    pub fn apply(&self, messages: &[Message], summary: Option<Message>) -> Vec<Message> {
        let mut out = Vec::new();
        if self.keep_first {
            out.push(messages[0].clone());
        }
        out.extend(summary);
        out.extend(messages[self.dropped.end..].iter().cloned());
        if out.first().is_some_and(|m| m.role == Role::Assistant) {
            // Providers expect a conversation to open with the user.
            out.insert(0, Message::user(OMITTED));
        }
        merge_roles(out)
    }
}

/// The smallest cut of the oldest messages after which `request` fits `model`'s window, given
/// `extra` tokens for what replaces the cut; fails with `Llm.ContextWindowExceeded` when even
/// the last turn alone does not fit.
pub fn plan_cut(
    request: &ConverseRequest,
    model: &ModelConfig,
    keep_first_user: bool,
    extra: u64,
) -> Result<Cut> {
    let points = cut_points(&request.messages);
    let keep_first = keep_first_user
        && request
            .messages
            .first()
            .is_some_and(|m| m.role == Role::User);
    let from = usize::from(keep_first);
    let mut trial = request.clone();
    for &point in points.iter().filter(|&&p| p > from) {
        let cut = Cut {
            keep_first,
            dropped: from..point,
        };
        trial.messages = cut.apply(&request.messages, None);
        if estimate(&trial, model) + extra <= model.context_window {
            return Ok(cut);
        }
    }
    Err(Error::ContextWindowExceeded {
        model: request.model_id.clone(),
        message: format!(
            "about {} tokens (estimated, with {} for the reply) do not fit the {}-token window, even keeping only the last turn{}",
            estimate(request, model),
            estimate(request, model) - estimate_prompt(request, model),
            model.context_window,
            if keep_first {
                " and the first message"
            } else {
                ""
            }
        ),
    })
}

/// Renders messages as a plain transcript (what a summariser reads).
pub fn transcript(messages: &[Message]) -> String {
    let mut out = String::new();
    for m in messages {
        let who = match m.role {
            Role::User => "User",
            Role::Assistant => "Assistant",
        };
        for b in &m.content {
            let line = match b {
                ContentBlock::Text(t) => format!("{who}: {t}"),
                ContentBlock::ToolUse(t) => {
                    format!("{who} called tool {} with {}", t.name, t.input)
                }
                ContentBlock::ToolResult(r) => format!(
                    "Tool result: {}",
                    r.content
                        .iter()
                        .map(ToolResultContent::as_text)
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
                ContentBlock::Image(i) => format!("{who}: [image/{}]", i.format),
                ContentBlock::Document(d) => format!("{who}: [document {}]", d.name),
            };
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tool_turn(id: &str) -> Vec<Message> {
        vec![
            Message {
                role: Role::Assistant,
                content: vec![ContentBlock::ToolUse(ToolUseBlock {
                    tool_use_id: id.into(),
                    name: "search".into(),
                    input: json!({"q": "x"}),
                })],
            },
            Message {
                role: Role::User,
                content: vec![ContentBlock::ToolResult(ToolResultBlock {
                    tool_use_id: id.into(),
                    content: vec![ToolResultContent::Text("result".into())],
                    status: None,
                })],
            },
        ]
    }

    #[test]
    fn cuts_never_separate_a_tool_use_from_its_result() {
        let mut m = vec![Message::user("task")];
        m.extend(tool_turn("a"));
        m.push(Message::assistant("done"));
        m.push(Message::user("next"));
        m.extend(tool_turn("b"));
        // 0 task, 1 use a, 2 result a, 3 done, 4 next, 5 use b, 6 result b
        assert_eq!(cut_points(&m), vec![1, 3, 4, 5]);
        let cut = Cut {
            keep_first: false,
            dropped: 0..3,
        };
        let kept = cut.apply(&m, None);
        assert_eq!(kept[0], Message::user(OMITTED));
        assert_eq!(kept.len(), 5);
    }
}
