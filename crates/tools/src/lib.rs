//! Tools for agentry's agents, the seed's Lambda role: discrete capabilities (search the web,
//! read a page, analyse data, write a document, send an email, search the knowledge base) that
//! a state machine or the agent loop calls by name.
//!
//! A [`Registry`] holds tools, each with a name, a description, JSON Schemas for its input and
//! output (checked on every call), a [`Policy`] (timeout, hosts it may reach, private networks
//! it may reach, file-system scope, secrets, output limit) and an invoker: a built-in Rust
//! tool, a local process speaking Lambda's JSON-in/JSON-out convention, an HTTP endpoint, or
//! (feature `lambda`) an AWS Lambda function. Calls carry an idempotency key whose result is
//! remembered, are measured per tool and tenant, and can be held for a human's approval.
//! [`engine::register`] makes registry tools the targets of `arn:aws:states:::lambda:invoke`
//! and of Lambda function ARNs in state machines.
//!
//! ```
//! use std::sync::Arc;
//! use agentry_tools::{Call, Registry, builtin::DataAnalysis};
//! use serde_json::json;
//!
//! # #[tokio::main] async fn main() -> agentry_tools::Result<()> {
//! let registry = Registry::new();
//! registry.add_builtin(Arc::new(DataAnalysis))?;
//! let out = registry
//!     .invoke(Call::new("data_analysis", json!({"csv": "price\n3\n5\n", "describe": ["price"]})))
//!     .await?;
//! assert_eq!(out["describe"]["price"]["mean"], json!(4.0));
//! # Ok(()) }
//! ```
//!
//! Layout:
//! - `error`: the one [`Error`] type; each error's `Tools.*` name
//! - `registry`: [`ToolSpec`], [`Registry`], calls and outcomes
//! - `policy`: [`Policy`], the network guard (resolver and redirect checks), address classes
//! - `invoke`: built-in, process, HTTP and Lambda invokers
//! - `memory`: results by idempotency key and pending approvals (memory or an item store)
//! - `metrics`: calls, errors and latency per tool and tenant
//! - `approval`: approval rules and the requests waiting for a human
//! - `engine`: the Task resources that run tools in state machines
//! - `builtin`: the built-in tools

pub mod approval;
pub mod builtin;
pub mod engine;
pub mod error;
pub mod invoke;
pub mod memory;
pub mod metrics;
pub mod policy;
pub mod registry;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

pub use approval::{Approval, ApprovalRequest, PendingApproval};
pub use error::{Error, Result};
pub use metrics::{MetricsSnapshot, ToolMetrics};
pub use policy::{Policy, SecretRef};
pub use registry::{Call, InvokerSpec, Outcome, Registry, ToolSpec, ToolsConfig};

/// The tenant of calls that name none.
pub const DEFAULT_TENANT: &str = "default";

/// A tool implemented in Rust.
#[async_trait]
pub trait Builtin: Send + Sync {
    /// The tool's default description: name, schemas and policy (configuration may register
    /// it again under another name or policy).
    fn spec(&self) -> ToolSpec;

    /// Runs the tool on input that already matched its input schema.
    async fn call(&self, input: Value, cx: &ToolContext<'_>) -> Result<Value>;
}

/// What a running tool may use: its identity, its policy-checked HTTP client and its secrets.
pub struct ToolContext<'a> {
    pub tool: &'a str,
    pub tenant: &'a str,
    /// Empty when the caller gave none.
    pub idempotency_key: &'a str,
    pub policy: &'a Policy,
    pub http: &'a HttpAccess,
    /// Secret values by secret name.
    pub secrets: &'a BTreeMap<String, String>,
}

impl ToolContext<'_> {
    pub fn failed(&self, message: impl Into<String>) -> Error {
        Error::Failed {
            tool: self.tool.to_owned(),
            message: message.into(),
        }
    }
}

/// A response read within the output limit.
#[derive(Clone, Debug)]
pub struct Fetched {
    pub status: u16,
    /// The URL after redirects.
    pub url: url::Url,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// A tool's network access: every request checked by its [`policy::NetGuard`], every
/// response read only up to the output limit.
#[derive(Clone)]
pub struct HttpAccess {
    tool: String,
    guard: Arc<policy::NetGuard>,
    client: reqwest::Client,
    max_bytes: usize,
}

impl HttpAccess {
    pub(crate) fn new(tool: &str, guard: Arc<policy::NetGuard>, policy: &Policy) -> Result<Self> {
        Ok(Self {
            tool: tool.to_owned(),
            client: policy::client(guard.clone(), policy.timeout())?,
            guard,
            max_bytes: policy.max_output_bytes,
        })
    }

    pub async fn get(&self, url: &str) -> Result<Fetched> {
        self.send(reqwest::Method::GET, url, None, &[]).await
    }

    pub async fn get_with(&self, url: &str, headers: &[(String, String)]) -> Result<Fetched> {
        self.send(reqwest::Method::GET, url, None, headers).await
    }

    /// The tool's network guard (for protocols other than HTTP: resolve with
    /// [`policy::NetGuard::resolve`] and connect to what it returns).
    pub fn guard(&self) -> &policy::NetGuard {
        &self.guard
    }

    pub async fn post_json(
        &self,
        url: &str,
        body: &Value,
        headers: &[(String, String)],
    ) -> Result<Fetched> {
        self.send(reqwest::Method::POST, url, Some(body), headers)
            .await
    }

    async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&Value>,
        headers: &[(String, String)],
    ) -> Result<Fetched> {
        let parsed: url::Url = url
            .parse()
            .map_err(|e| Error::failed(&self.tool, format!("invalid URL \"{url}\": {e}")))?;
        self.guard.check_url(&parsed)?;
        let mut req = self.client.request(method, parsed);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(serde_json::to_vec(b).unwrap_or_default());
        }
        let mut resp = req
            .send()
            .await
            .map_err(|e| policy::from_reqwest(&self.tool, e))?;
        let status = resp.status().as_u16();
        let final_url = resp.url().clone();
        // A redirect the client did not follow (its scheme is not HTTP): say why.
        if resp.status().is_redirection()
            && let Some(to) = resp
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .and_then(|l| final_url.join(l).ok())
        {
            self.guard.check_url(&to)?;
        }
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if resp
            .content_length()
            .is_some_and(|n| n as usize > self.max_bytes)
        {
            return Err(self.too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| policy::from_reqwest(&self.tool, e))?
        {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(self.too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched {
            status,
            url: final_url,
            content_type,
            body,
        })
    }

    fn too_large(&self) -> Error {
        Error::OutputTooLarge {
            tool: self.tool.clone(),
            limit: self.max_bytes,
        }
    }
}
