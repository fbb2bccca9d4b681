//! HTTP tools: the event POSTed as JSON to the tool's URL (through the tool's policy-checked
//! client), the JSON response body is the result.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{function_error, snippet};
use crate::ToolContext;
use crate::error::{Error, Result};

pub(crate) struct HttpInvoker {
    tool: String,
    url: String,
    headers: Vec<(String, String)>,
}

impl HttpInvoker {
    pub fn new(tool: &str, url: &str, headers: &BTreeMap<String, String>) -> Result<Self> {
        url::Url::parse(url)
            .map_err(|e| Error::Config(format!("tool \"{tool}\": invalid URL \"{url}\": {e}")))?;
        Ok(Self {
            tool: tool.to_owned(),
            url: url.to_owned(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        })
    }

    pub async fn run(&self, event: &Value, cx: &ToolContext<'_>) -> Result<Value> {
        let mut headers = self.headers.clone();
        for s in &cx.policy.secrets {
            if let (Some(h), Some(v)) = (&s.header, cx.secrets.get(&s.name)) {
                headers.push((h.clone(), v.clone()));
            }
        }
        headers.push(("x-agentry-tenant".into(), cx.tenant.to_owned()));
        if !cx.idempotency_key.is_empty() {
            headers.push(("idempotency-key".into(), cx.idempotency_key.to_owned()));
        }
        let resp = cx.http.post_json(&self.url, event, &headers).await?;
        let text = String::from_utf8_lossy(&resp.body);
        let parsed: Option<Value> = if text.trim().is_empty() {
            Some(Value::Null)
        } else {
            serde_json::from_str(&text).ok()
        };
        if let Some(e) = parsed.as_ref().and_then(|v| function_error(&self.tool, v)) {
            return Err(e);
        }
        if !(200..300).contains(&resp.status) {
            return Err(Error::failed(
                &self.tool,
                format!(
                    "{} answered HTTP {}: {}",
                    self.url,
                    resp.status,
                    snippet(text.trim(), 500)
                ),
            ));
        }
        parsed.ok_or_else(|| {
            Error::failed(
                &self.tool,
                format!(
                    "{} answered with a body that is not JSON: {:?}",
                    self.url,
                    snippet(text.trim(), 200)
                ),
            )
        })
    }
}
