//! The AWS JSON 1.0 protocol of the Step Functions API on the gateway's port: a POST to `/`
//! whose `X-Amz-Target: AWSStepFunctions.<Action>` names the operation, so the AWS CLI and
//! SDKs work with `--endpoint-url`. Errors carry AWS's `__type` and `message`, which the SDKs
//! turn into their named exceptions.

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use agentry_asl::validate::MachineType;

const CONTENT_TYPE: &str = "application/x-amz-json-1.0";

/// Answers one AWS JSON request.
pub async fn dispatch(headers: HeaderMap, body: Bytes) -> Response {
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
        "ValidateStateMachineDefinition" => validate(request),
        "TestState" => test_state(request).await,
        other => error(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            format!("operation {other} is not supported by this server yet"),
        ),
    }
}

fn ok(body: Value) -> Response {
    let mut resp = (StatusCode::OK, body.to_string()).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    resp
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
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
    match t.unwrap_or("STANDARD") {
        "STANDARD" => Ok(MachineType::Standard),
        "EXPRESS" => Ok(MachineType::Express),
        other => Err(error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            format!(
                "1 validation error detected: Value '{other}' at 'type' failed to satisfy constraint: Member must satisfy enum value set: [STANDARD, EXPRESS]"
            ),
        )),
    }
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
