//! State machines: create, list, describe, update, publish versions, and the graph.

use agentry_asl::validate::MachineType;
use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::{Query, Tenant, check_limit, definition_text, parsed};
use crate::error::{ApiError, ErrorBody, JsonBody};
use crate::time::rfc3339;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateMachine {
    /// 1 to 80 characters, as AWS allows.
    pub name: String,
    /// The Amazon States Language definition, as a JSON object or JSON text.
    #[schema(value_type = Object)]
    pub definition: Value,
    /// `STANDARD` (default) or `EXPRESS`.
    #[serde(rename = "type")]
    pub machine_type: Option<String>,
    /// Publish version 1 at once.
    #[serde(default)]
    pub publish: bool,
    pub version_description: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Machine {
    pub state_machine_arn: String,
    pub name: String,
    #[serde(rename = "type")]
    pub machine_type: String,
    /// The definition as a JSON object.
    #[schema(value_type = Object)]
    pub definition: Value,
    pub revision_id: String,
    /// RFC 3339.
    pub creation_date: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_machine_version_arn: Option<String>,
}

fn machine(d: agentry_engine::StateMachineDescription) -> Machine {
    Machine {
        state_machine_arn: d.state_machine_arn,
        name: d.name,
        machine_type: d.kind,
        definition: parsed(&d.definition),
        revision_id: d.revision_id,
        creation_date: rfc3339(d.creation_date),
        version_description: d.version_description,
        state_machine_version_arn: None,
    }
}

pub(crate) fn machine_type(t: Option<&str>) -> Result<MachineType, ApiError> {
    let t = t.unwrap_or("STANDARD");
    MachineType::parse(t).ok_or_else(|| {
        ApiError::bad_request(format!(
            "field \"type\": expected STANDARD or EXPRESS, got \"{t}\""
        ))
    })
}

/// Creates a state machine (again with the same definition: answers with it).
#[utoipa::path(post, path = "/v1/state-machines", tag = "state machines",
    request_body = CreateMachine,
    responses((status = 201, body = Machine), (status = 400, body = ErrorBody),
        (status = 409, description = "the name is taken by another definition", body = ErrorBody)))]
pub async fn create(
    t: Tenant,
    JsonBody(req): JsonBody<CreateMachine>,
) -> Result<(StatusCode, Json<Machine>), ApiError> {
    let ty = machine_type(req.machine_type.as_deref())?;
    let definition = definition_text(&req.definition)?;
    agentry_engine::tables::check_name(&req.name)
        .map_err(|e| ApiError::bad_request(format!("field \"name\": {e}")))?;
    let arn = t
        .engine
        .create_state_machine_of_type(&req.name, &definition, ty)
        .await?;
    let mut out = machine(t.engine.describe_state_machine(&arn).await?);
    if req.publish {
        let v = t
            .engine
            .publish_state_machine_version(&arn, req.version_description.as_deref())
            .await?;
        out.state_machine_version_arn = Some(v.state_machine_version_arn);
    }
    Ok((StatusCode::CREATED, Json(out)))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// 1 to 1000 (default 100).
    pub limit: Option<u32>,
    /// From the previous page.
    pub next_token: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MachineSummary {
    pub state_machine_arn: String,
    pub name: String,
    #[serde(rename = "type")]
    pub machine_type: String,
    pub creation_date: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MachineList {
    pub state_machines: Vec<MachineSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// Lists the tenant's state machines by name.
#[utoipa::path(get, path = "/v1/state-machines", tag = "state machines", params(ListParams),
    responses((status = 200, body = MachineList), (status = 400, body = ErrorBody)))]
pub async fn list(t: Tenant, Query(q): Query<ListParams>) -> Result<Json<MachineList>, ApiError> {
    let limit = check_limit(q.limit)?.unwrap_or(100) as usize;
    let mut all = t.engine.list_state_machines().await?;
    all.sort_by(|a, b| a.name.cmp(&b.name));
    let rest: Vec<_> = match &q.next_token {
        Some(after) => all.into_iter().filter(|m| &m.name > after).collect(),
        None => all,
    };
    let more = rest.len() > limit;
    let page: Vec<MachineSummary> = rest
        .into_iter()
        .take(limit)
        .map(|d| MachineSummary {
            state_machine_arn: d.state_machine_arn,
            name: d.name,
            machine_type: d.kind,
            creation_date: rfc3339(d.creation_date),
        })
        .collect();
    let next_token = if more {
        page.last().map(|m| m.name.clone())
    } else {
        None
    };
    Ok(Json(MachineList {
        state_machines: page,
        next_token,
    }))
}

/// Describes a state machine (`NAME:VERSION` describes a published version).
#[utoipa::path(get, path = "/v1/state-machines/{name}", tag = "state machines",
    params(("name" = String, Path, description = "the state machine's name, or NAME:VERSION")),
    responses((status = 200, body = Machine), (status = 404, body = ErrorBody)))]
pub async fn describe(t: Tenant, Path(name): Path<String>) -> Result<Json<Machine>, ApiError> {
    let d = t
        .engine
        .describe_state_machine(&t.machine_arn(&name))
        .await?;
    Ok(Json(machine(d)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMachine {
    /// The new definition, as a JSON object or JSON text.
    #[schema(value_type = Object)]
    pub definition: Value,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Updated {
    pub revision_id: String,
    pub update_date: String,
}

async fn do_update(t: Tenant, name: String, req: UpdateMachine) -> Result<Json<Updated>, ApiError> {
    let definition = definition_text(&req.definition)?;
    let revision_id = t
        .engine
        .update_state_machine(&t.machine_arn(&name), &definition)
        .await?;
    Ok(Json(Updated {
        revision_id,
        update_date: rfc3339(crate::time::now_ms()),
    }))
}

/// Replaces a state machine's definition with a new revision.
#[utoipa::path(put, path = "/v1/state-machines/{name}", tag = "state machines",
    params(("name" = String, Path)), request_body = UpdateMachine,
    responses((status = 200, body = Updated), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update(
    t: Tenant,
    Path(name): Path<String>,
    JsonBody(req): JsonBody<UpdateMachine>,
) -> Result<Json<Updated>, ApiError> {
    do_update(t, name, req).await
}

/// The same as PUT: the definition is the one field that can change.
#[utoipa::path(patch, path = "/v1/state-machines/{name}", tag = "state machines",
    params(("name" = String, Path)), request_body = UpdateMachine,
    responses((status = 200, body = Updated), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn patch(
    t: Tenant,
    Path(name): Path<String>,
    JsonBody(req): JsonBody<UpdateMachine>,
) -> Result<Json<Updated>, ApiError> {
    do_update(t, name, req).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Publish {
    pub description: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Published {
    pub state_machine_version_arn: String,
    pub creation_date: String,
}

/// Deletes a state machine: it starts no more executions and is gone, with its versions,
/// once its running executions have ended (`NAME:VERSION` deletes a version).
#[utoipa::path(delete, path = "/v1/state-machines/{name}", tag = "state machines",
    params(("name" = String, Path, description = "the state machine's name, or NAME:VERSION")),
    responses((status = 204, description = "deleted, or deleting while executions run"),
        (status = 404, body = ErrorBody), (status = 409, description = "a version an alias routes to", body = ErrorBody)))]
pub async fn delete(t: Tenant, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    let arn = t.machine_arn(&name);
    // AWS answers a delete of nothing with success; this API says it was not there.
    t.engine.describe_state_machine(&arn).await?;
    t.engine.delete_state_machine(&arn).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Publishes the current revision as the next version.
#[utoipa::path(post, path = "/v1/state-machines/{name}/versions", tag = "state machines",
    params(("name" = String, Path)), request_body = Publish,
    responses((status = 201, body = Published), (status = 404, body = ErrorBody)))]
pub async fn publish(
    t: Tenant,
    Path(name): Path<String>,
    JsonBody(req): JsonBody<Publish>,
) -> Result<(StatusCode, Json<Published>), ApiError> {
    let v = t
        .engine
        .publish_state_machine_version(&t.machine_arn(&name), req.description.as_deref())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(Published {
            state_machine_version_arn: v.state_machine_version_arn,
            creation_date: rfc3339(v.creation_date),
        }),
    ))
}

/// The definition as nodes and edges for drawing, with Map and Parallel contents nested.
#[utoipa::path(get, path = "/v1/state-machines/{name}/graph", tag = "state machines",
    params(("name" = String, Path)),
    responses((status = 200, body = super::graph::Graph), (status = 404, body = ErrorBody)))]
pub async fn graph(
    t: Tenant,
    Path(name): Path<String>,
) -> Result<Json<super::graph::Graph>, ApiError> {
    let d = t
        .engine
        .describe_state_machine(&t.machine_arn(&name))
        .await?;
    let def: Value = serde_json::from_str(&d.definition)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Corrupt", e.to_string()))?;
    Ok(Json(super::graph::graph(&def)))
}
