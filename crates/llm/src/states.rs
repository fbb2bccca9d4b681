//! Step Functions' Bedrock task resources, served by [`Llm`]:
//!
//! - `arn:aws:states:::aws-sdk:bedrockruntime:converse`: the AWS SDK integration. Its input is
//!   Converse's request with PascalCase names as Step Functions passes them (`ModelId`,
//!   `Messages[].Content[].Text`, `System`, `InferenceConfig.MaxTokens`, `ToolConfig`...;
//!   camelCase is accepted too), and its output is the response in PascalCase (`Output.Message`,
//!   `StopReason`, `Usage.InputTokens`, `Metrics.LatencyMs`). Tool inputs and JSON schemas are
//!   documents: their keys are passed through untouched.
//! - `arn:aws:states:::bedrock:invokeModel`: the optimized integration. Input `ModelId`, `Body`
//!   (the model family's native body), `ContentType`, `Accept`; output `{"Body": <the family's
//!   native response>, "ContentType": "application/json"}`. Native bodies of Anthropic's
//!   Messages (`anthropic_version`, `max_tokens`, `messages`), Amazon Nova (`messages`,
//!   `inferenceConfig`), Amazon Titan Text (`inputText`, `textGenerationConfig`) and Meta Llama
//!   (`prompt`, `max_gen_len`) are understood.
//!
//! The `ModelId` goes through [`Llm`]'s routing, so a state machine may name a route
//! (`complex`) or a model. Calls are labelled with the execution's ARN; failures become task
//! errors named as [`Error::name`] says (`Llm.Throttled`...), with the message as the cause.
//! When the facade has a [`crate::DeltaSink`], calls stream and their events reach the sink
//! under the execution's ARN.

use std::sync::Arc;

use agentry_asl::TaskRequest;
use agentry_engine::{ResourceTable, TaskError};
use serde_json::{Map, Value, json};

use crate::ledger::CallLabels;
use crate::types::*;
use crate::{Error, Llm, Result, collect_stream};

pub const CONVERSE: &str = "arn:aws:states:::aws-sdk:bedrockruntime:converse";
pub const INVOKE_MODEL: &str = "arn:aws:states:::bedrock:invokeModel";

/// Labels a task's model call.
pub type LabelFn = Arc<dyn Fn(&TaskRequest) -> CallLabels + Send + Sync>;

/// Registers both resources, labelling calls with the execution's ARN.
pub fn register(table: &mut ResourceTable, llm: Arc<Llm>) {
    register_with(
        table,
        llm,
        Arc::new(|req: &TaskRequest| CallLabels {
            execution: Some(execution_arn(&req.idempotency_key).to_string()),
            ..Default::default()
        }),
    )
}

/// Registers both resources with a function that labels each call (session, user, tenant).
pub fn register_with(table: &mut ResourceTable, llm: Arc<Llm>, labels: LabelFn) {
    let (l, f) = (llm.clone(), labels.clone());
    table.register(CONVERSE, move |req: TaskRequest| {
        let (llm, labels) = (l.clone(), f(&req));
        async move {
            converse_task(&llm, req.input, &labels)
                .await
                .map_err(task_error)
        }
    });
    table.register(INVOKE_MODEL, move |req: TaskRequest| {
        let (llm, labels) = (llm.clone(), labels(&req));
        async move {
            invoke_model_task(&llm, req.input, &labels)
                .await
                .map_err(task_error)
        }
    });
}

/// The execution's ARN from a task's idempotency key (`execution:entered:attempt`).
pub fn execution_arn(idempotency_key: &str) -> &str {
    let mut parts = idempotency_key.rsplitn(3, ':');
    let (_attempt, _entered) = (parts.next(), parts.next());
    parts.next().unwrap_or(idempotency_key)
}

fn task_error(e: Error) -> TaskError {
    TaskError::new(e.name(), e.to_string())
}

async fn call(
    llm: &Llm,
    request: ConverseRequest,
    labels: &CallLabels,
) -> Result<ConverseResponse> {
    if llm.has_delta_sink() && labels.execution.is_some() {
        let stream = llm.converse_stream(request, labels).await?;
        collect_stream("llm", stream).await
    } else {
        llm.converse(request, labels).await
    }
}

/// The SDK integration's Converse.
pub async fn converse_task(llm: &Llm, input: Value, labels: &CallLabels) -> Result<Value> {
    let request: ConverseRequest = serde_json::from_value(recase(&input, Case::Camel))
        .map_err(|e| Error::InvalidRequest(format!("converse parameters: {e}")))?;
    let response = call(llm, request, labels).await?;
    Ok(recase(
        &serde_json::to_value(&response).expect("responses serialize"),
        Case::Pascal,
    ))
}

#[derive(Clone, Copy, PartialEq)]
enum Case {
    Camel,
    Pascal,
}

/// Keys whose values are documents (free-form JSON) in Converse's model.
const DOCUMENTS: [&str; 3] = ["input", "json", "additionalModelRequestFields"];

/// Changes the first letter of every key to lower (camelCase) or upper (PascalCase) case,
/// except inside documents.
fn recase(v: &Value, case: Case) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, x) in m {
                let camel = first(k, false);
                let key = if case == Case::Camel {
                    camel.clone()
                } else {
                    first(k, true)
                };
                let value = if DOCUMENTS.contains(&camel.as_str()) {
                    x.clone()
                } else {
                    recase(x, case)
                };
                out.insert(key, value);
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| recase(x, case)).collect()),
        other => other.clone(),
    }
}

fn first(k: &str, upper: bool) -> String {
    let mut c = k.chars();
    match c.next() {
        Some(f) if upper => f.to_uppercase().chain(c).collect(),
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The optimized InvokeModel integration.
pub async fn invoke_model_task(llm: &Llm, input: Value, labels: &CallLabels) -> Result<Value> {
    let model = input["ModelId"]
        .as_str()
        .ok_or_else(|| Error::InvalidRequest("invokeModel: ModelId is required".into()))?
        .to_string();
    if let Some(ct) = input["ContentType"].as_str()
        && ct != "application/json"
    {
        return Err(Error::InvalidRequest(format!(
            "invokeModel: ContentType \"{ct}\" is not supported (only application/json)"
        )));
    }
    let body = match &input["Body"] {
        Value::String(s) => serde_json::from_str(s)
            .map_err(|e| Error::InvalidRequest(format!("invokeModel: Body is not JSON: {e}")))?,
        Value::Object(_) => input["Body"].clone(),
        _ => {
            return Err(Error::InvalidRequest(
                "invokeModel: Body is required (Input from S3 is not supported)".into(),
            ));
        }
    };
    let family = Family::of(&body)?;
    let request = family.request(&model, &body)?;
    let response = call(llm, request, labels).await?;
    Ok(json!({
        "Body": family.response(&model, &response),
        "ContentType": "application/json",
    }))
}

/// A model family's native body shape.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Family {
    Anthropic,
    Nova,
    Titan,
    Llama,
}

fn invalid(m: impl Into<String>) -> Error {
    Error::InvalidRequest(format!("invokeModel: {}", m.into()))
}

impl Family {
    fn of(body: &Value) -> Result<Family> {
        let messages = body.get("messages").is_some();
        if body.get("anthropic_version").is_some() || (messages && body.get("max_tokens").is_some())
        {
            Ok(Family::Anthropic)
        } else if messages {
            Ok(Family::Nova)
        } else if body.get("inputText").is_some() {
            Ok(Family::Titan)
        } else if body.get("prompt").is_some() {
            Ok(Family::Llama)
        } else {
            Err(invalid(
                "Body is not a body of a known model family (Anthropic messages, Amazon Nova, Amazon Titan Text, Meta Llama)",
            ))
        }
    }

    fn request(self, model: &str, b: &Value) -> Result<ConverseRequest> {
        let mut r = ConverseRequest {
            model_id: model.to_string(),
            ..Default::default()
        };
        let mut ic = InferenceConfig::default();
        match self {
            Family::Anthropic => {
                r.system = match &b["system"] {
                    Value::String(s) => vec![SystemBlock { text: s.clone() }],
                    Value::Array(a) => a
                        .iter()
                        .filter_map(|x| x["text"].as_str())
                        .map(|t| SystemBlock { text: t.into() })
                        .collect(),
                    _ => vec![],
                };
                for m in b["messages"]
                    .as_array()
                    .ok_or_else(|| invalid("Body.messages is required"))?
                {
                    r.messages.push(anthropic_message(m)?);
                }
                ic.max_tokens = b["max_tokens"].as_u64().map(|n| n as u32);
                ic.temperature = b["temperature"].as_f64();
                ic.top_p = b["top_p"].as_f64();
                ic.stop_sequences = serde_json::from_value(b["stop_sequences"].clone()).ok();
                if let Some(tools) = b["tools"].as_array() {
                    r.tool_config = Some(ToolConfig {
                        tools: tools
                            .iter()
                            .map(|t| {
                                Tool::ToolSpec(ToolSpec {
                                    name: t["name"].as_str().unwrap_or_default().into(),
                                    description: t["description"].as_str().map(str::to_string),
                                    input_schema: ToolInputSchema::Json(t["input_schema"].clone()),
                                })
                            })
                            .collect(),
                        tool_choice: None,
                    });
                }
            }
            Family::Nova => {
                r.system = serde_json::from_value(b["system"].clone()).unwrap_or_default();
                r.messages = serde_json::from_value(b["messages"].clone())
                    .map_err(|e| invalid(format!("Body.messages: {e}")))?;
                let c = &b["inferenceConfig"];
                ic.max_tokens = c["max_new_tokens"].as_u64().map(|n| n as u32);
                ic.temperature = c["temperature"].as_f64();
                ic.top_p = c["top_p"].as_f64();
                ic.stop_sequences = serde_json::from_value(c["stopSequences"].clone()).ok();
                if let Some(tc) = b.get("toolConfig") {
                    r.tool_config = Some(
                        serde_json::from_value(tc.clone())
                            .map_err(|e| invalid(format!("Body.toolConfig: {e}")))?,
                    );
                }
            }
            Family::Titan => {
                r.messages = vec![Message::user(b["inputText"].as_str().unwrap_or_default())];
                let c = &b["textGenerationConfig"];
                ic.max_tokens = c["maxTokenCount"].as_u64().map(|n| n as u32);
                ic.temperature = c["temperature"].as_f64();
                ic.top_p = c["topP"].as_f64();
                ic.stop_sequences = serde_json::from_value(c["stopSequences"].clone()).ok();
            }
            Family::Llama => {
                r.messages = vec![Message::user(b["prompt"].as_str().unwrap_or_default())];
                ic.max_tokens = b["max_gen_len"].as_u64().map(|n| n as u32);
                ic.temperature = b["temperature"].as_f64();
                ic.top_p = b["top_p"].as_f64();
            }
        }
        if ic != InferenceConfig::default() {
            r.inference_config = Some(ic);
        }
        Ok(r)
    }

    fn response(self, model: &str, r: &ConverseResponse) -> Value {
        let u = r.usage;
        let stop = r.stop_reason.as_str();
        match self {
            Family::Anthropic => json!({
                "id": format!("msg_{}", &crate::hash::digest(&json!([model, r.text()]))[..24]),
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": r.output.message.content.iter().filter_map(|b| match b {
                    ContentBlock::Text(t) => Some(json!({"type": "text", "text": t})),
                    ContentBlock::ToolUse(t) => Some(json!({"type": "tool_use", "id": t.tool_use_id, "name": t.name, "input": t.input})),
                    _ => None,
                }).collect::<Vec<_>>(),
                "stop_reason": stop,
                "stop_sequence": null,
                "usage": {"input_tokens": u.input_tokens, "output_tokens": u.output_tokens},
            }),
            Family::Nova => json!({
                "output": {"message": r.output.message},
                "stopReason": stop,
                "usage": {"inputTokens": u.input_tokens, "outputTokens": u.output_tokens, "totalTokens": u.total_tokens},
            }),
            Family::Titan => json!({
                "inputTextTokenCount": u.input_tokens,
                "results": [{
                    "tokenCount": u.output_tokens,
                    "outputText": r.text(),
                    "completionReason": match r.stop_reason {
                        StopReason::MaxTokens => "LENGTH",
                        StopReason::ContentFiltered | StopReason::GuardrailIntervened => "CONTENT_FILTERED",
                        _ => "FINISH",
                    },
                }],
            }),
            Family::Llama => json!({
                "generation": r.text(),
                "prompt_token_count": u.input_tokens,
                "generation_token_count": u.output_tokens,
                "stop_reason": if r.stop_reason == StopReason::MaxTokens { "length" } else { "stop" },
            }),
        }
    }
}

/// One message of an Anthropic Messages body.
fn anthropic_message(m: &Value) -> Result<Message> {
    let role = match m["role"].as_str() {
        Some("user") => Role::User,
        Some("assistant") => Role::Assistant,
        other => {
            return Err(invalid(format!(
                "message role {other:?} is not user or assistant"
            )));
        }
    };
    let content = match &m["content"] {
        Value::String(s) => vec![ContentBlock::Text(s.clone())],
        Value::Array(blocks) => blocks
            .iter()
            .map(|b| {
                Ok(match b["type"].as_str() {
                    Some("text") => {
                        ContentBlock::Text(b["text"].as_str().unwrap_or_default().into())
                    }
                    Some("image") => ContentBlock::Image(ImageBlock {
                        format: b["source"]["media_type"]
                            .as_str()
                            .unwrap_or("image/png")
                            .trim_start_matches("image/")
                            .into(),
                        source: BinarySource::Bytes(
                            b["source"]["data"].as_str().unwrap_or_default().into(),
                        ),
                    }),
                    Some("tool_use") => ContentBlock::ToolUse(ToolUseBlock {
                        tool_use_id: b["id"].as_str().unwrap_or_default().into(),
                        name: b["name"].as_str().unwrap_or_default().into(),
                        input: b["input"].clone(),
                    }),
                    Some("tool_result") => ContentBlock::ToolResult(ToolResultBlock {
                        tool_use_id: b["tool_use_id"].as_str().unwrap_or_default().into(),
                        content: match &b["content"] {
                            Value::String(s) => vec![ToolResultContent::Text(s.clone())],
                            Value::Array(a) => a
                                .iter()
                                .map(|c| {
                                    ToolResultContent::Text(
                                        c["text"].as_str().unwrap_or_default().into(),
                                    )
                                })
                                .collect(),
                            _ => vec![],
                        },
                        status: b["is_error"]
                            .as_bool()
                            .filter(|e| *e)
                            .map(|_| ToolResultStatus::Error),
                    }),
                    other => {
                        return Err(invalid(format!(
                            "content block type {other:?} is not supported"
                        )));
                    }
                })
            })
            .collect::<Result<_>>()?,
        _ => return Err(invalid("message content must be a string or an array")),
    };
    Ok(Message { role, content })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pascal_case_round_trips_but_documents_keep_their_keys() {
        let sdk = json!({"ModelId": "m", "Messages": [{"Role": "user", "Content": [
            {"ToolUse": {"ToolUseId": "t1", "Name": "search", "Input": {"Query": "x", "max_results": 3}}}
        ]}], "ToolConfig": {"Tools": [{"ToolSpec": {"Name": "search", "InputSchema": {"Json": {"type": "object", "properties": {"Query": {"type": "string"}}}}}}]}});
        let camel = recase(&sdk, Case::Camel);
        let r: ConverseRequest = serde_json::from_value(camel.clone()).unwrap();
        let ContentBlock::ToolUse(t) = &r.messages[0].content[0] else {
            panic!()
        };
        assert_eq!(t.input, json!({"Query": "x", "max_results": 3}));
        assert_eq!(
            r.tool_config.unwrap().tools[0].spec().input_schema.json()["properties"]["Query"]["type"],
            "string"
        );
        assert_eq!(recase(&camel, Case::Pascal), sdk);
        assert_eq!(
            execution_arn("arn:aws:states:local:0:execution:m:e1:3:0"),
            "arn:aws:states:local:0:execution:m:e1"
        );
    }
}
