//! The `/v1` JSON API over the durable engine, through the router; bad input and limits.

use std::time::Duration;

use agentry_api::{LimitsConfig, router};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{call, enc, engine, state_with, token};

const PASS: &str =
    r#"{"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": {"ok": true}, "End": true}}}"#;

fn pass() -> Value {
    serde_json::from_str(PASS).unwrap()
}

/// Polls the execution until it is no longer RUNNING.
async fn finished(app: &axum::Router, t: &str, arn: &str) -> Value {
    for _ in 0..200 {
        let (s, v) = call(
            app,
            "GET",
            &format!("/v1/executions/{}", enc(arn)),
            Some(t),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        if v["status"] != "RUNNING" {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{arn} still running");
}

#[tokio::test]
async fn state_machines_create_list_describe_update_publish_graph() {
    let e = engine().await;
    let app = router(state_with(Some(e.engine.clone()), LimitsConfig::default()));
    let tok = token();
    let t = Some(tok.as_str());
    let (s, v) = call(
        &app,
        "POST",
        "/v1/state-machines",
        t,
        Some(json!({"name": "flow", "definition": pass()}).to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        v["stateMachineArn"],
        "arn:aws:states:local:000000000000:stateMachine:flow"
    );
    assert_eq!(v["type"], "STANDARD");
    assert_eq!(v["definition"], pass());
    assert_eq!(v["revisionId"], "1");
    assert!(v["creationDate"].as_str().unwrap().ends_with('Z'));
    // The definition may also be JSON text; the same one again is no conflict.
    let (s, _) = call(
        &app,
        "POST",
        "/v1/state-machines",
        t,
        Some(json!({"name": "flow", "definition": PASS}).to_string()),
    )
    .await;
    assert!(s.is_success(), "{s}");
    let other = json!({"StartAt": "B", "States": {"B": {"Type": "Succeed"}}});
    let (s, v) = call(
        &app,
        "POST",
        "/v1/state-machines",
        t,
        Some(json!({"name": "flow", "definition": other}).to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(v["error"], "StateMachineAlreadyExists");
    for n in ["alpha", "beta"] {
        let (s, _) = call(
            &app,
            "POST",
            "/v1/state-machines",
            t,
            Some(json!({"name": n, "definition": pass(), "type": "EXPRESS"}).to_string()),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED);
    }
    // Paging by name.
    let (s, v) = call(&app, "GET", "/v1/state-machines?limit=2", t, None).await;
    assert_eq!(s, StatusCode::OK);
    let names: Vec<&str> = v["stateMachines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alpha", "beta"]);
    let next = v["nextToken"].as_str().unwrap();
    let (_, v) = call(
        &app,
        "GET",
        &format!("/v1/state-machines?limit=2&nextToken={next}"),
        t,
        None,
    )
    .await;
    assert_eq!(v["stateMachines"][0]["name"], "flow");
    assert!(v.get("nextToken").is_none(), "{v}");
    let (s, v) = call(&app, "GET", "/v1/state-machines?limit=0", t, None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["message"].as_str().unwrap().contains("limit"), "{v}");
    let (s, v) = call(&app, "GET", "/v1/state-machines?limit=lots", t, None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["message"].as_str().unwrap().contains("limit"), "{v}");

    // Describe, update (PUT and PATCH), publish, describe a version.
    let (s, v) = call(&app, "GET", "/v1/state-machines/flow", t, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["name"], "flow");
    let (s, v) = call(
        &app,
        "POST",
        "/v1/state-machines/flow/versions",
        t,
        Some(json!({"description": "first"}).to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert!(
        v["stateMachineVersionArn"]
            .as_str()
            .unwrap()
            .ends_with("stateMachine:flow:1")
    );
    let (s, v) = call(
        &app,
        "PUT",
        "/v1/state-machines/flow",
        t,
        Some(json!({"definition": other}).to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["revisionId"], "2");
    let third = json!({"StartAt": "C", "States": {"C": {"Type": "Succeed"}}});
    let (_, v) = call(
        &app,
        "PATCH",
        "/v1/state-machines/flow",
        t,
        Some(json!({"definition": third}).to_string()),
    )
    .await;
    assert_eq!(v["revisionId"], "3");
    let (_, v) = call(&app, "GET", "/v1/state-machines/flow", t, None).await;
    assert_eq!(v["definition"], third);
    let (s, v) = call(&app, "GET", "/v1/state-machines/flow:1", t, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["definition"], pass());
    assert_eq!(v["versionDescription"], "first");
    let (s, v) = call(
        &app,
        "PUT",
        "/v1/state-machines/flow",
        t,
        Some(json!({"definition": {"StartAt": "Nowhere", "States": {}}}).to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"], "InvalidDefinition");

    // The graph.
    let branching = json!({"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [{"Variable": "$.x", "IsPresent": true, "Next": "M"}], "Default": "Done"},
        "M": {"Type": "Map", "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": true}}}, "Next": "Done"},
        "Done": {"Type": "Succeed"}}});
    call(
        &app,
        "POST",
        "/v1/state-machines",
        t,
        Some(json!({"name": "branchy", "definition": branching}).to_string()),
    )
    .await;
    let (s, g) = call(&app, "GET", "/v1/state-machines/branchy/graph", t, None).await;
    assert_eq!(s, StatusCode::OK);
    let ids: Vec<&str> = g["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["C", "M", "M/I", "Done"]);
    assert!(
        g["edges"]
            .as_array()
            .unwrap()
            .contains(&json!({"from": "C", "to": "M", "kind": "choice", "label": "rule 0"}))
    );

    // Unknown machines are 404 everywhere.
    for (m, p) in [
        ("GET", "/v1/state-machines/nope"),
        ("GET", "/v1/state-machines/nope/graph"),
        ("POST", "/v1/state-machines/nope/versions"),
        ("POST", "/v1/state-machines/nope/executions"),
        ("DELETE", "/v1/state-machines/nope"),
    ] {
        let (s, v) = call(&app, m, p, t, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{m} {p}: {v}");
        assert_eq!(v["error"], "StateMachineDoesNotExist");
    }
    let (s, _) = call(
        &app,
        "PUT",
        "/v1/state-machines/nope",
        t,
        Some(json!({"definition": pass()}).to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Delete: gone from describe and the listing.
    let (s, v) = call(&app, "DELETE", "/v1/state-machines/branchy", t, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let (s, _) = call(&app, "GET", "/v1/state-machines/branchy", t, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, v) = call(&app, "GET", "/v1/state-machines", t, None).await;
    assert!(!v.to_string().contains("branchy"), "{v}");
}

#[tokio::test]
async fn bad_bodies_name_the_field() {
    let e = engine().await;
    let app = router(state_with(Some(e.engine.clone()), LimitsConfig::default()));
    let tok = token();
    let t = Some(tok.as_str());
    let cases = [
        (
            json!({"definition": pass()}).to_string(),
            "field \"name\" is required",
        ),
        (
            json!({"name": 5, "definition": pass()}).to_string(),
            "field \"name\": invalid type: integer `5`, expected a string",
        ),
        (
            json!({"name": "x", "definition": pass(), "publish": "yes"}).to_string(),
            "field \"publish\"",
        ),
        (
            json!({"name": "x", "definition": 3}).to_string(),
            "field \"definition\"",
        ),
        (
            json!({"name": "x", "definition": pass(), "type": "FAST"}).to_string(),
            "field \"type\": expected STANDARD or EXPRESS",
        ),
        (
            json!({"name": "has space", "definition": pass()}).to_string(),
            "field \"name\"",
        ),
        (
            json!({"name": "x", "definition": pass(), "colour": "red"}).to_string(),
            "unknown field `colour`",
        ),
        ("{\"name\": ".to_string(), "request body is not valid JSON"),
        ("[1, 2]".to_string(), "request body: expected a JSON object"),
    ];
    for (body, needle) in cases {
        let (s, v) = call(&app, "POST", "/v1/state-machines", t, Some(body.clone())).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert_eq!(v["error"], "ValidationError", "{body}: {v}");
        assert!(
            v["message"].as_str().unwrap().contains(needle),
            "{body}: {v}"
        );
    }
    let (s, v) = call(
        &app,
        "POST",
        "/v1/state-machines",
        t,
        Some(json!({"name": "x", "definition": {"StartAt": "Q", "States": {}}}).to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"], "InvalidDefinition");
    call(
        &app,
        "POST",
        "/v1/state-machines",
        t,
        Some(json!({"name": "flow", "definition": pass()}).to_string()),
    )
    .await;
    let (s, v) = call(
        &app,
        "POST",
        "/v1/state-machines/flow/executions",
        t,
        Some(json!({"input": {"nested": [1, {"x": true}]}, "name": ["n"]}).to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        v["message"].as_str().unwrap().starts_with("field \"name\""),
        "{v}"
    );
    let (s, v) = call(&app, "GET", "/v1/executions?status=DONE", t, None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["message"].as_str().unwrap().contains("\"status\""), "{v}");
    let (s, v) = call(&app, "GET", "/v1/executions?nextToken=zz", t, None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["message"].as_str().unwrap().contains("nextToken"), "{v}");
    let (s, v) = call(&app, "GET", "/v1/nothing-here", t, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["error"], "NotFound");
}

#[tokio::test]
async fn executions_start_list_describe_history_stop_and_sync() {
    let e = engine().await;
    let app = router(state_with(Some(e.engine.clone()), LimitsConfig::default()));
    let tok = token();
    let t = Some(tok.as_str());
    let greet = json!({"StartAt": "G", "States": {"G": {"Type": "Pass", "Parameters": {"greeting.$": "States.Format('Hello, {}!', $.name)"}, "End": true}}});
    call(
        &app,
        "POST",
        "/v1/state-machines",
        t,
        Some(json!({"name": "greet", "definition": greet}).to_string()),
    )
    .await;
    call(
        &app,
        "POST",
        "/v1/state-machines",
        t,
        Some(json!({"name": "quick", "definition": greet, "type": "EXPRESS"}).to_string()),
    )
    .await;
    let waits =
        json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 100, "End": true}}});
    call(
        &app,
        "POST",
        "/v1/state-machines",
        t,
        Some(json!({"name": "waits", "definition": waits}).to_string()),
    )
    .await;

    let (s, v) = call(
        &app,
        "POST",
        "/v1/state-machines/greet/executions",
        t,
        Some(json!({"name": "one", "input": {"name": "api"}}).to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let arn = v["executionArn"].as_str().unwrap().to_string();
    assert_eq!(arn, "arn:aws:states:local:000000000000:execution:greet:one");
    let d = finished(&app, &tok, &arn).await;
    assert_eq!(d["status"], "SUCCEEDED");
    assert_eq!(d["output"], json!({"greeting": "Hello, api!"}));
    assert_eq!(d["input"], json!({"name": "api"}));
    // The same name with other input: 409.
    let (s, v) = call(
        &app,
        "POST",
        "/v1/state-machines/greet/executions",
        t,
        Some(json!({"name": "one", "input": {"name": "x"}}).to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(v["error"], "ExecutionAlreadyExists");
    for i in 0..2 {
        call(
            &app,
            "POST",
            "/v1/state-machines/greet/executions",
            t,
            Some(json!({"name": format!("more-{i}"), "input": {"name": "x"}}).to_string()),
        )
        .await;
    }
    // History, paged.
    let (s, h) = call(
        &app,
        "GET",
        &format!("/v1/executions/{}/history?limit=2", enc(&arn)),
        t,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{h}");
    assert_eq!(h["events"].as_array().unwrap().len(), 2);
    assert_eq!(h["events"][0]["type"], "ExecutionStarted");
    assert!(h["events"][0]["timestamp"].is_f64() || h["events"][0]["timestamp"].is_u64());
    let (_, rest) = call(
        &app,
        "GET",
        &format!(
            "/v1/executions/{}/history?nextToken={}",
            enc(&arn),
            h["nextToken"].as_str().unwrap()
        ),
        t,
        None,
    )
    .await;
    let types: Vec<&str> = rest["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["PassStateExited", "ExecutionSucceeded"]);

    // Listing: by machine, by status, across machines with paging.
    let (s, v) = call(&app, "GET", "/v1/executions?machine=greet", t, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["executions"].as_array().unwrap().len(), 3);
    let (s, v) = call(&app, "POST", "/v1/state-machines/waits/executions", t, None).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let waiting = v["executionArn"].as_str().unwrap().to_string();
    let (_, v) = call(&app, "GET", "/v1/executions?status=RUNNING", t, None).await;
    let running: Vec<&str> = v["executions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["executionArn"].as_str().unwrap())
        .collect();
    assert_eq!(running, [waiting.as_str()]);
    let mut seen = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let path = match &next {
            Some(n) => format!("/v1/executions?limit=2&nextToken={n}"),
            None => "/v1/executions?limit=2".into(),
        };
        let (s, v) = call(&app, "GET", &path, t, None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert!(v["executions"].as_array().unwrap().len() <= 2);
        seen.extend(
            v["executions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["executionArn"].as_str().unwrap().to_string()),
        );
        match v["nextToken"].as_str() {
            Some(n) => next = Some(n.to_string()),
            None => break,
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 4, "{seen:?}");
    let (s, v) = call(&app, "GET", "/v1/executions?machine=nope", t, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");

    // Stop.
    let (s, v) = call(
        &app,
        "POST",
        &format!("/v1/executions/{}/stop", enc(&waiting)),
        t,
        Some(json!({"error": "Halt", "cause": "test"}).to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let d = finished(&app, &tok, &waiting).await;
    assert_eq!(d["status"], "ABORTED");
    assert_eq!(d["error"], "Halt");

    // Express, synchronously; and the type mismatches.
    let (s, v) = call(
        &app,
        "POST",
        "/v1/state-machines/quick/executions?sync=true",
        t,
        Some(json!({"input": {"name": "sync"}}).to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "SUCCEEDED");
    assert_eq!(v["output"], json!({"greeting": "Hello, sync!"}));
    assert!(
        v["executionArn"]
            .as_str()
            .unwrap()
            .contains(":express:quick:")
    );
    let (s, v) = call(
        &app,
        "POST",
        "/v1/state-machines/greet/executions?sync=true",
        t,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"], "StateMachineTypeNotSupported");
    // Without ?sync, an EXPRESS execution starts and runs on its own, as on AWS.
    let (s, v) = call(&app, "POST", "/v1/state-machines/quick/executions", t, None).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert!(
        v["executionArn"]
            .as_str()
            .unwrap()
            .contains(":express:quick:"),
        "{v}"
    );
    let (s, v) = call(
        &app,
        "POST",
        "/v1/state-machines/quick/executions?sync=maybe",
        t,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["message"].as_str().unwrap().contains("sync"), "{v}");

    // Unknown executions.
    let missing = "arn:aws:states:local:000000000000:execution:greet:missing";
    for (m, p) in [
        ("GET", format!("/v1/executions/{}", enc(missing))),
        ("GET", format!("/v1/executions/{}/history", enc(missing))),
        ("POST", format!("/v1/executions/{}/stop", enc(missing))),
        ("GET", format!("/v1/executions/{}/events", enc(missing))),
    ] {
        let (s, v) = call(&app, m, &p, t, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{m} {p}: {v}");
        assert_eq!(v["error"], "ExecutionDoesNotExist");
    }
}

#[tokio::test]
async fn task_tokens_answer_waiting_tasks() {
    let e = engine().await;
    let app = router(state_with(Some(e.engine.clone()), LimitsConfig::default()));
    let tok = token();
    let t = Some(tok.as_str());
    let def = json!({"StartAt": "Ask", "States": {"Ask": {"Type": "Task", "Resource": super::TOKEN_RESOURCE,
        "Parameters": {"QueueUrl": "q", "MessageBody": {"token.$": "$$.Task.Token"}}, "HeartbeatSeconds": 60, "End": true}}});
    call(
        &app,
        "POST",
        "/v1/state-machines",
        t,
        Some(json!({"name": "approve", "definition": def}).to_string()),
    )
    .await;
    let mut arns = Vec::new();
    for name in ["yes", "no"] {
        let (s, v) = call(
            &app,
            "POST",
            "/v1/state-machines/approve/executions",
            t,
            Some(json!({"name": name}).to_string()),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        arns.push(v["executionArn"].as_str().unwrap().to_string());
    }
    let tokens = loop {
        let tokens = e.tokens.lock().unwrap().clone();
        if tokens.len() == 2 {
            break tokens;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // Which token is whose: the engine hands them out in either order.
    let mut by_exec = std::collections::HashMap::new();
    for tok in &tokens {
        let (s, _) = call(
            &app,
            "POST",
            &format!("/v1/task-tokens/{}/heartbeat", enc(tok)),
            t,
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        by_exec.insert(tok.clone(), ());
    }
    let (s, v) = call(
        &app,
        "POST",
        &format!("/v1/task-tokens/{}/success", enc(&tokens[0])),
        t,
        Some(json!({"output": {"approved": true}}).to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = call(
        &app,
        "POST",
        &format!("/v1/task-tokens/{}/failure", enc(&tokens[1])),
        t,
        Some(json!({"error": "Rejected", "cause": "no"}).to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let mut statuses = Vec::new();
    for arn in &arns {
        let d = finished(&app, &tok, arn).await;
        statuses.push(d["status"].as_str().unwrap().to_string());
        if d["status"] == "SUCCEEDED" {
            assert_eq!(d["output"], json!({"approved": true}));
        } else {
            assert_eq!(d["error"], "Rejected");
        }
    }
    statuses.sort();
    assert_eq!(statuses, ["FAILED", "SUCCEEDED"]);
    // Answered already: 409; unknown: 404; output missing: 400.
    let (s, v) = call(
        &app,
        "POST",
        &format!("/v1/task-tokens/{}/success", enc(&tokens[0])),
        t,
        Some(json!({"output": 1}).to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"], "TaskTimedOut");
    for kind in ["success", "failure", "heartbeat"] {
        let (s, v) = call(
            &app,
            "POST",
            &format!("/v1/task-tokens/no-such-token/{kind}"),
            t,
            Some(json!({"output": 1}).to_string()).filter(|_| kind == "success"),
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{kind}: {v}");
        assert_eq!(v["error"], "TaskTokenDoesNotExist");
    }
    let (s, v) = call(
        &app,
        "POST",
        &format!("/v1/task-tokens/{}/success", enc(&tokens[0])),
        t,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["message"], "field \"output\" is required");
}

#[tokio::test]
async fn limits_refuse_huge_bodies_and_rate_floods_and_the_server_keeps_serving() {
    let e = engine().await;
    let limits = LimitsConfig {
        max_body_bytes: 64 * 1024,
        requests_per_second: 5.0,
        burst: 5,
        ..Default::default()
    };
    let served = super::serve(state_with(Some(e.engine.clone()), limits)).await;
    let base = format!("http://{}", served.addr);
    let client = reqwest::Client::new();
    let t = token();
    let huge = format!(
        "{{\"name\": \"x\", \"definition\": \"{}\"}}",
        "a".repeat(100 * 1024)
    );
    let r = client
        .post(format!("{base}/v1/state-machines"))
        .bearer_auth(&t)
        .body(huge.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "PayloadTooLarge");
    assert!(v["message"].as_str().unwrap().contains("65536"), "{v}");
    // The same on the AWS endpoint, in AWS's shape.
    let r = client
        .post(&base)
        .bearer_auth(&t)
        .header("x-amz-target", "AWSStepFunctions.CreateStateMachine")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["__type"], "PayloadTooLarge");
    // Malformed JSON, then a flood: 429 with Retry-After; another tenant is not limited.
    let r = client
        .post(format!("{base}/v1/state-machines"))
        .bearer_auth(&t)
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let mut limited = None;
    for _ in 0..20 {
        let r = client
            .get(format!("{base}/v1/state-machines"))
            .bearer_auth(&t)
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(r);
            break;
        }
    }
    let r = limited.expect("a flood is limited");
    assert!(r.headers().contains_key("retry-after"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "TooManyRequests");
    let other = super::token_of("globex", "bob");
    let r = client
        .get(format!("{base}/v1/state-machines"))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Probes are never limited, and the server still serves after all of it.
    let r = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let r = client
        .post(format!("{base}/v1/state-machines"))
        .bearer_auth(&t)
        .body(json!({"name": "after", "definition": pass()}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn openapi_documents_every_route() {
    let app = router(state_with(None, LimitsConfig::default()));
    let (s, doc) = call(&app, "GET", "/openapi.json", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().unwrap();
    // Every endpoint the API serves, as the tests in this file call them.
    let served = [
        ("post", "/v1/validate"),
        ("post", "/v1/test-state"),
        ("post", "/v1/run"),
        ("post", "/v1/state-machines"),
        ("get", "/v1/state-machines"),
        ("get", "/v1/state-machines/{name}"),
        ("put", "/v1/state-machines/{name}"),
        ("patch", "/v1/state-machines/{name}"),
        ("delete", "/v1/state-machines/{name}"),
        ("post", "/v1/state-machines/{name}/versions"),
        ("get", "/v1/state-machines/{name}/graph"),
        ("post", "/v1/state-machines/{name}/executions"),
        ("get", "/v1/executions"),
        ("get", "/v1/executions/{id}"),
        ("get", "/v1/executions/{id}/history"),
        ("post", "/v1/executions/{id}/stop"),
        ("get", "/v1/executions/{id}/events"),
        ("get", "/v1/executions/{id}/events/ws"),
        ("post", "/v1/task-tokens/{token}/success"),
        ("post", "/v1/task-tokens/{token}/failure"),
        ("post", "/v1/task-tokens/{token}/heartbeat"),
        ("post", "/v1/executions/{id}/redrive"),
        ("post", "/v1/state-machines/{name}/aliases"),
        ("get", "/v1/state-machines/{name}/aliases"),
        ("get", "/v1/state-machines/{name}/aliases/{alias}"),
        ("put", "/v1/state-machines/{name}/aliases/{alias}"),
        ("delete", "/v1/state-machines/{name}/aliases/{alias}"),
        ("post", "/v1/activities"),
        ("get", "/v1/activities"),
        ("get", "/v1/activities/{name}"),
        ("delete", "/v1/activities/{name}"),
        ("post", "/v1/activities/{name}/tasks"),
        ("post", "/v1/agents"),
        ("get", "/v1/agents"),
        ("get", "/v1/agents/{name}"),
        ("put", "/v1/users/me/profile"),
        ("get", "/v1/users/me/profile"),
        ("post", "/v1/sessions"),
        ("get", "/v1/sessions"),
        ("get", "/v1/sessions/{id}"),
        ("post", "/v1/sessions/{id}/messages"),
        ("get", "/v1/sessions/{id}/events"),
        ("get", "/v1/knowledge"),
        ("get", "/v1/tools"),
        ("post", "/v1/tools"),
        ("get", "/v1/tools/{name}"),
        ("delete", "/v1/tools/{name}"),
        ("get", "/v1/tools/{name}/metrics"),
        ("get", "/v1/approvals"),
        ("post", "/v1/approvals/{token}/approve"),
        ("post", "/v1/approvals/{token}/reject"),
    ];
    for (m, p) in served {
        assert!(
            paths.get(p).and_then(|o| o.get(m)).is_some(),
            "{m} {p} is not documented"
        );
    }
    // And every documented operation is routed: none answers the router's own 404.
    let t = token();
    let mut documented = 0;
    for (p, ops) in paths {
        for m in ops.as_object().unwrap().keys() {
            documented += 1;
            let concrete = p
                .replace("{name}", "x")
                .replace("{id}", "y")
                .replace("{token}", "z");
            let (s, v) = call(&app, &m.to_uppercase(), &concrete, Some(&t), None).await;
            assert!(
                !(s == StatusCode::NOT_FOUND && v["error"] == "NotFound"),
                "{m} {p} is documented but not routed"
            );
            assert_ne!(s, StatusCode::METHOD_NOT_ALLOWED, "{m} {p}");
        }
    }
    assert_eq!(
        documented,
        served.len(),
        "documented operations that are not in the list above"
    );
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

#[tokio::test]
async fn bodies_without_a_length_are_limited_while_read() {
    let limits = LimitsConfig {
        max_body_bytes: 1024,
        ..Default::default()
    };
    let app = router(state_with(None, limits));
    // A streamed body: no Content-Length for the gate to check up front.
    let chunks: Vec<Result<String, std::io::Error>> =
        (0..10).map(|_| Ok("x".repeat(500))).collect();
    let req = axum::http::Request::post("/v1/validate")
        .header("authorization", format!("Bearer {}", token()))
        .body(axum::body::Body::from_stream(futures_util::stream::iter(
            chunks,
        )))
        .unwrap();
    let resp = tower::ServiceExt::oneshot(app.clone(), req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let (s, _) = call(
        &app,
        "POST",
        "/v1/validate",
        Some(&token()),
        Some(json!({"definition": pass()}).to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
}
