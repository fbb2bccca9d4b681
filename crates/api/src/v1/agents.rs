//! Agents of the caller's tenant (a state machine plus its configuration, versioned: saving a
//! changed configuration makes a new version) and the caller's own profile, which enriches
//! every message they send.

use agentry_sessions::{Agent, AgentConfig};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::{Query, Tenant};
use crate::AppState;
use crate::error::{ApiError, ErrorBody, JsonBody};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAgent {
    /// 1 to 64 letters, digits or `_ . @ -`.
    pub name: String,
    /// `state_machine` (name or ARN in the tenant's account), `routes`, `tools`, `budgets`,
    /// `prompts`, `turn_policy` (`reject`, `queue`, `interrupt`), `history_turns`.
    #[schema(value_type = Object)]
    pub config: Value,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AgentParams {
    /// A version; the latest when left out.
    pub version: Option<u64>,
}

fn agent_json(a: Agent) -> Value {
    json!({"name": a.name, "version": a.version, "config": a.config, "created_ms": a.created_ms})
}

/// Saves an agent: version 1, or a new version when the configuration changed (the same
/// configuration again returns the current version).
#[utoipa::path(post, path = "/v1/agents", tag = "agents", request_body = CreateAgent,
    responses((status = 201, description = "the agent at its current version"),
        (status = 400, body = ErrorBody)))]
pub async fn create(
    t: Tenant,
    State(state): State<AppState>,
    JsonBody(req): JsonBody<CreateAgent>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let config: AgentConfig = serde_json::from_value(req.config)
        .map_err(|e| ApiError::bad_request(format!("field \"config\": {e}")))?;
    if config.state_machine.is_empty() {
        return Err(ApiError::bad_request(
            "field \"config.state_machine\": name the state machine a turn runs",
        ));
    }
    // The state machine must exist in the tenant's account: a typo is caught here, not at
    // the first message.
    let arn = if config.state_machine.starts_with("arn:") {
        config.state_machine.clone()
    } else {
        t.machine_arn(&config.state_machine)
    };
    t.engine.describe_state_machine(&arn).await?;
    let agent = state
        .sessions()?
        .put_agent(&t.principal.tenant, &req.name, config)
        .await?;
    Ok((StatusCode::CREATED, Json(agent_json(agent))))
}

/// The tenant's agents, each at its latest version.
#[utoipa::path(get, path = "/v1/agents", tag = "agents",
    responses((status = 200, description = "`{\"agents\": [...]}`")))]
pub async fn list(t: Tenant, State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let agents = state.sessions()?.list_agents(&t.principal.tenant).await?;
    Ok(Json(
        json!({"agents": agents.into_iter().map(agent_json).collect::<Vec<_>>()}),
    ))
}

/// One agent, at its latest version or the one asked for.
#[utoipa::path(get, path = "/v1/agents/{name}", tag = "agents",
    params(("name" = String, Path, description = "the agent's name"), AgentParams),
    responses((status = 200, description = "the agent"), (status = 404, body = ErrorBody)))]
pub async fn describe(
    t: Tenant,
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<AgentParams>,
) -> Result<Json<Value>, ApiError> {
    let agent = state
        .sessions()?
        .agent(&t.principal.tenant, &name, q.version)
        .await?;
    Ok(Json(agent_json(agent)))
}

/// Replaces the caller's profile (industry, preferences: any JSON object).
#[utoipa::path(put, path = "/v1/users/me/profile", tag = "agents",
    request_body(content = Object, description = "the profile"),
    responses((status = 200, description = "the profile as stored"), (status = 400, body = ErrorBody)))]
pub async fn put_profile(
    t: Tenant,
    State(state): State<AppState>,
    JsonBody(profile): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    if !profile.is_object() {
        return Err(ApiError::bad_request("profile: expected a JSON object"));
    }
    let sessions = state.sessions()?;
    let p = &t.principal;
    sessions.put_profile(&p.tenant, &p.user, profile).await?;
    Ok(Json(sessions.profile(&p.tenant, &p.user).await?))
}

/// The caller's profile (`{}` until one is saved).
#[utoipa::path(get, path = "/v1/users/me/profile", tag = "agents",
    responses((status = 200, description = "the profile")))]
pub async fn get_profile(
    t: Tenant,
    State(state): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    let p = &t.principal;
    Ok(Json(state.sessions()?.profile(&p.tenant, &p.user).await?))
}
