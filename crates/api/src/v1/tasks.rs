//! Answers to task tokens, as SendTaskSuccess, SendTaskFailure and SendTaskHeartbeat: how a
//! person approves a `.waitForTaskToken` step. The token goes in the path, URL-encoded.

use axum::Json;
use axum::extract::Path;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::Tenant;
use crate::error::{ApiError, ErrorBody, JsonBody};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskSuccess {
    /// The task's result: any JSON value.
    #[schema(value_type = Object)]
    pub output: Value,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskFailure {
    pub error: Option<String>,
    pub cause: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {}

/// The waiting task succeeds with `output`.
#[utoipa::path(post, path = "/v1/task-tokens/{token}/success", tag = "task tokens",
    params(("token" = String, Path, description = "the task token, URL-encoded")),
    request_body = TaskSuccess,
    responses((status = 200, description = "`{}`"), (status = 400, body = ErrorBody),
        (status = 404, description = "no such token", body = ErrorBody),
        (status = 409, description = "the task is no longer waiting", body = ErrorBody)))]
pub async fn success(
    t: Tenant,
    Path(token): Path<String>,
    JsonBody(req): JsonBody<TaskSuccess>,
) -> Result<Json<Value>, ApiError> {
    t.engine
        .send_task_success(&token, &req.output.to_string())
        .await?;
    Ok(Json(json!({})))
}

/// The waiting task fails with `error` and `cause` (its Retry and Catch apply).
#[utoipa::path(post, path = "/v1/task-tokens/{token}/failure", tag = "task tokens",
    params(("token" = String, Path, description = "the task token, URL-encoded")),
    request_body = TaskFailure,
    responses((status = 200, description = "`{}`"), (status = 404, body = ErrorBody),
        (status = 409, description = "the task is no longer waiting", body = ErrorBody)))]
pub async fn failure(
    t: Tenant,
    Path(token): Path<String>,
    JsonBody(req): JsonBody<TaskFailure>,
) -> Result<Json<Value>, ApiError> {
    t.engine
        .send_task_failure(&token, req.error.as_deref(), req.cause.as_deref())
        .await?;
    Ok(Json(json!({})))
}

/// The task's heartbeat deadline starts again.
#[utoipa::path(post, path = "/v1/task-tokens/{token}/heartbeat", tag = "task tokens",
    params(("token" = String, Path, description = "the task token, URL-encoded")),
    request_body = Heartbeat,
    responses((status = 200, description = "`{}`"), (status = 404, body = ErrorBody)))]
pub async fn heartbeat(
    t: Tenant,
    Path(token): Path<String>,
    JsonBody(heartbeat): JsonBody<Heartbeat>,
) -> Result<Json<Value>, ApiError> {
    let Heartbeat {} = heartbeat;
    t.engine.send_task_heartbeat(&token).await?;
    Ok(Json(json!({})))
}
