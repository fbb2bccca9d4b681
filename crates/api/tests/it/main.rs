//! The gateway's routes, called through the router as a client would, and on a real socket.

mod auth;
mod aws;
mod events;
mod isolation;
mod sessions;
mod tools;
mod v1;
mod workers;

use std::time::Duration;

use agentry_api::{AppState, Auth, DevKey, LimitsConfig, router};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

/// The development key every test signs with.
pub fn key() -> DevKey {
    DevKey::from_secret(b"the gateway tests' signing key")
}

/// A token of `user` in `tenant`, signed with [`key`].
pub fn token_of(tenant: &str, user: &str) -> String {
    key().issue(tenant, user, Duration::from_secs(600)).unwrap()
}

/// A token of the default tenant.
pub fn token() -> String {
    token_of("default", "tester")
}

pub fn state_with(engine: Option<agentry_engine::Engine>, limits: LimitsConfig) -> AppState {
    AppState::new(engine, Auth::dev(key()), limits)
}

fn app() -> axum::Router {
    router(state_with(None, LimitsConfig::default()))
}

/// A task resource that waits for its token to be answered.
pub const TOKEN_RESOURCE: &str = "arn:aws:states:::sqs:sendMessage.waitForTaskToken";

/// An execution ARN as a path segment.
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A durable engine on SQLite in a temporary directory, with its node running.
pub struct TestEngine {
    pub engine: agentry_engine::Engine,
    /// Task tokens handed to [`TOKEN_RESOURCE`] tasks, in order.
    pub tokens: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    _node: agentry_engine::Node,
    pub dir: tempfile::TempDir,
}

/// Another node's engine on the same store and queue, with no loops of its own: what it
/// serves was advanced elsewhere.
pub async fn peer(of: &TestEngine) -> agentry_engine::Engine {
    let dir = of.dir.path();
    let store = agentry_storage::open(&format!("sqlite://{}", dir.join("s.db").display()))
        .await
        .unwrap();
    let queue = agentry_queue::open(&format!("sqlite://{}", dir.join("q.db").display()))
        .await
        .unwrap();
    agentry_engine::Engine::open(
        store,
        queue,
        agentry_engine::ResourceTable::new(),
        Default::default(),
    )
    .await
    .unwrap()
}

pub async fn engine() -> TestEngine {
    let dir = tempfile::tempdir().unwrap();
    let store = agentry_storage::open(&format!("sqlite://{}", dir.path().join("s.db").display()))
        .await
        .unwrap();
    let queue = agentry_queue::open(&format!("sqlite://{}", dir.path().join("q.db").display()))
        .await
        .unwrap();
    let config = agentry_engine::EngineConfig {
        poll_wait: Duration::from_millis(100),
        timer_poll: Duration::from_millis(100),
        ..Default::default()
    };
    let tokens = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = tokens.clone();
    let resources = agentry_engine::ResourceTable::new().with(TOKEN_RESOURCE, move |req| {
        let seen = seen.clone();
        async move {
            seen.lock().unwrap().extend(req.task_token.clone());
            Ok(json!({}))
        }
    });
    let engine = agentry_engine::Engine::open(store, queue, resources, config)
        .await
        .unwrap();
    let node = engine.run();
    TestEngine {
        engine,
        tokens,
        _node: node,
        dir,
    }
}

/// One request through the router: `(status, JSON body or Null)`.
pub async fn call(
    app: &axum::Router,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<String>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let req = req
        .header("content-type", "application/json")
        .body(body.map(Body::from).unwrap_or_else(Body::empty))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// A server on a real socket (port 0); stops when dropped.
pub struct Served {
    pub addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

pub async fn serve(state: AppState) -> Served {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(agentry_api::run(listener, state, async {
        let _ = rx.await;
    }));
    Served {
        addr,
        stop: Some(tx),
    }
}

async fn post(path: &str, body: Value) -> (StatusCode, Value) {
    post_raw(path, body.to_string()).await
}

async fn post_raw(path: &str, body: String) -> (StatusCode, Value) {
    let req = Request::post(path)
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {}", token()))
        .body(Body::from(body))
        .unwrap();
    let resp = app().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn health() {
    let resp = app()
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
    assert_eq!(v["error"], "ValidationError");
    let (s, v) = post("/v1/run", json!({"definition": {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}, "input": "{bad"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"], "InvalidExecutionInput");
    let (s, v) = post("/v1/run", json!({"definitions": {}})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        v["message"].as_str().unwrap().contains("definitions"),
        "{v}"
    );
    let (s, v) = post("/v1/validate", json!({"definition": {}, "type": "FAST"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["message"].as_str().unwrap().contains("FAST"));
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
        v["message"],
        "State type 'Pass' is not supported when a mock is specified"
    );
}

#[tokio::test]
async fn bodies_are_json_whatever_the_content_type() {
    // `curl -d` sends application/x-www-form-urlencoded.
    let def = json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": 7, "End": true}}});
    let req = Request::post("/v1/run")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", format!("Bearer {}", token()))
        .body(Body::from(json!({"definition": def}).to_string()))
        .unwrap();
    let resp = app().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v["output"], json!(7));
}

async fn aws(action: &str, body: Value) -> (StatusCode, Value) {
    let req = Request::post("/")
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", format!("AWSStepFunctions.{action}"))
        .header("authorization", format!("Bearer {}", token()))
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = app().oneshot(req).await.unwrap();
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
