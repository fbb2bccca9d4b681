//! The JSON API under `/v1`, every call scoped to the caller's tenant through the engine's
//! handle on the tenant's account: another tenant's names, ARNs and task tokens answer exactly
//! as ones that do not exist.
//!
//! - `machines`: state machines, their versions and graphs
//! - `executions`: starting, listing, describing, history, stopping, redriving
//! - `events`: an execution's history live, over Server-Sent Events and WebSocket
//! - `tasks`: answers to task tokens
//! - `graph`: a definition as nodes and edges for drawing
//! - `agents`: agents (versioned state machine plus configuration) and the caller's profile
//! - `sessions`: the caller's sessions with agents, their turns live, and the knowledge base
//! - `aliases`: a machine's aliases, routing starts to published versions by weight
//! - `activities`: activities and their workers' polls for tasks
//! - `tools`: the tenant's tools (its own HTTP tools and the global ones), their metrics, and
//!   the calls waiting for approval

pub mod activities;
pub mod agents;
pub mod aliases;
pub mod events;
pub mod executions;
pub mod graph;
pub mod machines;
pub mod sessions;
pub mod tasks;
pub mod tools;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiError;
use crate::tenant::Principal;

/// Every `/v1` route; each is documented in the OpenAPI document by construction.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(crate::validate))
        .routes(routes!(crate::test_state))
        .routes(routes!(crate::run_sync))
        .routes(routes!(machines::create, machines::list))
        .routes(routes!(
            machines::describe,
            machines::update,
            machines::patch,
            machines::delete
        ))
        .routes(routes!(machines::publish))
        .routes(routes!(machines::graph))
        .routes(routes!(executions::start))
        .routes(routes!(executions::list))
        .routes(routes!(executions::describe))
        .routes(routes!(executions::history))
        .routes(routes!(executions::stop))
        .routes(routes!(executions::redrive))
        .routes(routes!(aliases::create, aliases::list))
        .routes(routes!(aliases::describe, aliases::update, aliases::delete))
        .routes(routes!(activities::create, activities::list))
        .routes(routes!(activities::describe, activities::delete))
        .routes(routes!(activities::poll))
        .routes(routes!(events::sse))
        .routes(routes!(events::websocket))
        .routes(routes!(tasks::success))
        .routes(routes!(tasks::failure))
        .routes(routes!(tasks::heartbeat))
        .routes(routes!(agents::create, agents::list))
        .routes(routes!(agents::describe))
        .routes(routes!(agents::put_profile, agents::get_profile))
        .routes(routes!(sessions::create, sessions::list))
        .routes(routes!(sessions::describe))
        .routes(routes!(sessions::send))
        .routes(routes!(sessions::events))
        .routes(routes!(sessions::knowledge))
        .routes(routes!(tools::list, tools::create))
        .routes(routes!(tools::describe, tools::delete))
        .routes(routes!(tools::metrics))
        .routes(routes!(tools::approvals))
        .routes(routes!(tools::approve))
        .routes(routes!(tools::reject))
}

/// The caller and the engine's handle on its account.
pub struct Tenant {
    pub principal: Principal,
    pub engine: agentry_engine::Engine,
}

impl Tenant {
    /// The ARN of the tenant's state machine `name` (`NAME:VERSION` names a version).
    pub fn machine_arn(&self, name: &str) -> String {
        self.engine.state_machine_arn(name)
    }
}

impl FromRequestParts<AppState> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let principal = parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("request was not authenticated"))?;
        let engine = state.engine_for(&principal)?;
        Ok(Tenant { principal, engine })
    }
}

/// Query parameters, with errors naming the parameter.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parse_query(parts.uri.query().unwrap_or("")).map(Query)
    }
}

fn parse_query<T: DeserializeOwned>(q: &str) -> Result<T, ApiError> {
    axum::extract::Query::<T>::try_from_uri(
        &format!("/?{q}")
            .parse()
            .map_err(|_| ApiError::bad_request("query string is malformed"))?,
    )
    .map(|axum::extract::Query(v)| v)
    .map_err(|e| {
        let text = e.body_text();
        let text = text
            .strip_prefix("Failed to deserialize query string: ")
            .unwrap_or(&text)
            .to_string();
        ApiError::bad_request(format!("query: {text}"))
    })
}

/// A page size: 1 to 1000.
pub(crate) fn check_limit(limit: Option<u32>) -> Result<Option<u32>, ApiError> {
    match limit {
        Some(0) | Some(1001..) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "ValidationError",
            "query \"limit\": must be 1 to 1000",
        )),
        other => Ok(other),
    }
}

/// A definition given as a JSON object or as JSON text, as compact JSON text (so the same
/// definition is the same text however it was sent; text that is not JSON is passed on for
/// the engine to explain).
pub(crate) fn definition_text(v: &serde_json::Value) -> Result<String, ApiError> {
    match v {
        serde_json::Value::String(s) => Ok(serde_json::from_str::<serde_json::Value>(s)
            .map(|v| v.to_string())
            .unwrap_or_else(|_| s.clone())),
        serde_json::Value::Object(_) => Ok(v.to_string()),
        _ => Err(ApiError::bad_request(
            "field \"definition\": expected a JSON object or JSON text",
        )),
    }
}

/// JSON text stored by the engine, parsed back (text that is not JSON stays a string).
pub(crate) fn parsed(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.into()))
}
