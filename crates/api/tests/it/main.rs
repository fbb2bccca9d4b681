//! The gateway's routes, called through the router as a client would.

mod aws;

use agentry_api::{AppState, router};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

async fn post(path: &str, body: Value) -> (StatusCode, Value) {
    post_raw(path, body.to_string()).await
}

async fn post_raw(path: &str, body: String) -> (StatusCode, Value) {
    let req = Request::post(path)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    let resp = router(AppState::default()).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn health() {
    let resp = router(AppState::default())
        .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn validate_reports_aws_errors() {
    let (s, v) = post(
        "/v1/validate",
        json!({"definition": {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v, json!({"valid": true}));
    let (_, v) = post(
        "/v1/validate",
        json!({"definition": "{\"StartAt\": \"A\", \"States\": {}}"}),
    )
    .await;
    assert_eq!(v["valid"], false);
    assert_eq!(v["error"], "InvalidDefinition");
}

#[tokio::test]
async fn run_executes_to_the_end() {
    let def = json!({"StartAt": "M", "States": {"M": {"Type": "Map", "ItemProcessor": {"StartAt": "P", "States": {
        "P": {"Type": "Pass", "Parameters": {"sq.$": "States.MathAdd($, $)"}, "End": true}}}, "End": true}}});
    let (s, v) = post("/v1/run", json!({"definition": def, "input": [1, 2, 3]})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "SUCCEEDED");
    assert_eq!(v["output"], json!([{"sq": 2}, {"sq": 4}, {"sq": 6}]));
    assert!(v["executionArn"].as_str().unwrap().contains(":express:"));
}

#[tokio::test]
async fn run_reports_task_failures_by_resource() {
    let def = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": true}}});
    let (_, v) = post("/v1/run", json!({"definition": def})).await;
    assert_eq!(v["status"], "FAILED");
    assert_eq!(v["error"], "States.TaskFailed");
    assert!(v["cause"].as_str().unwrap().contains("lambda:invoke"));
}

#[tokio::test]
async fn bad_requests_name_what_is_wrong() {
    let (s, v) = post_raw("/v1/run", "{not json".into()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"], "ValidationException");
    let (s, v) = post("/v1/run", json!({"definition": {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}, "input": "{bad"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"], "InvalidExecutionInput");
    let (s, v) = post("/v1/run", json!({"definitions": {}})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["cause"].as_str().unwrap().contains("definitions"), "{v}");
    let (s, v) = post("/v1/validate", json!({"definition": {}, "type": "FAST"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["cause"].as_str().unwrap().contains("FAST"));
}

#[tokio::test]
async fn test_state_answers_like_aws() {
    let (s, v) = post(
        "/v1/test-state",
        json!({"definition": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericGreaterThan": 1, "Next": "Big"}], "Default": "Small"},
               "input": {"n": 5}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "SUCCEEDED");
    assert_eq!(v["nextState"], "Big");
    let (s, v) = post(
        "/v1/test-state",
        json!({"definition": {"Type": "Pass", "End": true}, "mock": {"result": "{}"}}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        v["cause"],
        "State type 'Pass' is not supported when a mock is specified"
    );
}

#[tokio::test]
async fn bodies_are_json_whatever_the_content_type() {
    // `curl -d` sends application/x-www-form-urlencoded.
    let def = json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": 7, "End": true}}});
    let req = Request::post("/v1/run")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(json!({"definition": def}).to_string()))
        .unwrap();
    let resp = router(AppState::default()).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v["output"], json!(7));
}

async fn aws(action: &str, body: Value) -> (StatusCode, Value) {
    let req = Request::post("/")
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", format!("AWSStepFunctions.{action}"))
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = router(AppState::default()).oneshot(req).await.unwrap();
    let status = resp.status();
    assert_eq!(resp.headers()["content-type"], "application/x-amz-json-1.0");
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn aws_validate_state_machine_definition_lists_diagnostics() {
    let bad = json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}}}).to_string();
    let (s, v) = aws("ValidateStateMachineDefinition", json!({"definition": bad})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["result"], "FAIL");
    assert_eq!(v["diagnostics"][0]["code"], "MISSING_TRANSITION_TARGET");
    assert_eq!(v["diagnostics"][0]["location"], "/States/A/Next");
    assert_eq!(v["diagnostics"][0]["severity"], "ERROR");
    let good = json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}).to_string();
    let (_, v) = aws(
        "ValidateStateMachineDefinition",
        json!({"definition": good}),
    )
    .await;
    assert_eq!(
        v,
        json!({"result": "OK", "diagnostics": [], "truncated": false})
    );
}

#[tokio::test]
async fn aws_test_state_and_errors_in_aws_shape() {
    let def = json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Next": "X"})
        .to_string();
    let (s, v) = aws(
        "TestState",
        json!({"definition": def, "roleArn": "arn:aws:iam::1:role/r", "input": "{\"a\":1}",
               "mock": {"result": "{\"StatusCode\": 200}"}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "SUCCEEDED");
    assert_eq!(v["nextState"], "X");
    assert_eq!(v["output"], "{\"StatusCode\":200}");

    let (s, v) = aws(
        "TestState",
        json!({"definition": "{\"Type\": \"Pass\", \"End\": true}", "mock": {"result": "{}"}}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["__type"], "ValidationException");

    let (s, v) = aws("DescribeActivity", json!({})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["__type"], "UnknownOperationException");
}
