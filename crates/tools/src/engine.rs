//! Tools in state machines. [`register`] adds to an engine's [`ResourceTable`]:
//!
//! - `arn:aws:states:::lambda:invoke`: parameters `FunctionName` (a tool name, or a Lambda
//!   function ARN or `NAME:alias` whose function name is a tool's) and `Payload` (the tool's
//!   input); the result is Lambda's envelope (`ExecutedVersion`, `Payload`, `SdkHttpMetadata`,
//!   `SdkResponseMetadata`, `StatusCode`), as Step Functions returns it.
//! - `arn:aws:lambda:REGION:ACCOUNT:function:NAME[:alias]`: the tool named NAME, whose input
//!   is the state's input and whose result is the tool's output.
//!
//! A tool's error fails the task with the error's name (`Tools.Timeout`, `Tools.Forbidden`,
//! a process tool's own `errorType`...) and its message as the cause, so `Retry` and `Catch`
//! apply. A call that needs approval fails with `Tools.ApprovalRequired` unless the resource
//! ends in `.waitForTaskToken`: then the request is recorded with the task token, the task
//! waits, and [`ToolTasks::approve`] runs the tool and answers the token with its result
//! (or its error), while [`ToolTasks::reject`] fails the task with `Tools.ApprovalDenied`.
//!
//! An execution calls tools as the tenant bound to its account ([`ToolTasks::bind_account`]:
//! the gateway binds every caller's), so it reaches that tenant's own tools and the global
//! ones; an unbound account calls as the tenant the resources were registered for. Approval
//! requests record the waiting execution, and so its account.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use agentry_asl::TaskRequest;
use agentry_engine::{ResourceTable, TaskError, TaskResult};
use async_trait::async_trait;
use serde_json::{Value, json};

use crate::approval::PendingApproval;
use crate::error::{Error, Result};
use crate::registry::{Call, Outcome, Registry};

pub const LAMBDA_INVOKE: &str = "arn:aws:states:::lambda:invoke";
pub const LAMBDA_FUNCTIONS: &str = "arn:aws:lambda:*";

/// Where task tokens are answered: the engine (SendTaskSuccess / SendTaskFailure).
#[async_trait]
pub trait TaskTokens: Send + Sync {
    async fn succeed(&self, token: &str, output: &Value) -> std::result::Result<(), String>;
    async fn fail(&self, token: &str, error: &str, cause: &str) -> std::result::Result<(), String>;

    /// The same sink answering the tokens of `account`'s executions, when it is scoped to
    /// accounts (`None`: this sink answers every token).
    fn for_account(&self, _account: &str) -> Option<Arc<dyn TaskTokens>> {
        None
    }
}

#[async_trait]
impl TaskTokens for agentry_engine::Engine {
    async fn succeed(&self, token: &str, output: &Value) -> std::result::Result<(), String> {
        self.send_task_success(token, &output.to_string())
            .await
            .map_err(|e| e.to_string())
    }

    async fn fail(&self, token: &str, error: &str, cause: &str) -> std::result::Result<(), String> {
        self.send_task_failure(token, Some(error), Some(cause))
            .await
            .map_err(|e| e.to_string())
    }

    fn for_account(&self, account: &str) -> Option<Arc<dyn TaskTokens>> {
        self.for_account(account)
            .ok()
            .map(|e| Arc::new(e) as Arc<dyn TaskTokens>)
    }
}

/// The account in an execution ARN (`arn:aws:states:REGION:ACCOUNT:execution:MACHINE:NAME`),
/// or in the idempotency key of one of its tasks (the ARN followed by `:STATE:ATTEMPT`).
pub fn arn_account(arn: &str) -> Option<&str> {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), _, Some("states"), _, Some(account)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    (!account.is_empty()).then_some(account)
}

/// The execution ARN in a task's idempotency key (`EXECUTION_ARN:ENTERED:ATTEMPT`).
fn key_execution(key: &str) -> &str {
    let mut it = key.rsplitn(3, ':');
    match (it.next(), it.next(), it.next()) {
        (Some(_), Some(_), Some(arn)) => arn,
        _ => key,
    }
}

/// The tool resources of one engine. Connect the engine once it is open (the table is built
/// before it), so results of token-waiting calls can be delivered.
pub struct ToolTasks {
    registry: Arc<Registry>,
    tokens: OnceLock<Arc<dyn TaskTokens>>,
    tenant: String,
    /// The tenant whose tools an account's executions call (others call as `tenant`).
    accounts: RwLock<HashMap<String, String>>,
}

/// Registers the tool resources on `table`, calling tools as the default tenant.
pub fn register(table: &mut ResourceTable, registry: Arc<Registry>) -> Arc<ToolTasks> {
    register_for(table, registry, crate::DEFAULT_TENANT)
}

/// Registers the tool resources on `table`, calling tools as `tenant`.
pub fn register_for(
    table: &mut ResourceTable,
    registry: Arc<Registry>,
    tenant: &str,
) -> Arc<ToolTasks> {
    let tasks = Arc::new(ToolTasks {
        registry,
        tokens: OnceLock::new(),
        tenant: tenant.to_owned(),
        accounts: RwLock::default(),
    });
    let t = tasks.clone();
    table.register(LAMBDA_INVOKE, move |req| {
        let t = t.clone();
        async move { t.lambda_invoke(req).await }
    });
    let t = tasks.clone();
    table.register(LAMBDA_FUNCTIONS, move |req| {
        let t = t.clone();
        async move { t.function_arn(req).await }
    });
    tasks
}

/// The function name in `FunctionName`: a plain name, `NAME:alias`, or
/// `arn:aws:lambda:REGION:ACCOUNT:function:NAME[:alias]`.
pub fn function_name(s: &str) -> Option<&str> {
    let name = if let Some(rest) = s.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.splitn(7, ':').collect();
        // aws:lambda:REGION:ACCOUNT:function:NAME[:alias]
        if parts.len() < 6 || parts[1] != "lambda" || parts[4] != "function" {
            return None;
        }
        parts[5]
    } else {
        s.split(':').next().unwrap_or(s)
    };
    (!name.is_empty()).then_some(name)
}

fn task_error(e: &Error) -> TaskError {
    match e {
        // As Step Functions reports a function's own error: its type, and the error document
        // as the cause.
        Error::Function {
            error_type,
            message,
            ..
        } => TaskError::new(
            error_type.clone(),
            json!({"errorType": error_type, "errorMessage": message}).to_string(),
        ),
        other => TaskError::new(other.name(), other.to_string()),
    }
}

/// Lambda's Invoke result as `arn:aws:states:::lambda:invoke` returns it.
pub fn envelope(payload: Value, request_id: &str) -> Value {
    json!({
        "ExecutedVersion": "$LATEST",
        "Payload": payload,
        "SdkHttpMetadata": {
            "AllHttpHeaders": {
                "X-Amz-Executed-Version": ["$LATEST"],
                "x-amzn-Remapped-Content-Length": ["0"],
                "Connection": ["keep-alive"],
                "x-amzn-RequestId": [request_id],
                "Content-Type": ["application/json"],
            },
            "HttpHeaders": {
                "Connection": "keep-alive",
                "Content-Type": "application/json",
                "X-Amz-Executed-Version": "$LATEST",
                "x-amzn-Remapped-Content-Length": "0",
                "x-amzn-RequestId": request_id,
            },
            "HttpStatusCode": 200
        },
        "SdkResponseMetadata": {"RequestId": request_id},
        "StatusCode": 200
    })
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl ToolTasks {
    /// Where answers to task tokens go (normally the engine the table was given to).
    pub fn connect(&self, tokens: Arc<dyn TaskTokens>) {
        let _ = self.tokens.set(tokens);
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Executions in `account` call tools as `tenant`: its own tools and the global ones, its
    /// metrics, its approvals. Remembered in the registry's memory, so executions resumed
    /// after a restart still call as their tenant.
    pub async fn bind_account(&self, account: &str, tenant: &str) -> Result<()> {
        if self
            .accounts
            .read()
            .unwrap()
            .get(account)
            .map(String::as_str)
            == Some(tenant)
        {
            return Ok(());
        }
        self.registry
            .memory()
            .put(crate::memory::ACCOUNTS, account, json!(tenant))
            .await?;
        self.accounts
            .write()
            .unwrap()
            .insert(account.to_owned(), tenant.to_owned());
        Ok(())
    }

    /// The tenant an execution's tool calls run as: its account's, or the tenant these
    /// resources were registered for when the account is bound to none.
    pub async fn tenant_of(&self, execution: &str) -> String {
        let Some(account) = arn_account(execution) else {
            return self.tenant.clone();
        };
        if let Some(t) = self.accounts.read().unwrap().get(account) {
            return t.clone();
        }
        match self
            .registry
            .memory()
            .get(crate::memory::ACCOUNTS, account)
            .await
        {
            Ok(Some(Value::String(t))) => {
                self.accounts
                    .write()
                    .unwrap()
                    .insert(account.to_owned(), t.clone());
                t
            }
            _ => self.tenant.clone(),
        }
    }

    async fn lambda_invoke(&self, req: TaskRequest) -> TaskResult {
        let Some(fname) = req.input.get("FunctionName").and_then(Value::as_str) else {
            return Err(TaskError::new(
                "States.Runtime",
                "lambda:invoke needs a \"FunctionName\" parameter (a string)",
            ));
        };
        let Some(name) = function_name(fname) else {
            return Err(TaskError::new(
                "Tools.NotFound",
                format!("\"{fname}\" is not a function name or Lambda function ARN"),
            ));
        };
        let payload = req.input.get("Payload").cloned().unwrap_or(json!({}));
        self.run(name.to_owned(), payload, req, true).await
    }

    async fn function_arn(&self, req: TaskRequest) -> TaskResult {
        let resource = req
            .resource
            .strip_suffix(".waitForTaskToken")
            .unwrap_or(&req.resource);
        let Some(name) = function_name(resource) else {
            return Err(TaskError::new(
                agentry_asl::error::names::TASK_FAILED,
                format!("resource \"{}\" is not a Lambda function ARN", req.resource),
            ));
        };
        let payload = req.input.clone();
        self.run(name.to_owned(), payload, req, false).await
    }

    async fn run(&self, tool: String, payload: Value, req: TaskRequest, wrap: bool) -> TaskResult {
        let execution = key_execution(&req.idempotency_key).to_owned();
        let call = Call::new(tool, payload)
            .tenant(self.tenant_of(&execution).await)
            .key(req.idempotency_key.clone());
        let outcome = self.registry.call(call).await.map_err(|e| task_error(&e))?;
        let shape = |v: Value| {
            if wrap {
                envelope(v, &req.idempotency_key)
            } else {
                v
            }
        };
        match (outcome, req.task_token) {
            (Outcome::Done(v), None) => Ok(shape(v)),
            (Outcome::Done(v), Some(token)) => {
                let sink = self.sink_for(&execution).map_err(|e| task_error(&e))?;
                let out = shape(v);
                tokio::spawn(async move {
                    if let Err(e) = sink.succeed(&token, &out).await {
                        tracing::warn!(error = %e, "delivering a tool result to its task token");
                    }
                });
                Ok(Value::Null)
            }
            (Outcome::NeedsApproval(r), None) => Err(TaskError::new(
                "Tools.ApprovalRequired",
                format!(
                    "tool \"{}\" requires approval ({}); call it with a .waitForTaskToken resource to wait for one",
                    r.tool, r.reason
                ),
            )),
            (Outcome::NeedsApproval(request), Some(token)) => {
                let pending = PendingApproval {
                    token,
                    request,
                    envelope: wrap,
                    requested_at_ms: now_ms(),
                    execution,
                };
                self.registry
                    .record_approval(&pending)
                    .await
                    .map_err(|e| task_error(&e))?;
                Ok(Value::Null)
            }
        }
    }

    fn sink(&self) -> Result<Arc<dyn TaskTokens>> {
        self.tokens.get().cloned().ok_or_else(|| {
            Error::Unavailable("tool tasks are not connected to an engine's task tokens".into())
        })
    }

    /// The sink answering the tokens of `execution`'s tasks.
    fn sink_for(&self, execution: &str) -> Result<Arc<dyn TaskTokens>> {
        let sink = self.sink()?;
        Ok(arn_account(execution)
            .and_then(|a| sink.for_account(a))
            .unwrap_or(sink))
    }

    async fn pending(&self, token: &str) -> Result<PendingApproval> {
        self.registry
            .pending_approval(token)
            .await?
            .ok_or_else(|| Error::NotFound(format!("approval request for task token {token}")))
    }

    /// Approves the call waiting on `token`: runs the tool and answers the token with its
    /// result (SendTaskSuccess) or its error (SendTaskFailure). Returns the tool's outcome.
    pub async fn approve(&self, token: &str) -> Result<std::result::Result<Value, Error>> {
        let pending = self.pending(token).await?;
        let sink = self.sink_for(&pending.execution)?;
        self.approve_pending(pending, sink.as_ref()).await
    }

    /// As [`ToolTasks::approve`], answering the token through `sink` (an engine handle scoped
    /// to the caller's account: a token of another account's execution is not known to it).
    pub async fn approve_with(
        &self,
        token: &str,
        sink: &dyn TaskTokens,
    ) -> Result<std::result::Result<Value, Error>> {
        let pending = self.pending(token).await?;
        self.approve_pending(pending, sink).await
    }

    async fn approve_pending(
        &self,
        pending: PendingApproval,
        sink: &dyn TaskTokens,
    ) -> Result<std::result::Result<Value, Error>> {
        let token = pending.token.as_str();
        let r = &pending.request;
        let mut call = Call::new(r.tool.clone(), r.input.clone())
            .tenant(r.tenant.clone())
            .approved();
        call.idempotency_key = r.idempotency_key.clone();
        let result = self.registry.invoke(call).await;
        let answer = match &result {
            Ok(v) => {
                let out = if pending.envelope {
                    envelope(v.clone(), r.idempotency_key.as_deref().unwrap_or(""))
                } else {
                    v.clone()
                };
                sink.succeed(token, &out).await
            }
            Err(e) => {
                let te = task_error(e);
                sink.fail(token, &te.error, &te.cause).await
            }
        };
        answer.map_err(Error::Unavailable)?;
        self.registry.forget_approval(token).await?;
        Ok(result)
    }

    /// Refuses the call waiting on `token`: its task fails with `Tools.ApprovalDenied`.
    pub async fn reject(&self, token: &str, reason: &str) -> Result<()> {
        let pending = self.pending(token).await?;
        let sink = self.sink_for(&pending.execution)?;
        self.reject_pending(pending, reason, sink.as_ref()).await
    }

    /// As [`ToolTasks::reject`], answering the token through `sink`.
    pub async fn reject_with(
        &self,
        token: &str,
        reason: &str,
        sink: &dyn TaskTokens,
    ) -> Result<()> {
        let pending = self.pending(token).await?;
        self.reject_pending(pending, reason, sink).await
    }

    async fn reject_pending(
        &self,
        pending: PendingApproval,
        reason: &str,
        sink: &dyn TaskTokens,
    ) -> Result<()> {
        let token = pending.token.as_str();
        let e = Error::ApprovalDenied {
            tool: pending.request.tool.clone(),
            reason: reason.to_owned(),
        };
        sink.fail(token, e.name(), &e.to_string())
            .await
            .map_err(Error::Unavailable)?;
        self.registry.forget_approval(token).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_from_names_aliases_and_arns() {
        assert_eq!(function_name("web_fetch"), Some("web_fetch"));
        assert_eq!(function_name("web_fetch:prod"), Some("web_fetch"));
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:123456789012:function:web_fetch"),
            Some("web_fetch")
        );
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:123456789012:function:web_fetch:live"),
            Some("web_fetch")
        );
        assert_eq!(function_name("arn:aws:s3:::bucket"), None);
    }

    #[test]
    fn executions_and_accounts_from_task_keys() {
        let key = "arn:aws:states:us-east-1:123456789012:execution:m:e1:7:0";
        let arn = key_execution(key);
        assert_eq!(arn, "arn:aws:states:us-east-1:123456789012:execution:m:e1");
        assert_eq!(arn_account(arn), Some("123456789012"));
        assert_eq!(arn_account("k"), None);
        assert_eq!(arn_account("arn:aws:lambda:us-east-1:1:function:f"), None);
    }
}
