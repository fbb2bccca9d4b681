//! Amazon Bedrock's Converse and ConverseStream through the AWS SDK (feature `bedrock`).
//! Credentials come from the usual chain (environment, profile, SSO, container and instance
//! roles); the endpoint can be overridden (a local server, a VPC endpoint). The request model is
//! Converse's own, so translation is one to one; SDK errors map to the named errors by their
//! AWS error code.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_bedrockruntime::types as sdk;
use aws_smithy_types::{Blob, Document, Number};
use serde_json::Value;

use crate::provider::Provider;
use crate::types::*;
use crate::{Error, Result};

const NAME: &str = "bedrock";

pub struct BedrockProvider {
    client: Client,
}

impl BedrockProvider {
    /// A client from the default credential and region chain, with optional overrides.
    pub async fn from_env(
        region: Option<String>,
        endpoint_url: Option<String>,
        profile: Option<String>,
    ) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(r) = region {
            loader = loader.region(aws_config::Region::new(r));
        }
        if let Some(p) = profile {
            loader = loader.profile_name(p);
        }
        if let Some(e) = endpoint_url {
            loader = loader.endpoint_url(e);
        }
        let conf = loader.load().await;
        BedrockProvider {
            client: Client::new(&conf),
        }
    }

    /// Uses a client configured by the caller.
    pub fn from_client(client: Client) -> Self {
        BedrockProvider { client }
    }
}

fn build_err(e: impl std::fmt::Display) -> Error {
    Error::InvalidRequest(format!("bedrock: {e}"))
}

/// A JSON value as a Smithy document.
pub fn to_document(v: &Value) -> Document {
    match v {
        Value::Null => Document::Null,
        Value::Bool(b) => Document::Bool(*b),
        Value::Number(n) => Document::Number(if let Some(u) = n.as_u64() {
            Number::PosInt(u)
        } else if let Some(i) = n.as_i64() {
            Number::NegInt(i)
        } else {
            Number::Float(n.as_f64().unwrap_or(0.0))
        }),
        Value::String(s) => Document::String(s.clone()),
        Value::Array(a) => Document::Array(a.iter().map(to_document).collect()),
        Value::Object(m) => Document::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), to_document(v)))
                .collect::<HashMap<_, _>>(),
        ),
    }
}

/// A Smithy document as a JSON value.
pub fn from_document(d: &Document) -> Value {
    match d {
        Document::Null => Value::Null,
        Document::Bool(b) => Value::Bool(*b),
        Document::Number(Number::PosInt(u)) => Value::from(*u),
        Document::Number(Number::NegInt(i)) => Value::from(*i),
        Document::Number(Number::Float(f)) => Value::from(*f),
        Document::String(s) => Value::String(s.clone()),
        Document::Array(a) => Value::Array(a.iter().map(from_document).collect()),
        Document::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), from_document(&m[k])))
                    .collect(),
            )
        }
    }
}

fn bytes(source: &BinarySource) -> Result<Blob> {
    match source {
        BinarySource::Bytes(b64) => aws_smithy_types::base64::decode(b64)
            .map(Blob::new)
            .map_err(|e| Error::InvalidRequest(format!("bytes are not base64: {e}"))),
        BinarySource::S3Location(_) => Err(Error::InvalidRequest(
            "bedrock: s3Location sources are not supported by this provider; send the bytes".into(),
        )),
    }
}

fn image(i: &ImageBlock) -> Result<sdk::ImageBlock> {
    sdk::ImageBlock::builder()
        .format(sdk::ImageFormat::from(i.format.as_str()))
        .source(sdk::ImageSource::Bytes(bytes(&i.source)?))
        .build()
        .map_err(build_err)
}

fn document(d: &DocumentBlock) -> Result<sdk::DocumentBlock> {
    sdk::DocumentBlock::builder()
        .format(sdk::DocumentFormat::from(d.format.as_str()))
        .name(&d.name)
        .source(sdk::DocumentSource::Bytes(bytes(&d.source)?))
        .build()
        .map_err(build_err)
}

fn content(b: &ContentBlock) -> Result<sdk::ContentBlock> {
    Ok(match b {
        ContentBlock::Text(t) => sdk::ContentBlock::Text(t.clone()),
        ContentBlock::Image(i) => sdk::ContentBlock::Image(image(i)?),
        ContentBlock::Document(d) => sdk::ContentBlock::Document(document(d)?),
        ContentBlock::ToolUse(t) => sdk::ContentBlock::ToolUse(
            sdk::ToolUseBlock::builder()
                .tool_use_id(&t.tool_use_id)
                .name(&t.name)
                .input(to_document(&t.input))
                .build()
                .map_err(build_err)?,
        ),
        ContentBlock::ToolResult(r) => {
            let mut b = sdk::ToolResultBlock::builder().tool_use_id(&r.tool_use_id);
            for c in &r.content {
                b = b.content(match c {
                    ToolResultContent::Text(t) => sdk::ToolResultContentBlock::Text(t.clone()),
                    ToolResultContent::Json(v) => sdk::ToolResultContentBlock::Json(to_document(v)),
                    ToolResultContent::Image(i) => sdk::ToolResultContentBlock::Image(image(i)?),
                    ToolResultContent::Document(d) => {
                        sdk::ToolResultContentBlock::Document(document(d)?)
                    }
                });
            }
            if let Some(s) = r.status {
                b = b.status(match s {
                    ToolResultStatus::Success => sdk::ToolResultStatus::Success,
                    ToolResultStatus::Error => sdk::ToolResultStatus::Error,
                });
            }
            sdk::ContentBlock::ToolResult(b.build().map_err(build_err)?)
        }
    })
}

struct Parts {
    messages: Vec<sdk::Message>,
    system: Vec<sdk::SystemContentBlock>,
    inference: Option<sdk::InferenceConfiguration>,
    tools: Option<sdk::ToolConfiguration>,
    extra: Option<Document>,
}

fn parts(r: &ConverseRequest) -> Result<Parts> {
    let messages = r
        .messages
        .iter()
        .map(|m| {
            let mut b = sdk::Message::builder().role(match m.role {
                Role::User => sdk::ConversationRole::User,
                Role::Assistant => sdk::ConversationRole::Assistant,
            });
            for c in &m.content {
                b = b.content(content(c)?);
            }
            b.build().map_err(build_err)
        })
        .collect::<Result<_>>()?;
    let system = r
        .system
        .iter()
        .map(|s| sdk::SystemContentBlock::Text(s.text.clone()))
        .collect();
    let inference = r.inference_config.as_ref().map(|c| {
        sdk::InferenceConfiguration::builder()
            .set_max_tokens(c.max_tokens.map(|n| n as i32))
            .set_temperature(c.temperature.map(|t| t as f32))
            .set_top_p(c.top_p.map(|t| t as f32))
            .set_stop_sequences(c.stop_sequences.clone())
            .build()
    });
    let tools = match &r.tool_config {
        None => None,
        Some(tc) => {
            let mut b = sdk::ToolConfiguration::builder();
            for t in &tc.tools {
                let s = t.spec();
                b = b.tools(sdk::Tool::ToolSpec(
                    sdk::ToolSpecification::builder()
                        .name(&s.name)
                        .set_description(s.description.clone())
                        .input_schema(sdk::ToolInputSchema::Json(to_document(
                            s.input_schema.json(),
                        )))
                        .build()
                        .map_err(build_err)?,
                ));
            }
            if let Some(choice) = &tc.tool_choice {
                b = b.tool_choice(match choice {
                    ToolChoice::Auto(_) => {
                        sdk::ToolChoice::Auto(sdk::AutoToolChoice::builder().build())
                    }
                    ToolChoice::Any(_) => {
                        sdk::ToolChoice::Any(sdk::AnyToolChoice::builder().build())
                    }
                    ToolChoice::Tool(t) => sdk::ToolChoice::Tool(
                        sdk::SpecificToolChoice::builder()
                            .name(&t.name)
                            .build()
                            .map_err(build_err)?,
                    ),
                });
            }
            Some(b.build().map_err(build_err)?)
        }
    };
    Ok(Parts {
        messages,
        system,
        inference,
        tools,
        extra: r.additional_model_request_fields.as_ref().map(to_document),
    })
}

fn from_content(b: &sdk::ContentBlock) -> Option<ContentBlock> {
    match b {
        sdk::ContentBlock::Text(t) => Some(ContentBlock::Text(t.clone())),
        sdk::ContentBlock::ToolUse(t) => Some(ContentBlock::ToolUse(ToolUseBlock {
            tool_use_id: t.tool_use_id().to_string(),
            name: t.name().to_string(),
            input: from_document(t.input()),
        })),
        _ => None,
    }
}

fn usage(u: Option<&sdk::TokenUsage>) -> TokenUsage {
    u.map(|u| TokenUsage {
        input_tokens: u.input_tokens().max(0) as u64,
        output_tokens: u.output_tokens().max(0) as u64,
        total_tokens: u.total_tokens().max(0) as u64,
    })
    .unwrap_or_default()
}

/// An SDK error as a named error, by its AWS error code (and HTTP status when it has one).
fn sdk_error<E, R>(model: &str, e: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let status = match &e {
        SdkError::ServiceError(_) => e.raw_response_status(),
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
            return Error::transport(
                NAME,
                aws_smithy_types::error::display::DisplayErrorContext(&e),
            );
        }
        _ => None,
    };
    let code = e.code().unwrap_or_default().to_string();
    let message = e
        .message()
        .map(str::to_string)
        .unwrap_or_else(|| aws_smithy_types::error::display::DisplayErrorContext(&e).to_string());
    error_for_code(model, &code, &message, status)
}

/// A ConverseStream error: exceptions inside the stream carry their type in the frame's
/// `:exception-type` header, which the SDK turns into the variant rather than an error code.
fn stream_error<R: std::fmt::Debug>(
    model: &str,
    e: SdkError<sdk::error::ConverseStreamOutputError, R>,
) -> Error {
    use sdk::error::ConverseStreamOutputError as E;
    let code = match e.as_service_error() {
        Some(E::ThrottlingException(_)) => "ThrottlingException",
        Some(E::ValidationException(_)) => "ValidationException",
        Some(E::ServiceUnavailableException(_)) => "ServiceUnavailableException",
        Some(E::ModelStreamErrorException(_)) => "ModelStreamErrorException",
        Some(E::InternalServerException(_)) => "InternalServerException",
        _ => return sdk_error(model, e),
    };
    let message = e.message().unwrap_or_default().to_string();
    error_for_code(model, code, &message, None)
}

trait RawStatus {
    fn raw_response_status(&self) -> Option<u16>;
}

impl<E, R: std::fmt::Debug> RawStatus for SdkError<E, R> {
    fn raw_response_status(&self) -> Option<u16> {
        // The raw response's type differs between operations; its status shows in Debug.
        let raw = format!("{:?}", self.raw_response()?);
        let at = raw.find("status: ")? + "status: ".len();
        raw[at..]
            .chars()
            .skip_while(|c| !c.is_ascii_digit())
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .ok()
    }
}

/// Bedrock's error codes to named errors.
pub fn error_for_code(model: &str, code: &str, message: &str, status: Option<u16>) -> Error {
    // Event-stream exceptions name their type in camelCase (`throttlingException`).
    let mut chars = code.chars();
    let code: String = chars
        .next()
        .map(|c| c.to_ascii_uppercase())
        .into_iter()
        .chain(chars)
        .collect();
    let status = match code.as_str() {
        "ThrottlingException" | "ServiceQuotaExceededException" => 429,
        "AccessDeniedException"
        | "UnrecognizedClientException"
        | "ExpiredTokenException"
        | "InvalidSignatureException" => 403,
        "ResourceNotFoundException" => 404,
        "ValidationException" => 400,
        "ModelTimeoutException"
        | "ServiceUnavailableException"
        | "InternalServerException"
        | "ModelNotReadyException"
        | "ModelStreamErrorException"
        | "ModelErrorException" => 503,
        _ => status.unwrap_or(500),
    };
    Error::from_http(NAME, model, status, &code, message)
}

#[async_trait]
impl Provider for BedrockProvider {
    fn name(&self) -> &str {
        NAME
    }

    async fn converse(&self, request: &ConverseRequest) -> Result<ConverseResponse> {
        let p = parts(request)?;
        let out = self
            .client
            .converse()
            .model_id(&request.model_id)
            .set_messages(Some(p.messages))
            .set_system(Some(p.system).filter(|s| !s.is_empty()))
            .set_inference_config(p.inference)
            .set_tool_config(p.tools)
            .set_additional_model_request_fields(p.extra)
            .send()
            .await
            .map_err(|e| sdk_error(&request.model_id, e))?;
        let message = match out.output() {
            Some(sdk::ConverseOutput::Message(m)) => m,
            _ => {
                return Err(Error::Protocol {
                    provider: NAME.into(),
                    message: "response has no output message".into(),
                });
            }
        };
        Ok(ConverseResponse {
            output: ConverseOutput {
                message: Message {
                    role: Role::Assistant,
                    content: message.content().iter().filter_map(from_content).collect(),
                },
            },
            stop_reason: StopReason::parse(out.stop_reason().as_str()),
            usage: usage(out.usage()),
            metrics: Metrics {
                latency_ms: out.metrics().map_or(0, |m| m.latency_ms().max(0) as u64),
            },
        })
    }

    async fn converse_stream(&self, request: &ConverseRequest) -> Result<EventStream> {
        let p = parts(request)?;
        let out = self
            .client
            .converse_stream()
            .model_id(&request.model_id)
            .set_messages(Some(p.messages))
            .set_system(Some(p.system).filter(|s| !s.is_empty()))
            .set_inference_config(p.inference)
            .set_tool_config(p.tools)
            .set_additional_model_request_fields(p.extra)
            .send()
            .await
            .map_err(|e| sdk_error(&request.model_id, e))?;
        let model = request.model_id.clone();
        Ok(Box::pin(futures_util::stream::unfold(
            (out.stream, model, false),
            |(mut rx, model, done)| async move {
                if done {
                    return None;
                }
                loop {
                    match rx.recv().await {
                        Ok(Some(event)) => {
                            if let Some(e) = from_stream_event(event) {
                                return Some((Ok(e), (rx, model, false)));
                            }
                        }
                        Ok(None) => return None,
                        Err(e) => {
                            let err = stream_error(&model, e);
                            return Some((Err(err), (rx, model, true)));
                        }
                    }
                }
            },
        )))
    }
}

fn from_stream_event(e: sdk::ConverseStreamOutput) -> Option<StreamEvent> {
    use sdk::ConverseStreamOutput as O;
    Some(match e {
        O::MessageStart(m) => StreamEvent::MessageStart(MessageStart {
            role: match m.role() {
                sdk::ConversationRole::User => Role::User,
                _ => Role::Assistant,
            },
        }),
        O::ContentBlockStart(s) => match s.start()? {
            sdk::ContentBlockStart::ToolUse(t) => {
                StreamEvent::ContentBlockStart(ContentBlockStart {
                    content_block_index: s.content_block_index().max(0) as u32,
                    start: BlockStart::ToolUse(ToolUseStart {
                        tool_use_id: t.tool_use_id().to_string(),
                        name: t.name().to_string(),
                    }),
                })
            }
            _ => return None,
        },
        O::ContentBlockDelta(d) => StreamEvent::ContentBlockDelta(ContentBlockDelta {
            content_block_index: d.content_block_index().max(0) as u32,
            delta: match d.delta()? {
                sdk::ContentBlockDelta::Text(t) => BlockDelta::Text(t.clone()),
                sdk::ContentBlockDelta::ToolUse(t) => BlockDelta::ToolUse(ToolUseDelta {
                    input: t.input().to_string(),
                }),
                _ => return None,
            },
        }),
        O::ContentBlockStop(s) => StreamEvent::ContentBlockStop(ContentBlockStop {
            content_block_index: s.content_block_index().max(0) as u32,
        }),
        O::MessageStop(m) => StreamEvent::MessageStop(MessageStop {
            stop_reason: StopReason::parse(m.stop_reason().as_str()),
        }),
        O::Metadata(m) => StreamEvent::Metadata(StreamMetadata {
            usage: usage(m.usage()),
            metrics: Metrics {
                latency_ms: m.metrics().map_or(0, |x| x.latency_ms().max(0) as u64),
            },
        }),
        _ => return None,
    })
}
