//! Aliases of a state machine: a name routing starts to one or two published versions by
//! weight. Starting `NAME:ALIAS` under `/v1/state-machines/{name}/executions` draws a version.

use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Tenant;
use crate::error::{ApiError, ErrorBody, JsonBody};
use crate::time::rfc3339;

#[derive(Deserialize, Serialize, ToSchema, Clone)]
#[serde(deny_unknown_fields)]
pub struct RouteBody {
    /// A published version number of the machine.
    pub version: u64,
    /// 0 to 100; the routes' weights sum to 100.
    pub weight: u32,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAlias {
    /// 1 to 80 characters; not a number (numbers name versions).
    pub name: String,
    pub description: Option<String>,
    /// One or two versions with weights summing to 100.
    pub routing: Vec<RouteBody>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAlias {
    pub description: Option<String>,
    pub routing: Option<Vec<RouteBody>>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Alias {
    pub state_machine_alias_arn: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub routing: Vec<RouteBody>,
    /// RFC 3339.
    pub creation_date: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_date: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Aliases {
    pub items: Vec<Alias>,
}

fn routes(t: &Tenant, machine: &str, routing: &[RouteBody]) -> Vec<agentry_engine::Route> {
    routing
        .iter()
        .map(|r| agentry_engine::Route {
            state_machine_version_arn: format!("{}:{}", t.machine_arn(machine), r.version),
            weight: r.weight,
        })
        .collect()
}

fn alias(d: agentry_engine::AliasDescription) -> Alias {
    let routing = d
        .routing_configuration
        .iter()
        .map(|r| RouteBody {
            version: r
                .state_machine_version_arn
                .rsplit(':')
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_default(),
            weight: r.weight,
        })
        .collect();
    Alias {
        state_machine_alias_arn: d.state_machine_alias_arn,
        name: d.name,
        description: d.description,
        routing,
        creation_date: rfc3339(d.creation_date),
        update_date: d.update_date.map(rfc3339),
    }
}

/// Creates an alias of the machine (again with the same settings: answers with it).
#[utoipa::path(post, path = "/v1/state-machines/{name}/aliases", tag = "state machines",
    params(("name" = String, Path, description = "the state machine's name")),
    request_body = CreateAlias,
    responses((status = 201, body = Alias), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create(
    t: Tenant,
    Path(name): Path<String>,
    JsonBody(req): JsonBody<CreateAlias>,
) -> Result<(StatusCode, Json<Alias>), ApiError> {
    if req.routing.is_empty() {
        return Err(ApiError::bad_request(
            "field \"routing\": one or two versions with weights summing to 100",
        ));
    }
    // The machine must exist (in this tenant) before its versions are looked at.
    t.engine
        .describe_state_machine(&t.machine_arn(&name))
        .await?;
    let (arn, _) = t
        .engine
        .create_state_machine_alias(
            &req.name,
            req.description.as_deref(),
            &routes(&t, &name, &req.routing),
        )
        .await?;
    let d = t.engine.describe_state_machine_alias(&arn).await?;
    Ok((StatusCode::CREATED, Json(alias(d))))
}

/// The machine's aliases, by name.
#[utoipa::path(get, path = "/v1/state-machines/{name}/aliases", tag = "state machines",
    params(("name" = String, Path, description = "the state machine's name")),
    responses((status = 200, body = Aliases), (status = 404, body = ErrorBody)))]
pub async fn list(t: Tenant, Path(name): Path<String>) -> Result<Json<Aliases>, ApiError> {
    let items = t
        .engine
        .list_state_machine_aliases(&t.machine_arn(&name))
        .await?
        .into_iter()
        .map(alias)
        .collect();
    Ok(Json(Aliases { items }))
}

fn alias_arn(t: &Tenant, name: &str, alias: &str) -> String {
    format!("{}:{alias}", t.machine_arn(name))
}

/// Describes an alias.
#[utoipa::path(get, path = "/v1/state-machines/{name}/aliases/{alias}", tag = "state machines",
    params(("name" = String, Path, description = "the state machine's name"),
        ("alias" = String, Path, description = "the alias's name")),
    responses((status = 200, body = Alias), (status = 404, body = ErrorBody)))]
pub async fn describe(
    t: Tenant,
    Path((name, a)): Path<(String, String)>,
) -> Result<Json<Alias>, ApiError> {
    let d = t
        .engine
        .describe_state_machine_alias(&alias_arn(&t, &name, &a))
        .await?;
    Ok(Json(alias(d)))
}

/// Changes an alias's description or routing.
#[utoipa::path(put, path = "/v1/state-machines/{name}/aliases/{alias}", tag = "state machines",
    params(("name" = String, Path, description = "the state machine's name"),
        ("alias" = String, Path, description = "the alias's name")),
    request_body = UpdateAlias,
    responses((status = 200, body = Alias), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn update(
    t: Tenant,
    Path((name, a)): Path<(String, String)>,
    JsonBody(req): JsonBody<UpdateAlias>,
) -> Result<Json<Alias>, ApiError> {
    let arn = alias_arn(&t, &name, &a);
    let routing = req.routing.as_ref().map(|r| routes(&t, &name, r));
    t.engine
        .update_state_machine_alias(&arn, req.description.as_deref(), routing.as_deref())
        .await?;
    Ok(Json(alias(
        t.engine.describe_state_machine_alias(&arn).await?,
    )))
}

/// Deletes an alias (executions started through it run on; its versions stay).
#[utoipa::path(delete, path = "/v1/state-machines/{name}/aliases/{alias}", tag = "state machines",
    params(("name" = String, Path, description = "the state machine's name"),
        ("alias" = String, Path, description = "the alias's name")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(
    t: Tenant,
    Path((name, a)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    t.engine
        .delete_state_machine_alias(&alias_arn(&t, &name, &a))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
