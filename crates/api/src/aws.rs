//! The AWS JSON 1.0 protocol of the Step Functions API on the gateway's port: a POST to `/`
//! whose `X-Amz-Target: AWSStepFunctions.<Action>` names the operation, so the AWS CLI and
//! SDKs work with `--endpoint-url`. Errors carry AWS's `__type` and `message`, which the SDKs
//! turn into their named exceptions.

use axum::Extension;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use agentry_asl::validate::MachineType;
use agentry_engine::Engine;

use crate::AppState;
use crate::tenant::Principal;

const CONTENT_TYPE: &str = "application/x-amz-json-1.0";

/// Answers one AWS JSON request.
pub async fn dispatch(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    req: Request,
) -> Response {
    let body = match crate::error::read_body(req, state.gateway.limits.max_body_bytes).await {
        Ok(b) => b,
        Err(e) => return error(e.status, &e.code, e.message),
    };
    let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "MissingAction",
            "header X-Amz-Target is missing",
        );
    };
    let Some(action) = target.strip_prefix("AWSStepFunctions.") else {
        return error(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            format!("X-Amz-Target \"{target}\" is not a Step Functions operation"),
        );
    };
    let request: Value = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "SerializationException",
                    format!("request body: {e}"),
                );
            }
        }
    };
    match action {
        "ValidateStateMachineDefinition" => return validate(request),
        "TestState" => return test_state(request).await,
        _ => {}
    }
    if state.engine.is_none() {
        return error(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            format!("operation {action} needs the durable engine, which this server does not run"),
        );
    }
    let engine = match state.engine_for(&principal) {
        Ok(e) => e,
        Err(e) => return error(e.status, &e.code, e.message),
    };
    let result = match action {
        "CreateStateMachine" => create_state_machine(&engine, request).await,
        "UpdateStateMachine" => update_state_machine(&engine, request).await,
        "DescribeStateMachine" => describe_state_machine(&engine, request).await,
        "ListStateMachines" => list_state_machines(&engine).await,
        "PublishStateMachineVersion" => publish_version(&engine, request).await,
        "DeleteStateMachine" => delete_state_machine(&engine, request).await,
        "DeleteStateMachineVersion" => delete_state_machine_version(&engine, request).await,
        "CreateStateMachineAlias" => create_alias(&engine, request).await,
        "DescribeStateMachineAlias" => describe_alias(&engine, request).await,
        "ListStateMachineAliases" => list_aliases(&engine, request).await,
        "UpdateStateMachineAlias" => update_alias(&engine, request).await,
        "DeleteStateMachineAlias" => delete_alias(&engine, request).await,
        "CreateActivity" => create_activity(&engine, request).await,
        "DescribeActivity" => describe_activity(&engine, request).await,
        "ListActivities" => list_activities(&engine).await,
        "DeleteActivity" => delete_activity(&engine, request).await,
        "GetActivityTask" => get_activity_task(&engine, request).await,
        "StartExecution" => start_execution(&engine, request).await,
        "StartSyncExecution" => start_sync_execution(&engine, request).await,
        "DescribeExecution" => describe_execution(&engine, request).await,
        "ListExecutions" => list_executions(&engine, request).await,
        "GetExecutionHistory" => get_execution_history(&engine, request).await,
        "StopExecution" => stop_execution(&engine, request).await,
        "RedriveExecution" => redrive_execution(&engine, request).await,
        "SendTaskSuccess" => send_task(&engine, request, TaskAnswer::Success).await,
        "SendTaskFailure" => send_task(&engine, request, TaskAnswer::Failure).await,
        "SendTaskHeartbeat" => send_task(&engine, request, TaskAnswer::Heartbeat).await,
        other => Err(error(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            format!("operation {other} is not supported by this server yet"),
        )),
    };
    result.unwrap_or_else(|resp| resp)
}

/// AWS's JSON protocol carries timestamps as epoch seconds.
fn seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

fn engine_error(e: agentry_engine::Error) -> Response {
    let status = if e.is_retryable() || e.aws_name() == "ServiceUnavailable" {
        StatusCode::SERVICE_UNAVAILABLE
    } else if e.aws_name() == "ConflictException" {
        StatusCode::CONFLICT
    } else {
        StatusCode::BAD_REQUEST
    };
    let message = match &e {
        agentry_engine::Error::InvalidDefinition { message, .. }
        | agentry_engine::Error::InvalidExecutionInput { message, .. } => message.clone(),
        other => other.to_string(),
    };
    error(status, e.aws_name(), message)
}

fn field<'a>(request: &'a Value, name: &str) -> Result<&'a str, Response> {
    request.get(name).and_then(Value::as_str).ok_or_else(|| {
        error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            format!("1 validation error detected: Value null at '{name}' failed to satisfy constraint: Member must not be null"),
        )
    })
}

fn opt<'a>(request: &'a Value, name: &str) -> Option<&'a str> {
    request.get(name).and_then(Value::as_str)
}

async fn create_state_machine(engine: &Engine, request: Value) -> Result<Response, Response> {
    let name = field(&request, "name")?;
    let definition = field(&request, "definition")?;
    let ty = machine_type(opt(&request, "type"))?;
    let arn = engine
        .create_state_machine_of_type(name, definition, ty)
        .await
        .map_err(engine_error)?;
    let described = engine
        .describe_state_machine(&arn)
        .await
        .map_err(engine_error)?;
    let mut out = json!({"stateMachineArn": arn, "creationDate": seconds(described.creation_date)});
    if request.get("publish").and_then(Value::as_bool) == Some(true) {
        let v = engine
            .publish_state_machine_version(&arn, opt(&request, "versionDescription"))
            .await
            .map_err(engine_error)?;
        out["stateMachineVersionArn"] = json!(v.state_machine_version_arn);
    }
    Ok(ok(out))
}

async fn update_state_machine(engine: &Engine, request: Value) -> Result<Response, Response> {
    let arn = field(&request, "stateMachineArn")?;
    let definition = field(&request, "definition")?;
    let revision = engine
        .update_state_machine(arn, definition)
        .await
        .map_err(engine_error)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    Ok(ok(json!({"updateDate": now, "revisionId": revision})))
}

fn machine_json(d: &agentry_engine::StateMachineDescription, account: &str) -> Value {
    json!({
        "stateMachineArn": d.state_machine_arn,
        "name": d.name,
        "status": d.status,
        "definition": d.definition,
        "roleArn": format!("arn:aws:iam::{account}:role/agentry"),
        "type": d.kind,
        "creationDate": seconds(d.creation_date),
        "revisionId": d.revision_id,
    })
}

async fn describe_state_machine(engine: &Engine, request: Value) -> Result<Response, Response> {
    let arn = field(&request, "stateMachineArn")?;
    let d = engine
        .describe_state_machine(arn)
        .await
        .map_err(engine_error)?;
    Ok(ok(machine_json(&d, engine.account())))
}

async fn list_state_machines(engine: &Engine) -> Result<Response, Response> {
    let machines = engine.list_state_machines().await.map_err(engine_error)?;
    let items: Vec<Value> = machines
        .iter()
        .map(|d| json!({"stateMachineArn": d.state_machine_arn, "name": d.name, "type": d.kind, "creationDate": seconds(d.creation_date)}))
        .collect();
    Ok(ok(json!({"stateMachines": items})))
}

async fn publish_version(engine: &Engine, request: Value) -> Result<Response, Response> {
    let arn = field(&request, "stateMachineArn")?;
    let v = engine
        .publish_state_machine_version(arn, opt(&request, "description"))
        .await
        .map_err(engine_error)?;
    Ok(ok(
        json!({"stateMachineVersionArn": v.state_machine_version_arn, "creationDate": seconds(v.creation_date)}),
    ))
}

async fn delete_state_machine(engine: &Engine, request: Value) -> Result<Response, Response> {
    let arn = field(&request, "stateMachineArn")?;
    engine
        .delete_state_machine(arn)
        .await
        .map_err(engine_error)?;
    Ok(ok(json!({})))
}

async fn delete_state_machine_version(
    engine: &Engine,
    request: Value,
) -> Result<Response, Response> {
    let arn = field(&request, "stateMachineVersionArn")?;
    engine
        .delete_state_machine_version(arn)
        .await
        .map_err(engine_error)?;
    Ok(ok(json!({})))
}

/// A `routingConfiguration` member, as AWS's JSON has it.
fn routing(request: &Value) -> Result<Option<Vec<agentry_engine::Route>>, Response> {
    let Some(v) = request.get("routingConfiguration") else {
        return Ok(None);
    };
    serde_json::from_value(v.clone()).map(Some).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            format!("1 validation error detected: Value at 'routingConfiguration' failed to satisfy constraint: {e}"),
        )
    })
}

fn alias_json(d: &agentry_engine::AliasDescription) -> Value {
    let mut out = json!({
        "stateMachineAliasArn": d.state_machine_alias_arn,
        "name": d.name,
        "routingConfiguration": d.routing_configuration,
        "creationDate": seconds(d.creation_date),
    });
    if let Some(desc) = &d.description {
        out["description"] = json!(desc);
    }
    if let Some(t) = d.update_date {
        out["updateDate"] = json!(seconds(t));
    }
    out
}

async fn create_alias(engine: &Engine, request: Value) -> Result<Response, Response> {
    let name = field(&request, "name")?;
    let Some(routes) = routing(&request)? else {
        return Err(field(&request, "routingConfiguration").unwrap_err());
    };
    let (arn, created) = engine
        .create_state_machine_alias(name, opt(&request, "description"), &routes)
        .await
        .map_err(engine_error)?;
    Ok(ok(
        json!({"stateMachineAliasArn": arn, "creationDate": seconds(created)}),
    ))
}

async fn describe_alias(engine: &Engine, request: Value) -> Result<Response, Response> {
    let arn = field(&request, "stateMachineAliasArn")?;
    let d = engine
        .describe_state_machine_alias(arn)
        .await
        .map_err(engine_error)?;
    Ok(ok(alias_json(&d)))
}

async fn list_aliases(engine: &Engine, request: Value) -> Result<Response, Response> {
    let arn = field(&request, "stateMachineArn")?;
    let aliases = engine
        .list_state_machine_aliases(arn)
        .await
        .map_err(engine_error)?;
    let items: Vec<Value> = aliases
        .iter()
        .map(|a| json!({"stateMachineAliasArn": a.state_machine_alias_arn, "creationDate": seconds(a.creation_date)}))
        .collect();
    Ok(ok(json!({"stateMachineAliases": items})))
}

async fn update_alias(engine: &Engine, request: Value) -> Result<Response, Response> {
    let arn = field(&request, "stateMachineAliasArn")?;
    let routes = routing(&request)?;
    let updated = engine
        .update_state_machine_alias(arn, opt(&request, "description"), routes.as_deref())
        .await
        .map_err(engine_error)?;
    Ok(ok(json!({"updateDate": seconds(updated)})))
}

async fn delete_alias(engine: &Engine, request: Value) -> Result<Response, Response> {
    let arn = field(&request, "stateMachineAliasArn")?;
    engine
        .delete_state_machine_alias(arn)
        .await
        .map_err(engine_error)?;
    Ok(ok(json!({})))
}

fn activity_json(d: &agentry_engine::ActivityDescription) -> Value {
    json!({"activityArn": d.activity_arn, "name": d.name, "creationDate": seconds(d.creation_date)})
}

async fn create_activity(engine: &Engine, request: Value) -> Result<Response, Response> {
    let name = field(&request, "name")?;
    let d = engine.create_activity(name).await.map_err(engine_error)?;
    Ok(ok(
        json!({"activityArn": d.activity_arn, "creationDate": seconds(d.creation_date)}),
    ))
}

async fn describe_activity(engine: &Engine, request: Value) -> Result<Response, Response> {
    let arn = field(&request, "activityArn")?;
    let d = engine.describe_activity(arn).await.map_err(engine_error)?;
    Ok(ok(activity_json(&d)))
}

async fn list_activities(engine: &Engine) -> Result<Response, Response> {
    let all = engine.list_activities().await.map_err(engine_error)?;
    let items: Vec<Value> = all.iter().map(activity_json).collect();
    Ok(ok(json!({"activities": items})))
}

async fn delete_activity(engine: &Engine, request: Value) -> Result<Response, Response> {
    let arn = field(&request, "activityArn")?;
    engine.delete_activity(arn).await.map_err(engine_error)?;
    Ok(ok(json!({})))
}

/// How long GetActivityTask waits for a task, as on AWS.
const ACTIVITY_POLL: std::time::Duration = std::time::Duration::from_secs(60);

async fn get_activity_task(engine: &Engine, request: Value) -> Result<Response, Response> {
    let arn = field(&request, "activityArn")?;
    let task = engine
        .get_activity_task(arn, opt(&request, "workerName"), ACTIVITY_POLL)
        .await
        .map_err(engine_error)?;
    Ok(ok(match task {
        Some(t) => json!({"taskToken": t.task_token, "input": t.input}),
        // No task within the poll: AWS answers without a token.
        None => json!({}),
    }))
}

async fn start_execution(engine: &Engine, request: Value) -> Result<Response, Response> {
    let arn = field(&request, "stateMachineArn")?;
    let input = opt(&request, "input").unwrap_or("{}");
    let started = engine
        .start_execution(arn, opt(&request, "name"), input)
        .await
        .map_err(engine_error)?;
    Ok(ok(
        json!({"executionArn": started.execution_arn, "startDate": seconds(started.start_date)}),
    ))
}

/// StartSyncExecution: an EXPRESS machine's execution, run in memory to its end.
async fn start_sync_execution(engine: &Engine, request: Value) -> Result<Response, Response> {
    let arn = field(&request, "stateMachineArn")?;
    let machine = engine
        .describe_state_machine(arn)
        .await
        .map_err(engine_error)?;
    if machine.kind != "EXPRESS" {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "StateMachineTypeNotSupported",
            "This operation is not supported by this type of state machine",
        ));
    }
    let input_text = opt(&request, "input").unwrap_or("{}").to_string();
    let input = agentry_asl::exec::parse_input(&input_text)
        .map_err(|e| error(StatusCode::BAD_REQUEST, &e.code, e.message))?;
    let def = agentry_asl::create_text(&machine.definition, MachineType::Express)
        .map_err(|e| error(StatusCode::BAD_REQUEST, &e.code, e.message))?;
    let ex = crate::run_express(
        def,
        (engine.region(), engine.account()),
        &machine.name,
        input,
        opt(&request, "name").map(str::to_string),
    )
    .await
    .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", e))?;
    let start = ex.info.start_time_ms;
    let stop = agentry_asl::Host::now_ms(&crate::WallClock::new());
    let mut out = json!({
        "executionArn": ex.info.execution_arn,
        "stateMachineArn": machine.state_machine_arn,
        "name": ex.info.name,
        "startDate": seconds(start),
        "stopDate": seconds(stop),
        "status": ex.status.as_str(),
        "input": input_text,
        "inputDetails": {"included": true},
        "billingDetails": {"billedMemoryUsedInMB": 64, "billedDurationInMilliseconds": (stop - start).max(100)},
    });
    if let Some(o) = &ex.output {
        out["output"] = json!(o.to_string());
        out["outputDetails"] = json!({"included": true});
    }
    if let Some(e) = &ex.error {
        out["error"] = json!(e);
    }
    if let Some(c) = &ex.cause {
        out["cause"] = json!(c);
    }
    Ok(ok(out))
}

async fn describe_execution(engine: &Engine, request: Value) -> Result<Response, Response> {
    let arn = field(&request, "executionArn")?;
    let d = engine.describe_execution(arn).await.map_err(engine_error)?;
    let mut out = json!({
        "executionArn": d.execution_arn,
        "stateMachineArn": d.state_machine_arn,
        "name": d.name,
        "status": d.status,
        "startDate": seconds(d.start_date),
        "input": d.input,
        "inputDetails": {"included": true},
        "redriveCount": d.redrive_count,
        "redriveStatus": d.redrive_status,
    });
    if let Some(r) = &d.redrive_status_reason {
        out["redriveStatusReason"] = json!(r);
    }
    if let Some(t) = d.redrive_date {
        out["redriveDate"] = json!(seconds(t));
    }
    if let Some(v) = &d.state_machine_version_arn {
        out["stateMachineVersionArn"] = json!(v);
    }
    if let Some(a) = &d.state_machine_alias_arn {
        out["stateMachineAliasArn"] = json!(a);
    }
    if let Some(t) = d.stop_date {
        out["stopDate"] = json!(seconds(t));
    }
    if let Some(o) = &d.output {
        out["output"] = json!(o);
        out["outputDetails"] = json!({"included": true});
    }
    if let Some(e) = &d.error {
        out["error"] = json!(e);
    }
    if let Some(c) = &d.cause {
        out["cause"] = json!(c);
    }
    Ok(ok(out))
}

async fn list_executions(engine: &Engine, request: Value) -> Result<Response, Response> {
    let arn = field(&request, "stateMachineArn")?;
    let max = request
        .get("maxResults")
        .and_then(Value::as_u64)
        .map(|m| m as u32);
    let token = opt(&request, "nextToken").map(str::to_string);
    let page = engine
        .list_executions(arn, opt(&request, "statusFilter"), max, token)
        .await
        .map_err(engine_error)?;
    let items: Vec<Value> = page
        .items
        .iter()
        .map(|d| {
            let mut v = json!({"executionArn": d.execution_arn, "stateMachineArn": d.state_machine_arn,
                "name": d.name, "status": d.status, "startDate": seconds(d.start_date)});
            if let Some(t) = d.stop_date {
                v["stopDate"] = json!(seconds(t));
            }
            if let Some(a) = &d.state_machine_version_arn {
                v["stateMachineVersionArn"] = json!(a);
            }
            if let Some(a) = &d.state_machine_alias_arn {
                v["stateMachineAliasArn"] = json!(a);
            }
            if d.redrive_count > 0 {
                v["redriveCount"] = json!(d.redrive_count);
            }
            if let Some(t) = d.redrive_date {
                v["redriveDate"] = json!(seconds(t));
            }
            v
        })
        .collect();
    let mut out = json!({"executions": items});
    if let Some(t) = page.next_token {
        out["nextToken"] = json!(t);
    }
    Ok(ok(out))
}

async fn get_execution_history(engine: &Engine, request: Value) -> Result<Response, Response> {
    let arn = field(&request, "executionArn")?;
    let max = request
        .get("maxResults")
        .and_then(Value::as_u64)
        .map(|m| m as u32);
    let reverse = request
        .get("reverseOrder")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let token = opt(&request, "nextToken").map(str::to_string);
    let page = engine
        .get_execution_history(arn, max, reverse, token)
        .await
        .map_err(engine_error)?;
    let events: Vec<Value> = page
        .items
        .into_iter()
        .map(|mut e| {
            if let Some(ms) = e.get("timestamp").and_then(Value::as_i64) {
                e["timestamp"] = json!(seconds(ms));
            }
            e
        })
        .collect();
    let mut out = json!({"events": events});
    if let Some(t) = page.next_token {
        out["nextToken"] = json!(t);
    }
    Ok(ok(out))
}

async fn stop_execution(engine: &Engine, request: Value) -> Result<Response, Response> {
    let arn = field(&request, "executionArn")?;
    let stopped = engine
        .stop_execution(arn, opt(&request, "error"), opt(&request, "cause"))
        .await
        .map_err(engine_error)?;
    Ok(ok(json!({"stopDate": seconds(stopped)})))
}

async fn redrive_execution(engine: &Engine, request: Value) -> Result<Response, Response> {
    let arn = field(&request, "executionArn")?;
    let date = engine
        .redrive_execution(arn, opt(&request, "clientToken"))
        .await
        .map_err(engine_error)?;
    Ok(ok(json!({"redriveDate": seconds(date)})))
}

enum TaskAnswer {
    Success,
    Failure,
    Heartbeat,
}

async fn send_task(
    engine: &Engine,
    request: Value,
    answer: TaskAnswer,
) -> Result<Response, Response> {
    let token = field(&request, "taskToken")?;
    let result = match answer {
        TaskAnswer::Success => {
            engine
                .send_task_success(token, field(&request, "output")?)
                .await
        }
        TaskAnswer::Failure => {
            engine
                .send_task_failure(token, opt(&request, "error"), opt(&request, "cause"))
                .await
        }
        TaskAnswer::Heartbeat => engine.send_task_heartbeat(token).await,
    };
    result.map_err(engine_error)?;
    Ok(ok(json!({})))
}

fn ok(body: Value) -> Response {
    let mut resp = (StatusCode::OK, body.to_string()).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    resp
}

pub(crate) fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let mut resp = (
        status,
        json!({"__type": code, "message": message.into()}).to_string(),
    )
        .into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    resp
}

fn parse<T: for<'de> Deserialize<'de>>(request: Value) -> Result<T, Response> {
    serde_json::from_value(request).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            e.to_string(),
        )
    })
}

fn machine_type(t: Option<&str>) -> Result<MachineType, Response> {
    let t = t.unwrap_or("STANDARD");
    MachineType::parse(t).ok_or_else(|| {
        error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            format!(
                "1 validation error detected: Value '{t}' at 'type' failed to satisfy constraint: Member must satisfy enum value set: [STANDARD, EXPRESS]"
            ),
        )
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ValidateRequest {
    definition: String,
    #[serde(rename = "type")]
    machine_type: Option<String>,
    max_results: Option<usize>,
    #[allow(dead_code)]
    severity: Option<String>,
}

fn validate(request: Value) -> Response {
    let req: ValidateRequest = match parse(request) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let ty = match machine_type(req.machine_type.as_deref()) {
        Ok(t) => t,
        Err(resp) => return resp,
    };
    match agentry_asl::create_text(&req.definition, ty) {
        Ok(_) => ok(json!({"result": "OK", "diagnostics": [], "truncated": false})),
        Err(e) => {
            let mut diagnostics: Vec<Value> = e
                .diagnostics
                .iter()
                .map(|d| {
                    let mut v = json!({"severity": "ERROR", "code": d.code, "message": d.message});
                    if let Some(l) = &d.location {
                        v["location"] = json!(l);
                    }
                    v
                })
                .collect();
            if diagnostics.is_empty() {
                diagnostics
                    .push(json!({"severity": "ERROR", "code": e.code, "message": e.message}));
            }
            let max = req.max_results.unwrap_or(100).max(1);
            let truncated = diagnostics.len() > max;
            diagnostics.truncate(max);
            ok(json!({"result": "FAIL", "diagnostics": diagnostics, "truncated": truncated}))
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TestStateRequest {
    definition: String,
    state_name: Option<String>,
    input: Option<String>,
    inspection_level: Option<String>,
    mock: Option<Value>,
    variables: Option<String>,
    context: Option<String>,
    state_configuration: Option<Value>,
    #[serde(default)]
    reveal_secrets: bool,
    #[allow(dead_code)]
    role_arn: Option<String>,
}

async fn test_state(request: Value) -> Response {
    let req: TestStateRequest = match parse(request) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let definition = match agentry_asl::definition::parse_text(&req.definition) {
        Ok(d) => d,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.code, e.message),
    };
    let request = agentry_asl::test_state::Request {
        definition,
        state_name: req.state_name,
        input: req.input,
        inspection_level: req.inspection_level,
        mock: req.mock,
        variables: req.variables,
        context: req.context,
        reveal_secrets: req.reveal_secrets,
        state_configuration: req.state_configuration,
        info: None,
    };
    let mut host = crate::WallClock::new();
    match agentry_asl::test_state::run(&request, &mut host) {
        Ok(resp) => ok(serde_json::to_value(resp).unwrap_or_default()),
        Err(e) => error(StatusCode::BAD_REQUEST, &e.code, e.message),
    }
}
