//! `/v1` activities (a worker's poll and answer), aliases (starts routed to versions) and
//! redrive, through the router on a real engine.

use std::time::Duration;

use agentry_api::{LimitsConfig, router};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{TOKEN_RESOURCE, call, enc, engine, state_with, token_of};

async fn finished(app: &axum::Router, t: &str, exec: &str) -> Value {
    for _ in 0..200 {
        let (_, v) = call(
            app,
            "GET",
            &format!("/v1/executions/{}", enc(exec)),
            Some(t),
            None,
        )
        .await;
        if v["status"] != "RUNNING" {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{exec} did not finish");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_activity_worker_polls_its_task_and_answers_it() {
    let e = engine().await;
    let app = router(state_with(Some(e.engine.clone()), LimitsConfig::default()));
    let t = token_of("acme", "alice");
    let (s, act) = call(
        &app,
        "POST",
        "/v1/activities",
        Some(&t),
        Some(json!({"name": "fetch"}).to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{act}");
    let arn = act["activityArn"].as_str().unwrap().to_string();
    assert!(arn.ends_with(":activity:fetch"), "{arn}");
    let (s, list) = call(&app, "GET", "/v1/activities", Some(&t), None).await;
    assert_eq!(
        (s, list["items"][0]["name"].clone()),
        (StatusCode::OK, json!("fetch"))
    );
    // Nothing to do yet: an immediate poll answers 204; a poll longer than AWS allows is refused.
    let (s, _) = call(
        &app,
        "POST",
        "/v1/activities/fetch/tasks",
        Some(&t),
        Some(json!({"waitSeconds": 0}).to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = call(
        &app,
        "POST",
        "/v1/activities/fetch/tasks",
        Some(&t),
        Some(json!({"waitSeconds": 61}).to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        v["message"].as_str().unwrap().contains("waitSeconds"),
        "{v}"
    );

    let def = json!({"StartAt": "Fetch", "States": {"Fetch": {"Type": "Task", "Resource": arn,
        "TimeoutSeconds": 60, "End": true}}});
    call(
        &app,
        "POST",
        "/v1/state-machines",
        Some(&t),
        Some(json!({"name": "collect", "definition": def}).to_string()),
    )
    .await;
    let (_, started) = call(
        &app,
        "POST",
        "/v1/state-machines/collect/executions",
        Some(&t),
        Some(json!({"input": {"url": "https://northwind.example/pricing"}}).to_string()),
    )
    .await;
    let exec = started["executionArn"].as_str().unwrap().to_string();
    let (s, task) = call(
        &app,
        "POST",
        "/v1/activities/fetch/tasks",
        Some(&t),
        Some(json!({"workerName": "worker-1", "waitSeconds": 10}).to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{task}");
    assert_eq!(
        task["input"],
        json!({"url": "https://northwind.example/pricing"})
    );
    let token = task["taskToken"].as_str().unwrap();
    let (s, v) = call(
        &app,
        "POST",
        &format!("/v1/task-tokens/{}/success", enc(token)),
        Some(&t),
        Some(json!({"output": {"plans": 3}}).to_string()),
    )
    .await;
    assert!(s.is_success(), "{v}");
    let done = finished(&app, &t, &exec).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(done["output"], json!({"plans": 3}));

    let (s, _) = call(&app, "DELETE", "/v1/activities/fetch", Some(&t), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = call(&app, "GET", "/v1/activities/fetch", Some(&t), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    let (s, v) = call(
        &app,
        "POST",
        "/v1/activities",
        Some(&t),
        Some(json!({"name": "bad name"}).to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["message"].as_str().unwrap().contains("name"), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aliases_route_starts_to_published_versions() {
    let e = engine().await;
    let app = router(state_with(Some(e.engine.clone()), LimitsConfig::default()));
    let t = token_of("acme", "alice");
    let pass = |v: &str| json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": v, "End": true}}});
    call(
        &app,
        "POST",
        "/v1/state-machines",
        Some(&t),
        Some(json!({"name": "flow", "definition": pass("one"), "publish": true}).to_string()),
    )
    .await;
    call(
        &app,
        "PUT",
        "/v1/state-machines/flow",
        Some(&t),
        Some(json!({"definition": pass("two")}).to_string()),
    )
    .await;
    let (s, v) = call(
        &app,
        "POST",
        "/v1/state-machines/flow/versions",
        Some(&t),
        None,
    )
    .await;
    assert!(s.is_success(), "{v}");

    let (s, alias) = call(
        &app,
        "POST",
        "/v1/state-machines/flow/aliases",
        Some(&t),
        Some(json!({"name": "live", "routing": [{"version": 1, "weight": 100}]}).to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{alias}");
    assert!(
        alias["stateMachineAliasArn"]
            .as_str()
            .unwrap()
            .ends_with(":stateMachine:flow:live")
    );
    let run = |app: axum::Router, t: String| async move {
        let (s, v) = call(
            &app,
            "POST",
            "/v1/state-machines/flow:live/executions",
            Some(&t),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        finished(&app, &t, v["executionArn"].as_str().unwrap()).await
    };
    let first = run(app.clone(), t.clone()).await;
    assert_eq!(first["output"], "one", "{first}");
    let (s, v) = call(
        &app,
        "PUT",
        "/v1/state-machines/flow/aliases/live",
        Some(&t),
        Some(json!({"routing": [{"version": 2, "weight": 100}]}).to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["routing"], json!([{"version": 2, "weight": 100}]));
    let second = run(app.clone(), t.clone()).await;
    assert_eq!(second["output"], "two", "{second}");

    let (_, list) = call(
        &app,
        "GET",
        "/v1/state-machines/flow/aliases",
        Some(&t),
        None,
    )
    .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let (s, v) = call(
        &app,
        "POST",
        "/v1/state-machines/flow/aliases",
        Some(&t),
        Some(json!({"name": "bad", "routing": [{"version": 1, "weight": 60}]}).to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = call(
        &app,
        "POST",
        "/v1/state-machines/flow/aliases",
        Some(&t),
        Some(json!({"name": "empty", "routing": []}).to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["message"].as_str().unwrap().contains("routing"), "{v}");
    let (s, _) = call(
        &app,
        "DELETE",
        "/v1/state-machines/flow/aliases/live",
        Some(&t),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = call(
        &app,
        "GET",
        "/v1/state-machines/flow/aliases/live",
        Some(&t),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_execution_is_redriven_from_the_state_that_did_not_finish() {
    let e = engine().await;
    let app = router(state_with(Some(e.engine.clone()), LimitsConfig::default()));
    let t = token_of("acme", "alice");
    let def = json!({"StartAt": "First", "States": {
        "First": {"Type": "Pass", "Result": {"n": 1}, "Next": "Ask"},
        "Ask": {"Type": "Task", "Resource": TOKEN_RESOURCE,
            "Parameters": {"QueueUrl": "q", "MessageBody": {"token.$": "$$.Task.Token"}}, "End": true}}});
    call(
        &app,
        "POST",
        "/v1/state-machines",
        Some(&t),
        Some(json!({"name": "ask", "definition": def}).to_string()),
    )
    .await;
    let (_, v) = call(
        &app,
        "POST",
        "/v1/state-machines/ask/executions",
        Some(&t),
        None,
    )
    .await;
    let exec = v["executionArn"].as_str().unwrap().to_string();
    let path = format!("/v1/executions/{}", enc(&exec));
    // Running: not redrivable.
    let (s, v) = call(&app, "POST", &format!("{path}/redrive"), Some(&t), None).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    call(&app, "POST", &format!("{path}/stop"), Some(&t), None).await;
    let (s, v) = call(
        &app,
        "POST",
        &format!("{path}/redrive"),
        Some(&t),
        Some(json!({"clientToken": "once"}).to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["redriveDate"].is_string(), "{v}");
    let (_, d) = call(&app, "GET", &path, Some(&t), None).await;
    assert_eq!(d["status"], "RUNNING", "{d}");
    // The redriven task asks again: answering it finishes the execution.
    let token = loop {
        let tokens = e.tokens.lock().unwrap().clone();
        if tokens.len() >= 2 {
            break tokens[1].clone();
        }
        drop(tokens);
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    call(
        &app,
        "POST",
        &format!("/v1/task-tokens/{}/success", enc(&token)),
        Some(&t),
        Some(json!({"output": {"ok": true}}).to_string()),
    )
    .await;
    let done = finished(&app, &t, &exec).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    let (_, h) = call(&app, "GET", &format!("{path}/history"), Some(&t), None).await;
    let text = h.to_string();
    assert!(text.contains("ExecutionRedriven"), "{text}");
}
