//! Executions: start (Standard on the durable engine; Express synchronously with
//! `?sync=true`), list, describe, history and stop. An execution's id in a path is its ARN,
//! URL-encoded.

use agentry_asl::validate::MachineType;
use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::{Query, Tenant, check_limit, parsed};
use crate::error::{ApiError, ErrorBody, JsonBody};
use crate::time::rfc3339;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartExecution {
    /// Unique among the machine's executions (a random one if absent).
    pub name: Option<String>,
    /// The execution input: any JSON value (default `{}`).
    #[schema(value_type = Option<Object>)]
    pub input: Option<Value>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StartParams {
    /// Run an EXPRESS machine's execution to its end and answer with its result.
    #[serde(default)]
    pub sync: bool,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Started {
    pub execution_arn: String,
    pub start_date: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Execution {
    pub execution_arn: String,
    pub state_machine_arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_machine_version_arn: Option<String>,
    pub name: String,
    /// RUNNING, SUCCEEDED, FAILED, TIMED_OUT or ABORTED.
    pub status: String,
    pub start_date: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_date: Option<String>,
    #[schema(value_type = Object)]
    pub input: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub output: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

fn execution(d: agentry_engine::ExecutionDescription) -> Execution {
    Execution {
        execution_arn: d.execution_arn,
        state_machine_arn: d.state_machine_arn,
        state_machine_version_arn: d.state_machine_version_arn,
        name: d.name,
        status: d.status,
        start_date: rfc3339(d.start_date),
        stop_date: d.stop_date.map(rfc3339),
        input: parsed(&d.input),
        output: d.output.as_deref().map(parsed),
        error: d.error,
        cause: d.cause,
    }
}

/// Starts an execution and answers 201 at once: STANDARD executions durably, EXPRESS ones in
/// memory (not described afterwards, as on AWS). With `?sync=true` an EXPRESS execution runs
/// to its end and the answer is its result.
#[utoipa::path(post, path = "/v1/state-machines/{name}/executions", tag = "executions",
    params(("name" = String, Path, description = "the state machine, or NAME:VERSION"), StartParams),
    request_body = StartExecution,
    responses((status = 201, body = Started), (status = 200, description = "a synchronous run's result", body = Execution),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "the name is taken", body = ErrorBody)))]
pub async fn start(
    t: Tenant,
    Path(name): Path<String>,
    Query(q): Query<StartParams>,
    JsonBody(req): JsonBody<StartExecution>,
) -> Result<Response, ApiError> {
    let arn = t.machine_arn(&name);
    let input = req.input.unwrap_or_else(|| json!({}));
    let input_text = input.to_string();
    if input_text.len() > agentry_asl::exec::MAX_PAYLOAD_BYTES {
        return Err(ApiError::bad_request(format!(
            "field \"input\": {} bytes is over the limit of {} bytes",
            input_text.len(),
            agentry_asl::exec::MAX_PAYLOAD_BYTES
        )));
    }
    if let Some(n) = &req.name {
        agentry_engine::tables::check_name(n)
            .map_err(|e| ApiError::bad_request(format!("field \"name\": {e}")))?;
    }
    if q.sync {
        return start_sync(&t, &arn, input, req.name).await;
    }
    let s = t
        .engine
        .start_execution(&arn, req.name.as_deref(), &input_text)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(Started {
            execution_arn: s.execution_arn,
            start_date: rfc3339(s.start_date),
        }),
    )
        .into_response())
}

async fn start_sync(
    t: &Tenant,
    arn: &str,
    input: Value,
    name: Option<String>,
) -> Result<Response, ApiError> {
    let machine = t.engine.describe_state_machine(arn).await?;
    if machine.kind != "EXPRESS" {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "StateMachineTypeNotSupported",
            format!(
                "state machine \"{}\" is STANDARD: ?sync=true runs EXPRESS machines",
                machine.name
            ),
        ));
    }
    let def = agentry_asl::create_text(&machine.definition, MachineType::Express)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.code.to_string(), e.message))?;
    let ex = crate::run_express(
        def,
        (t.engine.region(), t.engine.account()),
        &machine.name,
        input.clone(),
        name,
    )
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", e))?;
    let stop = crate::time::now_ms();
    Ok(Json(Execution {
        execution_arn: ex.info.execution_arn.clone(),
        state_machine_arn: machine.state_machine_arn,
        state_machine_version_arn: None,
        name: ex.info.name.clone(),
        status: ex.status.as_str().to_string(),
        start_date: rfc3339(ex.info.start_time_ms),
        stop_date: Some(rfc3339(stop)),
        input,
        output: ex.output.clone(),
        error: ex.error.clone(),
        cause: ex.cause.clone(),
    })
    .into_response())
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only this state machine's executions.
    pub machine: Option<String>,
    /// Only executions of this status.
    pub status: Option<String>,
    /// 1 to 1000 (default 100).
    pub limit: Option<u32>,
    pub next_token: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionSummary {
    pub execution_arn: String,
    pub state_machine_arn: String,
    pub name: String,
    pub status: String,
    pub start_date: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_date: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionList {
    pub executions: Vec<ExecutionSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

const STATUSES: [&str; 5] = ["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"];

/// Where a listing over all machines stopped: the machine and the engine's token within it.
#[derive(Serialize, Deserialize)]
struct Cursor {
    m: String,
    t: Option<String>,
}

fn encode_cursor(c: &Cursor) -> String {
    crate::auth::sigv4::hex(serde_json::to_string(c).unwrap_or_default().as_bytes())
}

fn decode_cursor(s: &str) -> Result<Cursor, ApiError> {
    let bad = || ApiError::bad_request("query \"nextToken\": not a token this API returned");
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return Err(bad());
    }
    let bytes = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| bad())?;
    serde_json::from_slice(&bytes).map_err(|_| bad())
}

/// Lists executions of STANDARD machines, newest first within each state machine; `machine`
/// and `status` filter.
#[utoipa::path(get, path = "/v1/executions", tag = "executions", params(ListParams),
    responses((status = 200, body = ExecutionList), (status = 400, body = ErrorBody),
        (status = 404, description = "no such machine", body = ErrorBody)))]
pub async fn list(t: Tenant, Query(q): Query<ListParams>) -> Result<Json<ExecutionList>, ApiError> {
    let limit = check_limit(q.limit)?.unwrap_or(100);
    if let Some(s) = &q.status
        && !STATUSES.contains(&s.as_str())
    {
        return Err(ApiError::bad_request(format!(
            "query \"status\": expected one of {}, got \"{s}\"",
            STATUSES.join(", ")
        )));
    }
    let mut machines: Vec<String> = match &q.machine {
        Some(m) => vec![m.clone()],
        None => {
            let mut names: Vec<String> = t
                .engine
                .list_state_machines()
                .await?
                .into_iter()
                // EXPRESS executions are not recorded: nothing to list.
                .filter(|m| m.kind != "EXPRESS")
                .map(|m| m.name)
                .collect();
            names.sort();
            names
        }
    };
    let mut token = None;
    if let Some(c) = &q.next_token {
        let c = decode_cursor(c)?;
        machines.retain(|m| m >= &c.m);
        if machines.first() == Some(&c.m) {
            token = c.t;
        }
    }
    let mut out = Vec::new();
    let mut next = None;
    for (i, m) in machines.iter().enumerate() {
        let want = limit - out.len() as u32;
        let page = t
            .engine
            .list_executions(
                &t.machine_arn(m),
                q.status.as_deref(),
                Some(want),
                token.take(),
            )
            .await?;
        out.extend(page.items.into_iter().map(|d| ExecutionSummary {
            execution_arn: d.execution_arn,
            state_machine_arn: d.state_machine_arn,
            name: d.name,
            status: d.status,
            start_date: rfc3339(d.start_date),
            stop_date: d.stop_date.map(rfc3339),
        }));
        if let Some(tok) = page.next_token {
            next = Some(Cursor {
                m: m.clone(),
                t: Some(tok),
            });
            break;
        }
        if out.len() as u32 >= limit {
            if let Some(following) = machines.get(i + 1) {
                next = Some(Cursor {
                    m: following.clone(),
                    t: None,
                });
            }
            break;
        }
    }
    Ok(Json(ExecutionList {
        executions: out,
        next_token: next.as_ref().map(encode_cursor),
    }))
}

/// Describes an execution.
#[utoipa::path(get, path = "/v1/executions/{id}", tag = "executions",
    params(("id" = String, Path, description = "the execution ARN, URL-encoded")),
    responses((status = 200, body = Execution), (status = 404, body = ErrorBody)))]
pub async fn describe(t: Tenant, Path(id): Path<String>) -> Result<Json<Execution>, ApiError> {
    Ok(Json(execution(t.engine.describe_execution(&id).await?)))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// 1 to 1000 (default 100).
    pub limit: Option<u32>,
    /// Newest first.
    #[serde(default)]
    pub reverse: bool,
    pub next_token: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct History {
    /// Events as GetExecutionHistory returns them (`timestamp` in epoch seconds).
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// An engine history event in AWS's wire shape: the timestamp in epoch seconds.
pub(crate) fn aws_event(mut e: Value) -> Value {
    if let Some(ms) = e.get("timestamp").and_then(Value::as_i64) {
        e["timestamp"] = json!(ms as f64 / 1000.0);
    }
    e
}

/// One page of an execution's history, oldest first unless `reverse`.
#[utoipa::path(get, path = "/v1/executions/{id}/history", tag = "executions",
    params(("id" = String, Path, description = "the execution ARN, URL-encoded"), HistoryParams),
    responses((status = 200, body = History), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn history(
    t: Tenant,
    Path(id): Path<String>,
    Query(q): Query<HistoryParams>,
) -> Result<Json<History>, ApiError> {
    let limit = check_limit(q.limit)?;
    let page = t
        .engine
        .get_execution_history(&id, limit, q.reverse, q.next_token)
        .await?;
    Ok(Json(History {
        events: page.items.into_iter().map(aws_event).collect(),
        next_token: page.next_token,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StopExecution {
    pub error: Option<String>,
    pub cause: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Stopped {
    pub stop_date: String,
}

/// Stops a running execution (it ends ABORTED).
#[utoipa::path(post, path = "/v1/executions/{id}/stop", tag = "executions",
    params(("id" = String, Path, description = "the execution ARN, URL-encoded")),
    request_body = StopExecution,
    responses((status = 200, body = Stopped), (status = 404, body = ErrorBody)))]
pub async fn stop(
    t: Tenant,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<StopExecution>,
) -> Result<Json<Stopped>, ApiError> {
    let at = t
        .engine
        .stop_execution(&id, req.error.as_deref(), req.cause.as_deref())
        .await?;
    Ok(Json(Stopped {
        stop_date: rfc3339(at),
    }))
}
