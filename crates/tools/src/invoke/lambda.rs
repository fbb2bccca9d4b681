//! Lambda tools: the event sent with Lambda's Invoke (RequestResponse), the function's payload
//! is the result; a function error (`X-Amz-Function-Error`) becomes the function's own
//! `errorType`.

use aws_sdk_lambda::primitives::Blob;
use serde_json::Value;
use tokio::sync::OnceCell;

use super::{function_error, snippet};
use crate::ToolContext;
use crate::error::{Error, Result};

pub(crate) struct LambdaInvoker {
    function: String,
    region: Option<String>,
    endpoint_url: Option<String>,
    client: OnceCell<aws_sdk_lambda::Client>,
}

impl LambdaInvoker {
    pub fn new(function: &str, region: Option<String>, endpoint_url: Option<String>) -> Self {
        Self {
            function: function.to_owned(),
            region,
            endpoint_url,
            client: OnceCell::new(),
        }
    }

    async fn client(&self) -> &aws_sdk_lambda::Client {
        self.client
            .get_or_init(|| async {
                let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
                if let Some(r) = &self.region {
                    loader = loader.region(aws_config::Region::new(r.clone()));
                }
                if let Some(u) = &self.endpoint_url {
                    loader = loader.endpoint_url(u);
                }
                aws_sdk_lambda::Client::new(&loader.load().await)
            })
            .await
    }

    pub async fn run(&self, event: &Value, cx: &ToolContext<'_>) -> Result<Value> {
        let out = self
            .client()
            .await
            .invoke()
            .function_name(&self.function)
            .payload(Blob::new(
                serde_json::to_vec(event).expect("json serializes"),
            ))
            .send()
            .await
            .map_err(|e| {
                let e = aws_sdk_lambda::Error::from(e);
                match &e {
                    aws_sdk_lambda::Error::ResourceNotFoundException(_) => Error::failed(
                        cx.tool,
                        format!("Lambda function {} not found: {e}", self.function),
                    ),
                    _ => Error::failed(cx.tool, format!("Lambda Invoke of {}: {e}", self.function)),
                }
            })?;
        let bytes = out.payload().map(|b| b.as_ref()).unwrap_or_default();
        if bytes.len() > cx.policy.max_output_bytes {
            return Err(Error::OutputTooLarge {
                tool: cx.tool.to_owned(),
                limit: cx.policy.max_output_bytes,
            });
        }
        let text = String::from_utf8_lossy(bytes);
        let parsed: Option<Value> = if text.trim().is_empty() {
            Some(Value::Null)
        } else {
            serde_json::from_str(&text).ok()
        };
        if let Some(kind) = out.function_error() {
            return Err(parsed
                .as_ref()
                .and_then(|v| function_error(cx.tool, v))
                .unwrap_or_else(|| Error::Function {
                    tool: cx.tool.to_owned(),
                    error_type: kind.to_owned(),
                    message: snippet(&text, 500),
                }));
        }
        parsed.ok_or_else(|| {
            Error::failed(
                cx.tool,
                format!(
                    "Lambda {} returned a payload that is not JSON: {:?}",
                    self.function,
                    snippet(&text, 200)
                ),
            )
        })
    }
}
