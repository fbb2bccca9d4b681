//! The resource dispatch table: which handler runs a Task state's `Resource`. Later work
//! registers the LLM, tools, queue, store and nested-execution integrations here; a resource
//! nobody registered fails its task with `States.TaskFailed` naming the resource.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use agentry_asl::TaskRequest;
use serde_json::Value;

/// A task's failure: AWS's `error` and `cause`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskError {
    pub error: String,
    pub cause: String,
}

impl TaskError {
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            cause: cause.into(),
        }
    }
}

/// What a handler returns: the task's output, or its failure.
pub type TaskResult = Result<Value, TaskError>;

type BoxFuture = Pin<Box<dyn Future<Output = TaskResult> + Send>>;
type Handler = Arc<dyn Fn(TaskRequest) -> BoxFuture + Send + Sync>;

/// Resource ARNs (exact, or a prefix ending in `*`) to handlers. The longest match wins, so a
/// specific ARN can override a family's prefix.
///
/// Handlers are invoked at least once per task attempt: a re-delivery carries the same
/// [`TaskRequest::idempotency_key`], which is how a handler deduplicates. For a
/// `.waitForTaskToken` resource the handler's output is ignored (the task waits for
/// SendTaskSuccess or SendTaskFailure with [`TaskRequest::task_token`]); its failure fails the
/// task.
#[derive(Clone, Default)]
pub struct ResourceTable {
    entries: Vec<(String, Handler)>,
}

impl std::fmt::Debug for ResourceTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|(k, _)| k))
            .finish()
    }
}

impl ResourceTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `handler` for `resource`: an exact ARN, or a prefix followed by `*`.
    pub fn register<F, Fut>(&mut self, resource: impl Into<String>, handler: F) -> &mut Self
    where
        F: Fn(TaskRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = TaskResult> + Send + 'static,
    {
        let resource = resource.into();
        self.entries.retain(|(k, _)| *k != resource);
        self.entries
            .push((resource, Arc::new(move |req| Box::pin(handler(req)))));
        self
    }

    /// The same table with one more handler (builder style).
    pub fn with<F, Fut>(mut self, resource: impl Into<String>, handler: F) -> Self
    where
        F: Fn(TaskRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = TaskResult> + Send + 'static,
    {
        self.register(resource, handler);
        self
    }

    fn find(&self, resource: &str) -> Option<&Handler> {
        self.entries
            .iter()
            .filter(|(k, _)| match k.strip_suffix('*') {
                Some(prefix) => resource.starts_with(prefix),
                None => k == resource,
            })
            .max_by_key(|(k, _)| k.len())
            .map(|(_, h)| h)
    }

    /// Runs the task's handler.
    pub async fn invoke(&self, request: TaskRequest) -> TaskResult {
        match self.find(&request.resource) {
            Some(h) => h(request).await,
            None => Err(TaskError::new(
                agentry_asl::error::names::TASK_FAILED,
                format!(
                    "resource \"{}\" is not supported by this engine",
                    request.resource
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(resource: &str) -> TaskRequest {
        TaskRequest {
            task: 1,
            state: "T".into(),
            resource: resource.into(),
            input: json!({}),
            idempotency_key: "k".into(),
            timeout_seconds: None,
            heartbeat_seconds: None,
            task_token: None,
            credentials: None,
        }
    }

    #[tokio::test]
    async fn longest_match_wins_and_unknown_resources_fail_naming_the_resource() {
        let table = ResourceTable::new()
            .with("arn:aws:states:::lambda:*", |_| async {
                Ok(json!("family"))
            })
            .with("arn:aws:states:::lambda:invoke", |_| async {
                Ok(json!("exact"))
            });
        assert_eq!(
            table
                .invoke(request("arn:aws:states:::lambda:invoke"))
                .await,
            Ok(json!("exact"))
        );
        assert_eq!(
            table.invoke(request("arn:aws:states:::lambda:other")).await,
            Ok(json!("family"))
        );
        let err = table
            .invoke(request("arn:aws:states:::sqs:sendMessage"))
            .await
            .unwrap_err();
        assert_eq!(err.error, "States.TaskFailed");
        assert!(
            err.cause.contains("arn:aws:states:::sqs:sendMessage"),
            "{}",
            err.cause
        );
    }
}
