//! The AWS JSON protocol over a running durable engine, called through the router as the SDKs
//! call it.

use std::time::Duration;

use agentry_api::{LimitsConfig, router};
use agentry_engine::{Engine, EngineConfig, Node, ResourceTable};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

pub struct Server {
    pub engine: Engine,
    _node: Node,
    _dir: tempfile::TempDir,
}

impl Server {
    pub async fn new() -> Self {
        Self::with(ResourceTable::new()).await
    }

    pub async fn with(resources: ResourceTable) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store =
            agentry_storage::open(&format!("sqlite://{}", dir.path().join("s.db").display()))
                .await
                .unwrap();
        let queue = agentry_queue::open(&format!("sqlite://{}", dir.path().join("q.db").display()))
            .await
            .unwrap();
        let config = EngineConfig {
            poll_wait: Duration::from_millis(100),
            timer_poll: Duration::from_millis(200),
            ..EngineConfig::default()
        };
        let engine = Engine::open(store, queue, resources, config).await.unwrap();
        let node = engine.run();
        Self {
            engine,
            _node: node,
            _dir: dir,
        }
    }

    pub async fn call(&self, action: &str, body: Value) -> (StatusCode, Value) {
        let req = Request::post("/")
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amz-target", format!("AWSStepFunctions.{action}"))
            .header("authorization", format!("Bearer {}", super::token()))
            .body(Body::from(body.to_string()))
            .unwrap();
        let state = super::state_with(Some(self.engine.clone()), LimitsConfig::default());
        let resp = router(state).oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    /// Calls and expects success.
    pub async fn ok(&self, action: &str, body: Value) -> Value {
        let (s, v) = self.call(action, body).await;
        assert_eq!(s, StatusCode::OK, "{action}: {v}");
        v
    }

    /// Calls and expects AWS's error `code`.
    pub async fn fails(&self, action: &str, body: Value, code: &str) -> Value {
        let (s, v) = self.call(action, body).await;
        assert_ne!(s, StatusCode::OK, "{action} succeeded: {v}");
        assert_eq!(v["__type"], code, "{action}: {v}");
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
        v
    }

    pub async fn create(&self, name: &str, definition: Value) -> String {
        let v = self
            .ok(
                "CreateStateMachine",
                json!({"name": name, "definition": definition.to_string(), "roleArn": "arn:aws:iam::000000000000:role/r"}),
            )
            .await;
        v["stateMachineArn"].as_str().unwrap().to_string()
    }

    /// Waits up to 20 s for an execution to leave RUNNING; its DescribeExecution.
    pub async fn finished(&self, arn: &str) -> Value {
        for _ in 0..400 {
            let v = self
                .ok("DescribeExecution", json!({"executionArn": arn}))
                .await;
            if v["status"] != "RUNNING" {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{arn} did not finish");
    }
}

fn pass() -> Value {
    json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": 1, "End": true}}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_state_machine_and_version_answer_as_aws() {
    let s = Server::new().await;
    let arn = s.create("doomed", pass()).await;
    let v = s
        .ok(
            "PublishStateMachineVersion",
            json!({"stateMachineArn": arn}),
        )
        .await;
    let version = v["stateMachineVersionArn"].as_str().unwrap().to_string();
    assert_eq!(
        s.ok(
            "DeleteStateMachineVersion",
            json!({"stateMachineVersionArn": version})
        )
        .await,
        json!({})
    );
    s.fails(
        "DescribeStateMachine",
        json!({"stateMachineArn": version}),
        "StateMachineDoesNotExist",
    )
    .await;
    s.fails(
        "DeleteStateMachineVersion",
        json!({"stateMachineVersionArn": arn}),
        "InvalidArn",
    )
    .await;
    s.fails("DeleteStateMachine", json!({}), "ValidationException")
        .await;
    assert_eq!(
        s.ok("DeleteStateMachine", json!({"stateMachineArn": arn}))
            .await,
        json!({})
    );
    s.fails(
        "DescribeStateMachine",
        json!({"stateMachineArn": arn}),
        "StateMachineDoesNotExist",
    )
    .await;
    s.fails(
        "StartExecution",
        json!({"stateMachineArn": arn}),
        "StateMachineDoesNotExist",
    )
    .await;
    let listed = s.ok("ListStateMachines", json!({})).await;
    assert_eq!(listed["stateMachines"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redrive_execution_answers_as_aws() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    // Fails until the switch is thrown, as a broken dependency would.
    let fixed = Arc::new(AtomicBool::new(false));
    let f = fixed.clone();
    let resources = ResourceTable::new().with(
        "arn:aws:lambda:local:000000000000:function:dep",
        move |req| {
            let ok = f.load(Ordering::SeqCst);
            async move {
                if ok {
                    Ok(req.input)
                } else {
                    Err(agentry_engine::TaskError::new("Dep.Down", "not yet"))
                }
            }
        },
    );
    let s = Server::with(resources).await;
    let arn = s
        .create(
            "dep",
            json!({"StartAt": "Call", "States": {"Call": {"Type": "Task",
                "Resource": "arn:aws:lambda:local:000000000000:function:dep",
                "Parameters": {"n.$": "$$.Execution.RedriveCount"}, "End": true}}}),
        )
        .await;
    let ex = s
        .ok("StartExecution", json!({"stateMachineArn": arn}))
        .await["executionArn"]
        .as_str()
        .unwrap()
        .to_string();
    let d = s.finished(&ex).await;
    assert_eq!(d["status"], "FAILED");
    assert_eq!(d["redriveCount"], 0);
    assert_eq!(d["redriveStatus"], "REDRIVABLE");
    fixed.store(true, Ordering::SeqCst);
    let r = s
        .ok(
            "RedriveExecution",
            json!({"executionArn": ex, "clientToken": "abc"}),
        )
        .await;
    assert!(r["redriveDate"].as_f64().unwrap() > 1.7e9, "{r}");
    let d = s.finished(&ex).await;
    assert_eq!(d["status"], "SUCCEEDED", "{d}");
    assert_eq!(d["output"], "{\"n\":1}");
    assert_eq!(d["redriveCount"], 1);
    assert_eq!(d["redriveDate"], r["redriveDate"]);
    assert_eq!(d["redriveStatus"], "NOT_REDRIVABLE");
    assert_eq!(
        d["redriveStatusReason"],
        "Execution is SUCCEEDED and cannot be redriven"
    );
    s.fails(
        "RedriveExecution",
        json!({"executionArn": ex}),
        "ExecutionNotRedrivable",
    )
    .await;
    s.fails(
        "RedriveExecution",
        json!({"executionArn": "arn:aws:states:local:000000000000:execution:dep:missing"}),
        "ExecutionDoesNotExist",
    )
    .await;
    s.fails(
        "RedriveExecution",
        json!({"executionArn": "not-an-arn"}),
        "InvalidArn",
    )
    .await;
    let h = s
        .ok("GetExecutionHistory", json!({"executionArn": ex}))
        .await;
    let kinds: Vec<&str> = h["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"ExecutionRedriven"), "{kinds:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aliases_answer_as_aws() {
    let s = Server::new().await;
    let arn = s.create("aliased", pass()).await;
    let v1 = s
        .ok(
            "PublishStateMachineVersion",
            json!({"stateMachineArn": arn}),
        )
        .await["stateMachineVersionArn"]
        .as_str()
        .unwrap()
        .to_string();
    let created = s
        .ok(
            "CreateStateMachineAlias",
            json!({"name": "prod", "description": "live",
                   "routingConfiguration": [{"stateMachineVersionArn": v1, "weight": 100}]}),
        )
        .await;
    let alias = created["stateMachineAliasArn"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(alias, format!("{arn}:prod"));
    assert!(created["creationDate"].as_f64().is_some());
    let d = s
        .ok(
            "DescribeStateMachineAlias",
            json!({"stateMachineAliasArn": alias}),
        )
        .await;
    assert_eq!(d["name"], "prod");
    assert_eq!(d["description"], "live");
    assert_eq!(
        d["routingConfiguration"],
        json!([{"stateMachineVersionArn": v1, "weight": 100}])
    );
    let listed = s
        .ok("ListStateMachineAliases", json!({"stateMachineArn": arn}))
        .await;
    assert_eq!(
        listed["stateMachineAliases"][0]["stateMachineAliasArn"],
        alias
    );
    let ex = s
        .ok("StartExecution", json!({"stateMachineArn": alias}))
        .await["executionArn"]
        .as_str()
        .unwrap()
        .to_string();
    let d = s.finished(&ex).await;
    assert_eq!(d["stateMachineAliasArn"], alias);
    assert_eq!(d["stateMachineVersionArn"], v1);
    let u = s
        .ok(
            "UpdateStateMachineAlias",
            json!({"stateMachineAliasArn": alias, "description": "still live"}),
        )
        .await;
    assert!(u["updateDate"].as_f64().is_some());
    s.fails(
        "UpdateStateMachineAlias",
        json!({"stateMachineAliasArn": alias, "routingConfiguration": [{"stateMachineVersionArn": v1, "weight": 60}]}),
        "ValidationException",
    )
    .await;
    s.fails(
        "CreateStateMachineAlias",
        json!({"name": "x", "routingConfiguration": [{"stateMachineVersionArn": format!("{arn}:7"), "weight": 100}]}),
        "ResourceNotFound",
    )
    .await;
    let (status, v) = s
        .call(
            "DeleteStateMachineVersion",
            json!({"stateMachineVersionArn": v1}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(v["__type"], "ConflictException");
    s.ok(
        "DeleteStateMachineAlias",
        json!({"stateMachineAliasArn": alias}),
    )
    .await;
    s.fails(
        "DescribeStateMachineAlias",
        json!({"stateMachineAliasArn": alias}),
        "ResourceNotFound",
    )
    .await;
    s.fails(
        "DescribeStateMachineAlias",
        json!({"stateMachineAliasArn": arn}),
        "InvalidArn",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activity_workers_poll_and_answer_through_the_aws_protocol() {
    let s = Server::new().await;
    let created = s.ok("CreateActivity", json!({"name": "approve"})).await;
    let activity = created["activityArn"].as_str().unwrap().to_string();
    assert!(created["creationDate"].as_f64().is_some());
    let d = s
        .ok("DescribeActivity", json!({"activityArn": activity}))
        .await;
    assert_eq!(d["name"], "approve");
    let listed = s.ok("ListActivities", json!({})).await;
    assert_eq!(listed["activities"][0]["activityArn"], activity);
    let arn = s
        .create(
            "approval",
            json!({"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": activity, "End": true}}}),
        )
        .await;
    let ex = s
        .ok(
            "StartExecution",
            json!({"stateMachineArn": arn, "input": "{\"amount\": 5}"}),
        )
        .await["executionArn"]
        .as_str()
        .unwrap()
        .to_string();
    let task = s
        .ok(
            "GetActivityTask",
            json!({"activityArn": activity, "workerName": "w"}),
        )
        .await;
    assert_eq!(task["input"], "{\"amount\":5}");
    let token = task["taskToken"].as_str().unwrap();
    s.ok(
        "SendTaskSuccess",
        json!({"taskToken": token, "output": "{\"ok\": 1}"}),
    )
    .await;
    let d = s.finished(&ex).await;
    assert_eq!(d["status"], "SUCCEEDED");
    assert_eq!(d["output"], "{\"ok\":1}");
    s.fails(
        "DescribeActivity",
        json!({"activityArn": "arn:aws:states:local:000000000000:activity:nope"}),
        "ActivityDoesNotExist",
    )
    .await;
    s.fails(
        "GetActivityTask",
        json!({"activityArn": "not an arn"}),
        "InvalidArn",
    )
    .await;
    s.ok("DeleteActivity", json!({"activityArn": activity}))
        .await;
    s.fails(
        "DescribeActivity",
        json!({"activityArn": activity}),
        "ActivityDoesNotExist",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_execution_on_express_runs_it_in_the_background() {
    let s = Server::new().await;
    let v = s
        .ok(
            "CreateStateMachine",
            json!({"name": "quick", "type": "EXPRESS", "definition": pass().to_string(),
                   "roleArn": "arn:aws:iam::000000000000:role/r"}),
        )
        .await;
    let arn = v["stateMachineArn"].as_str().unwrap();
    let started = s
        .ok(
            "StartExecution",
            json!({"stateMachineArn": arn, "input": "{}"}),
        )
        .await;
    let ex = started["executionArn"].as_str().unwrap();
    assert!(ex.contains(":express:quick:"), "{ex}");
    assert!(started["startDate"].as_f64().is_some());
    s.fails(
        "DescribeExecution",
        json!({"executionArn": ex}),
        "InvalidArn",
    )
    .await;
    s.fails(
        "StartExecution",
        json!({"stateMachineArn": arn, "input": "not json"}),
        "InvalidExecutionInput",
    )
    .await;
}
