//! Activities: create, list, describe, delete, and the workers' poll for a task. A Task state
//! whose `Resource` is an activity's ARN waits until a worker takes its task here and answers
//! its token under `/v1/task-tokens`.

use std::time::Duration;

use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::{Tenant, parsed};
use crate::error::{ApiError, ErrorBody, JsonBody};
use crate::time::rfc3339;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateActivity {
    /// 1 to 80 characters, as AWS allows.
    pub name: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Activity {
    pub activity_arn: String,
    pub name: String,
    /// RFC 3339.
    pub creation_date: String,
}

fn activity(d: agentry_engine::ActivityDescription) -> Activity {
    Activity {
        activity_arn: d.activity_arn,
        name: d.name,
        creation_date: rfc3339(d.creation_date),
    }
}

#[derive(Serialize, ToSchema)]
pub struct Activities {
    pub items: Vec<Activity>,
}

/// Creates an activity (again: answers with the same one).
#[utoipa::path(post, path = "/v1/activities", tag = "activities",
    request_body = CreateActivity,
    responses((status = 201, body = Activity), (status = 400, body = ErrorBody)))]
pub async fn create(
    t: Tenant,
    JsonBody(req): JsonBody<CreateActivity>,
) -> Result<(StatusCode, Json<Activity>), ApiError> {
    agentry_engine::tables::check_name(&req.name)
        .map_err(|e| ApiError::bad_request(format!("field \"name\": {e}")))?;
    let d = t.engine.create_activity(&req.name).await?;
    Ok((StatusCode::CREATED, Json(activity(d))))
}

/// The tenant's activities, by name.
#[utoipa::path(get, path = "/v1/activities", tag = "activities",
    responses((status = 200, body = Activities)))]
pub async fn list(t: Tenant) -> Result<Json<Activities>, ApiError> {
    let items = t
        .engine
        .list_activities()
        .await?
        .into_iter()
        .map(activity)
        .collect();
    Ok(Json(Activities { items }))
}

/// Describes an activity.
#[utoipa::path(get, path = "/v1/activities/{name}", tag = "activities",
    params(("name" = String, Path, description = "the activity's name")),
    responses((status = 200, body = Activity), (status = 404, body = ErrorBody)))]
pub async fn describe(t: Tenant, Path(name): Path<String>) -> Result<Json<Activity>, ApiError> {
    let d = t
        .engine
        .describe_activity(&t.engine.activity_arn(&name))
        .await?;
    Ok(Json(activity(d)))
}

/// Deletes an activity (tasks already scheduled on it fail or time out as on AWS).
#[utoipa::path(delete, path = "/v1/activities/{name}", tag = "activities",
    params(("name" = String, Path, description = "the activity's name")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(t: Tenant, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    let arn = t.engine.activity_arn(&name);
    t.engine.describe_activity(&arn).await?;
    t.engine.delete_activity(&arn).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PollTask {
    /// Recorded in the ActivityStarted event.
    pub worker_name: Option<String>,
    /// How long to wait for a task: 0 to 60 seconds (default 60, as GetActivityTask).
    pub wait_seconds: Option<u64>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActivityTask {
    /// Answer it under `/v1/task-tokens/{token}/...`.
    pub task_token: String,
    /// The task's input.
    #[schema(value_type = Object)]
    pub input: Value,
}

/// A worker takes the activity's next task, waiting for one up to `waitSeconds`; 204 when
/// none came. The task is handed to this worker only.
#[utoipa::path(post, path = "/v1/activities/{name}/tasks", tag = "activities",
    params(("name" = String, Path, description = "the activity's name")),
    request_body = PollTask,
    responses((status = 200, body = ActivityTask), (status = 204, description = "no task came"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn poll(
    t: Tenant,
    Path(name): Path<String>,
    JsonBody(req): JsonBody<PollTask>,
) -> Result<Response, ApiError> {
    let wait = match req.wait_seconds {
        None => 60,
        Some(s) if s <= 60 => s,
        Some(s) => {
            return Err(ApiError::bad_request(format!(
                "field \"waitSeconds\": {s} is more than 60"
            )));
        }
    };
    let task = t
        .engine
        .get_activity_task(
            &t.engine.activity_arn(&name),
            req.worker_name.as_deref(),
            Duration::from_secs(wait),
        )
        .await?;
    Ok(match task {
        Some(task) => Json(ActivityTask {
            task_token: task.task_token,
            input: parsed(&task.input),
        })
        .into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}
