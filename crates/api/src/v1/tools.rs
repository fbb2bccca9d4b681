//! Tools and approvals. A tenant sees the global tools and its own; it registers its own HTTP
//! tools here (never process tools, never with private networks granted: those are for the
//! operator's configuration), deletes them (a global tool is 403), and reads its calls'
//! metrics. Calls a tool holds for a human (`.waitForTaskToken` on an approval-gated tool) are
//! listed under `/v1/approvals` and approved or rejected there; another account's requests
//! answer as unknown tokens do.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::Tenant;
use crate::error::{ApiError, ErrorBody, JsonBody};
use crate::time::rfc3339;
use crate::{AppState, Tools};
use agentry_tools::{Approval, InvokerSpec, PendingApproval, Policy, ToolSpec};

/// The longest timeout a tool registered through the API may have, in milliseconds.
pub const MAX_TIMEOUT_MS: u64 = 300_000;

/// A tool as a tenant sees it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Tool {
    pub name: String,
    pub description: String,
    pub version: String,
    /// The owning tenant; `null` for a global tool.
    pub owner: Option<String>,
    /// `builtin`, `process`, `http` or `lambda`.
    pub kind: String,
    #[schema(value_type = Object)]
    pub input_schema: Value,
    #[schema(value_type = Option<Object>)]
    pub output_schema: Option<Value>,
    /// Whether a call may be held for a human's approval (always, or by a rule on its input).
    pub approval_required: bool,
    /// The endpoint of the tenant's own HTTP tool (not shown for global tools).
    pub url: Option<String>,
    pub timeout_ms: u64,
    pub allowed_hosts: Vec<String>,
}

fn tool(spec: ToolSpec) -> Tool {
    let (kind, url) = match &spec.invoker {
        InvokerSpec::Builtin { .. } => ("builtin", None),
        InvokerSpec::Process { .. } => ("process", None),
        InvokerSpec::Http { url, .. } => ("http", spec.tenant.as_ref().map(|_| url.clone())),
        InvokerSpec::Lambda { .. } => ("lambda", None),
    };
    Tool {
        name: spec.name,
        description: spec.description,
        version: spec.version,
        owner: spec.tenant,
        kind: kind.into(),
        input_schema: spec.input_schema,
        output_schema: spec.output_schema,
        approval_required: spec.approval != Approval::Never,
        url,
        timeout_ms: spec.policy.timeout_ms,
        allowed_hosts: spec.policy.allow_hosts,
    }
}

#[derive(Serialize, ToSchema)]
pub struct ToolList {
    pub items: Vec<Tool>,
}

/// A tenant's HTTP tool: each call POSTs the tool's input as JSON to `url`, and the response
/// body is its output.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateTool {
    /// Letters, digits, '_', '-' or '.', at most 64.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Default `1`.
    pub version: Option<String>,
    /// JSON Schema of the input (any object when absent).
    #[schema(value_type = Option<Object>)]
    pub input_schema: Option<Value>,
    /// JSON Schema of the output (unchecked when absent).
    #[schema(value_type = Option<Object>)]
    pub output_schema: Option<Value>,
    /// The endpoint (http or https).
    pub url: String,
    /// Headers sent with every call.
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    /// 1 to 300000; default 30000.
    pub timeout_ms: Option<u64>,
    /// Hosts the tool may reach (`example.com`, `*.example.com`); default: the URL's host.
    pub allowed_hosts: Option<Vec<String>>,
    /// Refused: tools registered through the API never reach private networks.
    #[schema(value_type = Option<Vec<String>>)]
    pub allow_private_networks: Option<Value>,
    /// Refused: process tools are configured by the operator, not through the API.
    #[schema(value_type = Option<Object>)]
    pub command: Option<Value>,
    /// Refused: only HTTP tools (given by `url`) are registered through the API.
    #[schema(value_type = Option<Object>)]
    pub invoker: Option<Value>,
}

fn invalid(field: &str, message: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("field \"{field}\": {message}"))
}

fn not_found(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "ToolNotFound",
        format!("tool \"{name}\" does not exist"),
    )
}

/// The spec a registration asks for, checked field by field.
fn spec_of(tenant: &str, req: CreateTool) -> Result<ToolSpec, ApiError> {
    if req.invoker.is_some() {
        return Err(invalid(
            "invoker",
            "only HTTP tools can be registered through the API: give \"url\"",
        ));
    }
    if req.command.is_some() {
        return Err(invalid(
            "command",
            "process tools cannot be registered through the API (the operator configures them in [[tools]]); register an HTTP tool with \"url\"",
        ));
    }
    if let Some(nets) = &req.allow_private_networks
        && !matches!(nets, Value::Null)
        && nets.as_array().is_none_or(|a| !a.is_empty())
    {
        return Err(invalid(
            "allowPrivateNetworks",
            "tools registered through the API cannot reach private, loopback or link-local networks; only the operator's [[tools]] configuration can grant them",
        ));
    }
    let name_ok = !req.name.is_empty()
        && req.name.len() <= 64
        && req
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !name_ok {
        return Err(invalid(
            "name",
            format!(
                "\"{}\" must be 1 to 64 letters, digits, '_', '-' or '.'",
                req.name
            ),
        ));
    }
    if let Some(v) = &req.version
        && (v.is_empty() || v.len() > 64)
    {
        return Err(invalid("version", "must be 1 to 64 characters"));
    }
    for (field, schema) in [
        ("inputSchema", &req.input_schema),
        ("outputSchema", &req.output_schema),
    ] {
        if let Some(s) = schema {
            if !s.is_object() && !s.is_boolean() {
                return Err(invalid(
                    field,
                    "a JSON Schema must be an object or a boolean",
                ));
            }
            agentry_tools::registry::check_schema(s)
                .map_err(|e| invalid(field, format!("not a valid JSON Schema: {e}")))?;
        }
    }
    let url: reqwest::Url = req
        .url
        .parse()
        .map_err(|e| invalid("url", format!("\"{}\" is not a URL: {e}", req.url)))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(
            "url",
            format!("scheme \"{}\" is not allowed (http or https)", url.scheme()),
        ));
    }
    let Some(host) = url.host_str().map(str::to_owned) else {
        return Err(invalid("url", format!("\"{url}\" has no host")));
    };
    let timeout_ms = req.timeout_ms.unwrap_or(30_000);
    if timeout_ms == 0 || timeout_ms > MAX_TIMEOUT_MS {
        return Err(invalid(
            "timeoutMs",
            format!("must be 1 to {MAX_TIMEOUT_MS}, got {timeout_ms}"),
        ));
    }
    let hosts = match req.allowed_hosts {
        None => vec![host.trim_matches(['[', ']']).to_owned()],
        Some(h) if h.is_empty() => {
            return Err(invalid(
                "allowedHosts",
                "must name at least the URL's host (or be left out)",
            ));
        }
        Some(h) => h,
    };
    if let Some(bad) = hosts
        .iter()
        .find(|h| h.is_empty() || h.contains(['/', ' ', '@']))
    {
        return Err(invalid(
            "allowedHosts",
            format!("\"{bad}\" is not a host name"),
        ));
    }
    for k in req.headers.keys() {
        if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err() {
            return Err(invalid("headers", format!("\"{k}\" is not a header name")));
        }
    }
    let policy = Policy {
        timeout_ms,
        allow_hosts: hosts,
        ..Policy::default()
    };
    // The endpoint must be reachable under the tool's own policy: on the allow-list, and not
    // a private address written as an IP literal (names are checked again when resolved).
    agentry_tools::policy::NetGuard::new(&req.name, &policy)
        .and_then(|g| g.check_url(&url))
        .map_err(|e| invalid("url", e))?;
    let mut spec = ToolSpec::new(
        req.name,
        InvokerSpec::Http {
            url: url.to_string(),
            headers: req.headers,
        },
    )
    .description(req.description)
    .tenant(tenant)
    .policy(policy);
    if let Some(v) = req.version {
        spec = spec.version(v);
    }
    if let Some(s) = req.input_schema {
        spec = spec.input_schema(s);
    }
    if let Some(s) = req.output_schema {
        spec = spec.output_schema(s);
    }
    Ok(spec)
}

/// The tools the caller's tenant sees: the global ones and its own (its own shadow a global
/// one of the same name), by name.
#[utoipa::path(get, path = "/v1/tools", tag = "tools",
    responses((status = 200, body = ToolList), (status = 503, body = ErrorBody)))]
pub async fn list(State(state): State<AppState>, t: Tenant) -> Result<Json<ToolList>, ApiError> {
    let tools = state.tools()?;
    Ok(Json(ToolList {
        items: tools
            .registry
            .list(&t.principal.tenant)
            .into_iter()
            .map(tool)
            .collect(),
    }))
}

/// Registers (or replaces) one of the tenant's own HTTP tools. Process tools and private
/// networks are refused: only the operator's configuration grants them.
#[utoipa::path(post, path = "/v1/tools", tag = "tools", request_body = CreateTool,
    responses((status = 201, body = Tool),
        (status = 400, description = "a field is invalid; the message names it", body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    t: Tenant,
    JsonBody(req): JsonBody<CreateTool>,
) -> Result<(StatusCode, Json<Tool>), ApiError> {
    let tools = state.tools()?;
    let spec = spec_of(&t.principal.tenant, req)?;
    tools.registry.register_saved(spec.clone()).await?;
    Ok((StatusCode::CREATED, Json(tool(spec))))
}

/// One tool the caller's tenant sees.
#[utoipa::path(get, path = "/v1/tools/{name}", tag = "tools",
    params(("name" = String, Path)),
    responses((status = 200, body = Tool), (status = 404, body = ErrorBody)))]
pub async fn describe(
    State(state): State<AppState>,
    t: Tenant,
    Path(name): Path<String>,
) -> Result<Json<Tool>, ApiError> {
    let tools = state.tools()?;
    let spec = tools
        .registry
        .spec(&t.principal.tenant, &name)
        .map_err(|_| not_found(&name))?;
    Ok(Json(tool(spec)))
}

/// Deletes one of the tenant's own tools (a global one of the same name shows again). A
/// global tool is 403: it is visible but not the tenant's to delete.
#[utoipa::path(delete, path = "/v1/tools/{name}", tag = "tools",
    params(("name" = String, Path)),
    responses((status = 204, description = "deleted"),
        (status = 403, description = "a global tool", body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    t: Tenant,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let tools = state.tools()?;
    if tools
        .registry
        .unregister_saved(Some(&t.principal.tenant), &name)
        .await?
    {
        return Ok(StatusCode::NO_CONTENT);
    }
    if tools.registry.get(None, &name).is_some() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "ToolNotOwned",
            format!("tool \"{name}\" is global: only the operator's configuration removes it"),
        ));
    }
    Err(not_found(&name))
}

/// Calls of one tool by the caller's tenant: counts and latency.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ToolMetrics {
    pub tool: String,
    pub calls: u64,
    pub errors: u64,
    pub latency: Latency,
}

/// A latency histogram: `counts[i]` calls took at most `bucketsUs[i]` microseconds (and more
/// than the bucket before); the last bound is `null`, unbounded.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Latency {
    pub buckets_us: Vec<Option<u64>>,
    pub counts: Vec<u64>,
    pub sum_us: u64,
    pub max_us: u64,
    pub mean_us: f64,
}

/// Calls, errors and the latency histogram of the tenant's calls of a tool it sees.
#[utoipa::path(get, path = "/v1/tools/{name}/metrics", tag = "tools",
    params(("name" = String, Path)),
    responses((status = 200, body = ToolMetrics), (status = 404, body = ErrorBody)))]
pub async fn metrics(
    State(state): State<AppState>,
    t: Tenant,
    Path(name): Path<String>,
) -> Result<Json<ToolMetrics>, ApiError> {
    let tools = state.tools()?;
    tools
        .registry
        .spec(&t.principal.tenant, &name)
        .map_err(|_| not_found(&name))?;
    let snapshot = tools.registry.metrics();
    let m = snapshot
        .get(&name, &t.principal.tenant)
        .cloned()
        .unwrap_or_else(|| agentry_tools::ToolMetrics {
            latency_buckets: vec![0; agentry_tools::metrics::BUCKETS_US.len()],
            ..Default::default()
        });
    let mean_us = m.mean_latency_us();
    Ok(Json(ToolMetrics {
        tool: name,
        calls: m.calls,
        errors: m.errors,
        latency: Latency {
            buckets_us: agentry_tools::metrics::BUCKETS_US
                .iter()
                .map(|&b| (b != u64::MAX).then_some(b))
                .collect(),
            counts: m.latency_buckets,
            sum_us: m.latency_sum_us,
            max_us: m.latency_max_us,
            mean_us,
        },
    }))
}

/// A call waiting for a human.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalView {
    /// The waiting task's token: approve or reject with it.
    pub token: String,
    pub tool: String,
    /// The tool's input.
    #[schema(value_type = Object)]
    pub arguments: Value,
    /// Why the call needs approval.
    pub reason: String,
    pub execution_arn: String,
    /// RFC 3339.
    pub requested_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct ApprovalList {
    pub items: Vec<ApprovalView>,
}

fn approval(p: PendingApproval) -> ApprovalView {
    ApprovalView {
        token: p.token,
        tool: p.request.tool,
        arguments: p.request.input,
        reason: p.request.reason,
        execution_arn: p.execution,
        requested_at: rfc3339(p.requested_at_ms as i64),
    }
}

/// Whether the caller may see a pending approval: its execution is in the caller's account
/// (one recorded without its execution: the call was the caller's tenant's).
fn visible(p: &PendingApproval, t: &Tenant) -> bool {
    match p.account() {
        Some(a) => a == t.principal.account,
        None => p.execution.is_empty() && p.request.tenant == t.principal.tenant,
    }
}

async fn pending(tools: &Tools, t: &Tenant, token: &str) -> Result<PendingApproval, ApiError> {
    tools
        .registry
        .pending_approval(token)
        .await?
        .filter(|p| visible(p, t))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "ApprovalNotFound",
                "no approval request waits on this task token".to_string(),
            )
        })
}

/// The calls of the caller's executions waiting for approval, oldest first.
#[utoipa::path(get, path = "/v1/approvals", tag = "approvals",
    responses((status = 200, body = ApprovalList), (status = 503, body = ErrorBody)))]
pub async fn approvals(
    State(state): State<AppState>,
    t: Tenant,
) -> Result<Json<ApprovalList>, ApiError> {
    let tools = state.tools()?;
    let items = tools
        .registry
        .pending_approvals(None)
        .await?
        .into_iter()
        .filter(|p| visible(p, &t))
        .map(approval)
        .collect();
    Ok(Json(ApprovalList { items }))
}

/// Approves a waiting call: the tool runs now and its result (or error) answers the task.
#[utoipa::path(post, path = "/v1/approvals/{token}/approve", tag = "approvals",
    params(("token" = String, Path, description = "the task token, URL-encoded")),
    responses((status = 200, description = "`{\"status\": \"SUCCEEDED\", \"output\"}` or `{\"status\": \"FAILED\", \"error\", \"cause\"}`: how the tool's call ended"),
        (status = 404, body = ErrorBody)))]
pub async fn approve(
    State(state): State<AppState>,
    t: Tenant,
    Path(token): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let tools = state.tools()?;
    pending(tools, &t, &token).await?;
    let outcome = tools.tasks.approve_with(&token, &t.engine).await?;
    Ok(Json(match outcome {
        Ok(output) => json!({"status": "SUCCEEDED", "output": output}),
        Err(e) => json!({"status": "FAILED", "error": e.name(), "cause": e.to_string()}),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reject {
    /// Why: the task's cause reads it.
    pub reason: String,
}

/// Rejects a waiting call: its task fails with `Tools.ApprovalDenied` (which `Catch` can
/// handle).
#[utoipa::path(post, path = "/v1/approvals/{token}/reject", tag = "approvals",
    params(("token" = String, Path, description = "the task token, URL-encoded")),
    request_body = Reject,
    responses((status = 200, description = "`{}`"), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn reject(
    State(state): State<AppState>,
    t: Tenant,
    Path(token): Path<String>,
    JsonBody(req): JsonBody<Reject>,
) -> Result<Json<Value>, ApiError> {
    let tools = state.tools()?;
    if req.reason.trim().is_empty() {
        return Err(invalid("reason", "must not be empty"));
    }
    pending(tools, &t, &token).await?;
    tools
        .tasks
        .reject_with(&token, &req.reason, &t.engine)
        .await?;
    Ok(Json(json!({})))
}
