//! Tenants see only their own state machines, executions, task tokens, tools and approval
//! requests: every endpoint, given another tenant's ids, answers exactly as for ids that do
//! not exist.

use std::time::Duration;

use agentry_api::{LimitsConfig, router};
use axum::http::StatusCode;
use serde_json::json;

use super::{call, enc, engine, state_with, token_of};

#[tokio::test]
async fn another_tenants_ids_answer_as_unknown_ones() {
    let e = engine().await;
    let app = router(state_with(Some(e.engine.clone()), LimitsConfig::default()));
    let acme = token_of("acme", "alice");
    let globex = token_of("globex", "bob");
    let def = json!({"StartAt": "Ask", "States": {"Ask": {"Type": "Task", "Resource": super::TOKEN_RESOURCE,
        "Parameters": {"QueueUrl": "q", "MessageBody": {"token.$": "$$.Task.Token"}}, "End": true}}});
    let (s, v) = call(
        &app,
        "POST",
        "/v1/state-machines",
        Some(&acme),
        Some(json!({"name": "secret", "definition": def}).to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let machine_arn = v["stateMachineArn"].as_str().unwrap().to_string();
    assert!(
        !machine_arn.contains(":000000000000:"),
        "acme has its own account: {machine_arn}"
    );
    let (_, v) = call(
        &app,
        "POST",
        "/v1/state-machines/secret/executions",
        Some(&acme),
        Some(json!({"name": "run"}).to_string()),
    )
    .await;
    let exec = v["executionArn"].as_str().unwrap().to_string();
    for (path, body) in [
        ("/v1/state-machines/secret/versions", json!({})),
        (
            "/v1/state-machines/secret/aliases",
            json!({"name": "live", "routing": [{"version": 1, "weight": 100}]}),
        ),
        ("/v1/activities", json!({"name": "secret"})),
    ] {
        let (s, v) = call(&app, "POST", path, Some(&acme), Some(body.to_string())).await;
        assert!(s.is_success(), "{path}: {v}");
    }
    let token = loop {
        if let Some(t) = e.tokens.lock().unwrap().first().cloned() {
            break t;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // The same execution ARN with a name that exists nowhere: the reference answer.
    let unknown_exec = exec.replace(":run", ":never-ran");
    let body = |p: &str| -> Option<String> {
        if p.ends_with("/success") {
            Some(json!({"output": {}}).to_string())
        } else if p.ends_with("/aliases") {
            Some(json!({"name": "other", "routing": [{"version": 1, "weight": 100}]}).to_string())
        } else if p.ends_with("/aliases/live") {
            Some(json!({"description": "changed"}).to_string())
        } else if p.ends_with("/tasks") {
            Some(json!({"waitSeconds": 0}).to_string())
        } else if p.ends_with("/state-machines/secret") {
            Some(
                json!({"definition": {"StartAt": "B", "States": {"B": {"Type": "Succeed"}}}})
                    .to_string(),
            )
        } else {
            None
        }
    };
    let endpoints = |machine: &str, exec: &str, token: &str| {
        vec![
            ("GET", format!("/v1/state-machines/{machine}")),
            ("PUT", format!("/v1/state-machines/{machine}")),
            ("PATCH", format!("/v1/state-machines/{machine}")),
            ("DELETE", format!("/v1/state-machines/{machine}")),
            ("GET", format!("/v1/state-machines/{machine}/graph")),
            ("POST", format!("/v1/state-machines/{machine}/versions")),
            ("POST", format!("/v1/state-machines/{machine}/executions")),
            ("GET", format!("/v1/executions?machine={machine}")),
            ("GET", format!("/v1/executions/{}", enc(exec))),
            ("GET", format!("/v1/executions/{}/history", enc(exec))),
            ("GET", format!("/v1/executions/{}/events", enc(exec))),
            ("POST", format!("/v1/executions/{}/stop", enc(exec))),
            ("POST", format!("/v1/task-tokens/{}/success", enc(token))),
            ("POST", format!("/v1/task-tokens/{}/failure", enc(token))),
            ("POST", format!("/v1/task-tokens/{}/heartbeat", enc(token))),
            ("POST", format!("/v1/executions/{}/redrive", enc(exec))),
            ("GET", format!("/v1/state-machines/{machine}/aliases")),
            ("POST", format!("/v1/state-machines/{machine}/aliases")),
            ("GET", format!("/v1/state-machines/{machine}/aliases/live")),
            ("PUT", format!("/v1/state-machines/{machine}/aliases/live")),
            (
                "DELETE",
                format!("/v1/state-machines/{machine}/aliases/live"),
            ),
            ("GET", format!("/v1/activities/{machine}")),
            ("POST", format!("/v1/activities/{machine}/tasks")),
            ("DELETE", format!("/v1/activities/{machine}")),
        ]
    };
    // globex names acme's resources (by name, and by acme's full ARNs)...
    let theirs = endpoints("secret", &exec, &token);
    // ...and resources that exist for nobody.
    let nobodys = endpoints("nonexistent", &unknown_exec, "no-such-token");
    for ((m, p), (_, q)) in theirs.iter().zip(&nobodys) {
        let (s1, v1) = call(&app, m, p, Some(&globex), body(p)).await;
        let (s2, v2) = call(&app, m, q, Some(&globex), body(p)).await;
        assert_eq!(s1, StatusCode::NOT_FOUND, "{m} {p}: {v1}");
        assert_eq!((s1, &v1["error"]), (s2, &v2["error"]), "{m} {p} vs {q}");
    }
    // Listings show nothing of acme's.
    let (_, v) = call(&app, "GET", "/v1/state-machines", Some(&globex), None).await;
    assert_eq!(v["stateMachines"], json!([]));
    let (_, v) = call(&app, "GET", "/v1/executions", Some(&globex), None).await;
    assert_eq!(v["executions"], json!([]));
    // The AWS endpoint too.
    let aws = |action: &str, body: serde_json::Value| {
        let app = app.clone();
        let globex = globex.clone();
        let action = action.to_string();
        async move {
            use http_body_util::BodyExt;
            use tower::ServiceExt;
            let req = axum::http::Request::post("/")
                .header("x-amz-target", format!("AWSStepFunctions.{action}"))
                .header("authorization", format!("Bearer {globex}"))
                .body(axum::body::Body::from(body.to_string()))
                .unwrap();
            let resp = app.oneshot(req).await.unwrap();
            let b = resp.into_body().collect().await.unwrap().to_bytes();
            serde_json::from_slice::<serde_json::Value>(&b).unwrap()
        }
    };
    assert_eq!(
        aws(
            "DescribeStateMachine",
            json!({"stateMachineArn": machine_arn})
        )
        .await["__type"],
        "StateMachineDoesNotExist"
    );
    assert_eq!(
        aws("DescribeExecution", json!({"executionArn": exec})).await["__type"],
        "ExecutionDoesNotExist"
    );
    assert_eq!(
        aws("GetExecutionHistory", json!({"executionArn": exec})).await["__type"],
        "ExecutionDoesNotExist"
    );
    assert_eq!(
        aws("ListStateMachines", json!({})).await["stateMachines"],
        json!([])
    );
    // acme's execution was untouched by all of it.
    let (s, v) = call(
        &app,
        "GET",
        &format!("/v1/executions/{}", enc(&exec)),
        Some(&acme),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["status"], "RUNNING");
    let (_, v) = call(&app, "GET", "/v1/state-machines/secret", Some(&acme), None).await;
    assert_eq!(v["revisionId"], "1");
}

#[tokio::test]
async fn another_tenants_tools_and_approvals_answer_as_unknown_ones() {
    let env = super::tools::tool_env().await;
    let app = &env.app;
    let acme = token_of("acme", "alice");
    let globex = token_of("globex", "bob");
    let (s, v) = call(
        app,
        "POST",
        "/v1/tools",
        Some(&acme),
        Some(json!({"name": "secret", "url": "https://api.example.com/secret"}).to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    env.registry
        .register(
            agentry_tools::ToolSpec::new(
                "gated",
                agentry_tools::InvokerSpec::Http {
                    url: "https://api.example.com/gated".into(),
                    headers: Default::default(),
                },
            )
            .tenant("acme")
            .approval(agentry_tools::Approval::Always),
        )
        .unwrap();
    let def = json!({"StartAt": "G", "States": {"G": {"Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "Parameters": {"FunctionName": "gated", "Payload": {}}, "End": true}}});
    let (s, v) = call(
        app,
        "POST",
        "/v1/state-machines",
        Some(&acme),
        Some(json!({"name": "g", "definition": def}).to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, _) = call(
        app,
        "POST",
        "/v1/state-machines/g/executions",
        Some(&acme),
        Some("{}".into()),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let token = loop {
        let (_, v) = call(app, "GET", "/v1/approvals", Some(&acme), None).await;
        if let Some(t) = v["items"][0]["token"].as_str() {
            break t.to_string();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let body = |p: &str| {
        p.ends_with("/reject")
            .then(|| json!({"reason": "no"}).to_string())
    };
    let endpoints = |tool: &str, token: &str| {
        vec![
            ("GET", format!("/v1/tools/{tool}")),
            ("DELETE", format!("/v1/tools/{tool}")),
            ("GET", format!("/v1/tools/{tool}/metrics")),
            ("POST", format!("/v1/approvals/{}/approve", enc(token))),
            ("POST", format!("/v1/approvals/{}/reject", enc(token))),
        ]
    };
    let theirs = endpoints("secret", &token);
    let nobodys = endpoints("nonexistent", "no-such-token");
    for ((m, p), (_, q)) in theirs.iter().zip(&nobodys) {
        let (s1, v1) = call(app, m, p, Some(&globex), body(p)).await;
        let (s2, v2) = call(app, m, q, Some(&globex), body(p)).await;
        assert_eq!(s1, StatusCode::NOT_FOUND, "{m} {p}: {v1}");
        assert_eq!((s1, &v1["error"]), (s2, &v2["error"]), "{m} {p} vs {q}");
    }
    let (_, v) = call(app, "GET", "/v1/approvals", Some(&globex), None).await;
    assert_eq!(v["items"], json!([]));
    let (_, v) = call(app, "GET", "/v1/tools", Some(&globex), None).await;
    assert!(
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["owner"].is_null()),
        "{v}"
    );
    // acme's tool and request are untouched.
    let (s, _) = call(app, "GET", "/v1/tools/secret", Some(&acme), None).await;
    assert_eq!(s, StatusCode::OK);
    let (_, v) = call(app, "GET", "/v1/approvals", Some(&acme), None).await;
    assert_eq!(v["items"][0]["token"], json!(token));
}
